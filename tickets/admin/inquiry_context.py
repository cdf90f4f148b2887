"""What the inquiry page shows, gathered in a fixed number of queries:
the conversation (one query for messages with authors and deliveries, one
for their attachments), the customer panel, the timeline and the forms."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Case, Exists, OuterRef, When
from django.db.models.expressions import Combinable
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.types import StrOrPromise
from crisis.models import PlaybookStep
from crisis.selectors.incidents import incidents_for_inquiry
from crm.models import ConsentChannel
from outreach.models import DeliveryStatus, MessageChannel
from tickets.admin.display import claimant_badge, inquiry_clocks, sla_view
from tickets.admin.inquiry_forms import (
    PAGE_UPDATES,
    AssignForm,
    CategoryForm,
    NoteForm,
    PriorityForm,
    ReplyForm,
    StatusForm,
    TemplatePickForm,
    held_forms,
)
from tickets.models import (
    CsatSurvey,
    Inquiry,
    InquiryMessage,
    MessageKind,
    OutboundState,
    ReplyTemplate,
)
from tickets.presence import PRESENCE_HEARTBEAT_SECONDS, presence_others, staff_name
from tickets.selectors import inquiry_conversation, replies_by_others
from tickets.services import reply_channel_for, reply_channels_for
from tickets.services.calls import call_summary
from tickets.services.csat import csat_score_label
from tickets.timeline import inquiry_timeline

# The page's controls: each posts to do/<name>/, which InquiryPageMixin
# answers with its do_<name> method (assign-me: do_assign_me).
ACTIONS = (
    "reply",
    "note",
    "status",
    "assign",
    "assign-me",
    "category",
    "priority",
    "solution",
    "approve",
    "return",
)
# SPEC rule 2: the response stages, in order, and where each time is kept.
STAGES = (
    (_("Received"), "created_at"),
    (_("Triage"), "triaged_at"),
    (_("First contact"), "first_replied_at"),
    (_("Solution proposed"), "solution_proposed_at"),
    (_("Resolved"), "resolved_at"),
    (_("Closed"), "closed_at"),
)


PRESENCE = _("%(names)s also has this inquiry open.")
# A reply whose delivery ended in one of UNDELIVERED_STATUSES.
UNDELIVERED_LABELS: dict[str, StrOrPromise] = {
    DeliveryStatus.FAILED: _("Not delivered: the customer did not get this reply"),
    DeliveryStatus.SKIPPED: _("Not delivered: the customer did not get this reply"),
    DeliveryStatus.UNKNOWN: _(
        "Outcome unknown: we cannot tell whether the customer got this reply"
    ),
}


def script_texts() -> dict[str, str]:
    """What the page's script says; %(names)s is filled in by the script."""
    return {
        "presence": str(PRESENCE),
        "newer": gettext(
            "%(names)s replied after you opened this page. Reload it and read the reply "
            "before you send yours."
        ),
        "newer_messages": gettext(
            "New messages arrived since you opened this page: reload it to see them."
        ),
        "replace": gettext("Replace the text in the reply box with the template?"),
        "missing": gettext("No value for: %(names)s. Fill them in the text before sending."),
        "update_failed": gettext(
            "The change could not be saved: the connection failed. Try again, or reload the page."
        ),
    }


@dataclass
class MessageView:
    message: InquiryMessage
    side: str  # customer | staff | note
    who: str
    text: str
    full_text: str = ""  # the whole mail when the shown text leaves quoted history out
    labels: list[tuple[str, str]] = field(default_factory=list)  # (css, text)
    attachments: list[tuple[Any, str]] = field(default_factory=list)  # (attachment, url)
    forms: tuple | None = None  # approve and return forms of a held reply


def _labels(message: InquiryMessage) -> list[tuple[str, str]]:
    labels = []
    if message.is_automatic:
        labels.append(("auto", gettext("Automatic reply")))
    state = message.outbound_state
    if state == OutboundState.AWAITING_APPROVAL:
        labels.append(("held", gettext("Awaiting approval")))
    elif state == OutboundState.RETURNED:
        labels.append(("returned", gettext("Returned for changes")))
    elif message.delivery is not None:
        status = message.delivery.status
        text = UNDELIVERED_LABELS.get(status) or message.delivery.get_status_display()
        labels.append((f"delivery-{status}", str(text)))
    elif state:
        labels.append((f"state-{state}", message.get_outbound_state_display()))
    return labels


def conversation(
    inquiry: Inquiry, messages: list[InquiryMessage], *, bound: dict, can_approve: bool
) -> list[MessageView]:
    customer = inquiry.customer
    customer_name = customer.label if customer.display_name or customer.nickname else None
    customer_name = customer_name or gettext("Customer")
    views = []
    for message in messages:
        attachments = [
            (
                attachment,
                ""
                if attachment.truncated or not attachment.file
                else reverse("admin:tickets_inquiry_attachment", args=[inquiry.pk, attachment.pk]),
            )
            for attachment in message.attachments.all()
        ]
        if message.kind == MessageKind.INBOUND:
            text = message.visible_text or message.body_text
            view = MessageView(
                message,
                "customer",
                customer_name,
                text,
                full_text=message.body_text if message.body_text.strip() != text.strip() else "",
                attachments=attachments,
            )
            if message.author_id:  # a phone call an agent wrote down
                view.labels.append(
                    (
                        "entered",
                        gettext("Entered by %(name)s") % {"name": staff_name(message.author)},
                    )
                )
            if message.call_minutes is not None or message.call_answered:
                view.labels.append(
                    (
                        "call",
                        call_summary(minutes=message.call_minutes, answered=message.call_answered),
                    )
                )
        elif message.kind == MessageKind.NOTE:
            view = MessageView(
                message,
                "note",
                staff_name(message.author),
                message.body_text,
                attachments=attachments,
            )
        else:
            view = MessageView(
                message,
                "staff",
                staff_name(message.author) or gettext("System"),
                message.body_text,
                labels=_labels(message),
                attachments=attachments,
            )
            if can_approve and message.outbound_state == OutboundState.AWAITING_APPROVAL:
                approve_form, return_form = held_forms(message)
                view.forms = (
                    bound.get(f"approve-{message.pk}") or approve_form,
                    bound.get(f"return-{message.pk}") or return_form,
                )
        views.append(view)
    return views


def customer_panel(inquiry: Inquiry) -> dict[str, Any]:
    customer = inquiry.customer
    states = {state.channel: state for state in customer.consent_states.all()}
    return {
        "customer": customer,
        "claimant_badge": claimant_badge(customer),
        "customer_url": reverse("admin:crm_customer_change", args=[customer.pk]),
        "consent": [
            (label, states[value].granted if value in states else None)
            for value, label in ConsentChannel.choices
        ],
        "orders": list(customer.orders.order_by("-ordered_at", "-id")[:5]),
        "other_inquiries": list(
            Inquiry.objects.filter(customer=customer)
            .exclude(pk=inquiry.pk)
            .order_by("-created_at", "-id")[:5]
        ),
    }


def csat_panel(inquiry: Inquiry) -> dict[str, Any] | None:
    """The customer's satisfaction answer, as the page shows it (None when
    they were never asked)."""
    survey = CsatSurvey.objects.filter(inquiry=inquiry).first()
    if survey is None:
        return None
    return {
        "asked_by": survey.get_channel_display(),
        "sent_at": survey.sent_at,
        "score": survey.score,
        "score_label": csat_score_label(survey.score) if survey.score else "",
        "answered_at": survey.answered_at,
        "comment": survey.comment,
    }


def template_order(inquiry: Inquiry, orders: list) -> Any:
    """The order a reply template is filled with at first: the inquiry's
    own, else the customer's latest; none when the customer typed an order
    number that is not theirs (the agent asks first, and a template must
    not name another order as if it were the one asked about)."""
    if inquiry.order is not None:
        return inquiry.order
    if inquiry.order_number_unmatched or not orders:
        return None
    return orders[0]


def reply_templates_offered(inquiry: Inquiry, incidents: list) -> Any:
    """The reply templates in the picker's order: those the playbooks of
    the ongoing incidents the inquiry is linked to (or suggested for) name
    first (the system-trouble template with the recovery estimate), then
    those of the inquiry's category, then the rest by name."""
    order: list[str | Combinable] = [
        Case(When(category_id=inquiry.category_id, then=0), default=1),
        "name",
    ]
    if incidents:
        of_incident = Exists(
            PlaybookStep.objects.filter(
                reply_template=OuterRef("pk"),
                playbook__kind__in=sorted({incident.kind for incident in incidents}),
            )
        )
        order.insert(0, Case(When(of_incident, then=0), default=1))
    return ReplyTemplate.objects.filter(is_active=True).order_by(*order)


def incident_recovery_initial(incidents: list) -> dict[str, Any]:
    """The picker's date and time start at the ongoing incident's expected
    recovery, which the outage template tells the customer."""
    expected = next((i.expected_recovery_at for i in incidents if i.expected_recovery_at), None)
    if expected is None:
        return {}
    local = timezone.localtime(expected)
    return {"date": local.date(), "time": local.time().replace(second=0, microsecond=0)}


def reply_form(inquiry: Inquiry, *, bound: dict, latest_id: int) -> ReplyForm:
    form = bound.get("reply") or ReplyForm(
        initial={"channel": reply_channel_for(inquiry), "seen_message_id": latest_id}
    )
    form.fields["channel"].choices = [  # type: ignore[union-attr]  # this field is a ChoiceField; Form.fields holds Field
        (channel, MessageChannel(channel).label) for channel in reply_channels_for(inquiry)
    ]
    return form


def page_context(
    request: HttpRequest,
    inquiry: Inquiry,
    *,
    bound: dict[str, Any],
    can_change: bool,
    can_approve: bool,
) -> dict[str, Any]:
    now = timezone.now()
    # The seeded roles: agents and managers read messages, marketers do not.
    can_read = request.user.has_perm("tickets.view_inquirymessage")
    messages = list(inquiry_conversation(inquiry)) if can_read else []
    latest_id = max((message.pk for message in messages), default=0)
    # A reply by someone else this recent is announced at the top of the page.
    recent = now - timedelta(minutes=settings.INQUIRY_COLLISION_MINUTES)
    recent_reply_texts = [
        gettext("%(name)s sent a reply %(minutes)d min ago.")
        % {
            "name": staff_name(m.author),
            "minutes": max(int((now - m.created_at).total_seconds() // 60), 0),
        }
        for m in replies_by_others(messages, user=request.user)
        if m.created_at >= recent
    ]
    viewers = [v.name for v in presence_others(inquiry_id=inquiry.pk, user=request.user)]
    incidents = incidents_for_inquiry(inquiry)
    context: dict[str, Any] = {
        "incidents": [
            {
                "incident": incident,
                "linked": linked,
                "url": reverse("admin:crisis_incident_change", args=[incident.pk]),
                "link_url": reverse("admin:crisis_incident_link", args=[incident.pk]),
            }
            for incident, linked in incidents
        ],
        "inquiry": inquiry,
        "sla": sla_view(inquiry, now),
        "clocks": inquiry_clocks(inquiry, now),
        "stages": [(label, getattr(inquiry, name)) for label, name in STAGES],
        "conversation": conversation(inquiry, messages, bound=bound, can_approve=can_approve),
        "latest_message_id": latest_id,
        "can_read_messages": can_read,
        "presence_text": str(PRESENCE) % {"names": "、".join(viewers)} if viewers else "",
        "script_texts": script_texts(),
        "recent_reply_texts": recent_reply_texts,
        "assignee_name": staff_name(inquiry.assignee),
        "timeline": inquiry_timeline(inquiry),
        "csat": csat_panel(inquiry),
        "can_change": can_change,
        "can_approve": can_approve,
        "heartbeat_seconds": PRESENCE_HEARTBEAT_SECONDS,
        "presence_url": reverse("admin:tickets_inquiry_presence", args=[inquiry.pk]),
        "template_url": reverse("admin:tickets_inquiry_reply_template", args=[inquiry.pk]),
        "changelist_url": reverse("admin:tickets_inquiry_changelist"),
        **customer_panel(inquiry),
    }
    if can_change and can_read:
        orders = list(context["orders"])
        if inquiry.order is not None and inquiry.order not in orders:
            orders.insert(0, inquiry.order)
        context.update(
            action_urls={
                name.replace("-", "_"): reverse(
                    "admin:tickets_inquiry_action", args=[inquiry.pk, name]
                )
                for name in ACTIONS
            },
            # the same controls, for the page's script: no reload (inquiry_endpoints.py)
            update_urls={
                name.replace("-", "_"): reverse(
                    "admin:tickets_inquiry_update", args=[inquiry.pk, name]
                )
                for name in PAGE_UPDATES
            },
            reply_form=reply_form(inquiry, bound=bound, latest_id=latest_id),
            pick_form=TemplatePickForm(
                templates=reply_templates_offered(inquiry, [i for i, _linked in incidents]),
                orders=orders,
                selected_order=template_order(inquiry, orders),
                initial=incident_recovery_initial([i for i, _linked in incidents]),
            ),
            note_form=bound.get("note") or NoteForm(),
            status_form=bound.get("status") or StatusForm(initial={"status": inquiry.status}),
            assign_form=bound.get("assign") or AssignForm(initial={"assignee": inquiry.assignee}),
            category_form=bound.get("category")
            or CategoryForm(initial={"category": inquiry.category}),
            priority_form=bound.get("priority")
            or PriorityForm(initial={"priority": inquiry.priority}),
        )
    return context
