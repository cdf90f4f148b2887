"""Sales suspensions (販売停止): record one under the 48-hour rule, tell the
customers whose open orders hold the SKU, link inquiries, lift it.

The rule (seed 001, 販売停止の判断基準; SPEC rule 4): a stock-out or a
delivery delay expected to last 48 hours or more stops the sale of the SKU
on the affected channels. Customers with open orders of the SKU are told
with a concrete date, never vague wording, through the outreach ledger
(transactional notices: no consent needed, no quiet hours), each on the
one channel they can be reached by.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.template import TemplateSyntaxError
from django.utils import timezone
from django.utils.translation import gettext as _

from core.choices import Channel
from core.roles import manager_required
from core.templating import template_variables
from core.timeline import actor_or_none
from core.types import Actor
from crisis.models import (
    SUSPENSION_RULE_REASONS,
    Suspension,
    SuspensionEvent,
    SuspensionEventKind,
    SuspensionInquiry,
    SuspensionNotice,
    SuspensionNoticeKind,
    SuspensionReason,
)
from crisis.selectors.suspensions import affected_customers
from crm.models import ChannelIdentity, Customer
from outreach.models import (
    Delivery,
    DeliveryStatus,
    MessageChannel,
    MessageTemplate,
    Purpose,
    SendKind,
)
from outreach.services import deliveries_snapshot, send_create, send_enqueue
from outreach.templating import compiled, variable_label

# A stock-out or delay expected to last this long needs a sales stop.
SALES_STOP_AFTER = timedelta(hours=48)

# The channels a product is sold on (a suspension stops sales there).
SALES_CHANNELS = (
    Channel.RAKUTEN,
    Channel.AMAZON,
    Channel.YAHOO,
    Channel.OWN_SITE,
    Channel.STORE,
)

# The variable a delay notice must use: the expected resume date, filled
# in per send (see notice_context).
DATE_VARIABLE = "extra.expected_resume"

# Wording that tells the customer nothing concrete (seed 001: 不確定な表現を
# 避け、具体的な日付を伝える). Matched in the template's text as written.
VAGUE_WORDS = (
    "近日中",
    "近日",
    "しばらく",
    "暫く",
    "未定",
    "順次",
    "追って",
    "目処",
    "目途",
    "めど",
    "見込みが立ち次第",
    "目処が立ち次第",
    "分かり次第",
    "わかり次第",
    "近いうちに",
    "後日",
    "当面",
)

WEEKDAYS_JA = "月火水木金土日"


# --- The notice templates --------------------------------------------------------


def _template_sources(template: MessageTemplate) -> list[str]:
    if template.channel == MessageChannel.LINE:
        return [text for text in template.line_messages or [] if isinstance(text, str)]
    return [template.subject, template.body_text, template.body_html]


def notice_template_problems(*, template: MessageTemplate, kind: str) -> list[str]:
    """Why `template` cannot carry a suspension notice of `kind`, in words
    for the manager (empty when it can): a transactional template; a delay
    notice must fill in the expected resume date; no vague wording in
    either. The one check the service applies and the admin form shows."""
    problems = []
    if template.purpose != Purpose.TRANSACTIONAL:
        problems.append(
            _(
                "“%(name)s” is a marketing template: a notice about an order is a "
                "transactional message. Choose a transactional template."
            )
            % {"name": template.name}
        )
    sources = [source for source in _template_sources(template) if source]
    if kind == SuspensionNoticeKind.SUSPENDED:
        used: set[str] = set()
        for source in sources:
            try:
                used |= template_variables(compiled(source).nodelist)
            except TemplateSyntaxError:  # template_save refuses it already
                continue
        if DATE_VARIABLE not in used:
            problems.append(
                _(
                    "“%(name)s” does not give the %(what)s: put the %(what)s from the "
                    "template's list of variables where the date goes, so that every customer "
                    "is told a concrete date."
                )
                % {"name": template.name, "what": variable_label(DATE_VARIABLE)}
            )
    text = "\n".join(sources)
    for word in VAGUE_WORDS:
        if word in text:
            problems.append(
                _(
                    "“%(name)s” says “%(word)s”: vague wording leaves the customer guessing "
                    "and brings complaints. Tell a concrete date instead."
                )
                % {"name": template.name, "word": word}
            )
            break
    return problems


def _notice_templates_check(
    *, kind: str, email_template: MessageTemplate | None, line_template: MessageTemplate | None
) -> None:
    errors: dict[str, list[str]] = {}
    for field, template, channel in (
        ("email_template", email_template, MessageChannel.EMAIL),
        ("line_template", line_template, MessageChannel.LINE),
    ):
        if template is None:
            continue
        if template.channel != channel:
            errors[field] = [_("The template is for another channel.")]
            continue
        problems = notice_template_problems(template=template, kind=kind)
        if problems:
            errors[field] = problems
    if line_template is not None and email_template is None:
        errors.setdefault("email_template", []).append(
            _(
                "Choose an email template too: customers without LINE are told by email "
                "(Amazon buyers through their relay address)."
            )
        )
    if errors:
        raise ValidationError(errors)


def expected_resume_text(moment: datetime, *, now: datetime | None = None) -> str:
    """The date as a Japanese customer reads it: 12月10日（木）, with the
    year when it is not this year (2027年1月5日（火））."""
    local = timezone.localtime(moment)
    today = timezone.localtime(now or timezone.now())
    year = f"{local.year}年" if local.year != today.year else ""
    return f"{year}{local.month}月{local.day}日（{WEEKDAYS_JA[local.weekday()]}）"


def notice_context(suspension: Suspension, *, now: datetime | None = None) -> dict[str, str]:
    """What a notice template finds under `extra`."""
    local = timezone.localtime(suspension.expected_resume_at)
    date = expected_resume_text(suspension.expected_resume_at, now=now)
    return {
        "expected_resume": date,
        "expected_resume_time": f"{date}{local.hour}時{local.minute:02d}分"
        if local.minute
        else f"{date}{local.hour}時",
        "sku": suspension.sku,
        "product_name": suspension.product_name,
    }


# --- Who is told -------------------------------------------------------------------


def _line_reachable() -> QuerySet:
    return ChannelIdentity.objects.filter(channel=Channel.LINE).values("customer_id")


def _notices_send(
    *,
    suspension: Suspension,
    kind: str,
    audience: QuerySet[Customer],
    email_template: MessageTemplate | None,
    line_template: MessageTemplate | None,
    actor: Actor,
    now: datetime,
) -> None:
    """One transactional send per channel, each customer of `audience` on
    exactly one: LINE when they have a LINE identity and a LINE template
    was chosen, otherwise email. Runs inside the caller's transaction; the
    SuspensionNotice row (unique per suspension, kind, channel) makes a
    second call a no-op."""
    if email_template is None and line_template is None:
        return
    assert email_template is not None  # a LINE one needs one (_notice_templates_check)
    line_ids = _line_reachable()
    plans: list[tuple[str, MessageTemplate, QuerySet[Customer]]] = []
    if line_template is not None:
        plans.append((MessageChannel.LINE, line_template, audience.filter(pk__in=line_ids)))
        plans.append((MessageChannel.EMAIL, email_template, audience.exclude(pk__in=line_ids)))
    else:
        plans.append((MessageChannel.EMAIL, email_template, audience))
    existing = set(
        SuspensionNotice.objects.filter(suspension=suspension, kind=kind).values_list(
            "channel", flat=True
        )
    )
    content = {"extra": notice_context(suspension, now=now)}
    for channel, template, customers in plans:
        if channel in existing or not customers.exists():
            continue
        send = send_create(
            kind=SendKind.NOTICE,
            channel=channel,
            purpose=Purpose.TRANSACTIONAL,
            template=template,
            content=content,
            respect_quiet_hours=False,
            actor=actor,
        )
        written = deliveries_snapshot(send=send, audience=customers, now=now, new_send=True)
        SuspensionNotice.objects.create(
            suspension=suspension,
            kind=kind,
            channel=channel,
            send=send,
            created_by=actor_or_none(actor),
        )
        _event(
            suspension,
            SuspensionEventKind.NOTICE_SENT,
            actor,
            notice=kind,
            channel=channel,
            send=send.pk,
            template=template.name,
            recipients=written,
        )
        send_enqueue(send, parallel=1)


# --- Services ------------------------------------------------------------------------


def _event(suspension: Suspension, kind: str, actor: Actor = None, **data: Any) -> SuspensionEvent:
    return SuspensionEvent.objects.create(
        suspension=suspension, kind=kind, actor=actor_or_none(actor), data=data
    )


def suspension_rule_check(
    *,
    reason: str,
    expected_resume_at: datetime | None,
    sales_stopped: bool,
    channels: Iterable[str],
    now: datetime,
) -> None:
    """The 48-hour rule and what a suspension needs, as field errors."""
    errors: dict[str, list[str]] = {}
    if reason not in SuspensionReason.values:
        errors["reason"] = [_("Choose a reason.")]
    channels = list(channels)
    unknown = [code for code in channels if code not in SALES_CHANNELS]
    if unknown:
        errors["channels"] = [_("Choose among the sales channels (malls, own site, real shop).")]
    elif sales_stopped and not channels:
        errors["channels"] = [_("Choose at least one channel to stop the sale on.")]
    if expected_resume_at is None:
        errors["expected_resume_at"] = [_("Give the expected date and time of resumption.")]
    elif expected_resume_at <= now:
        errors["expected_resume_at"] = [
            _("The expected resumption must be in the future: customers are told this date.")
        ]
    elif (
        reason in SUSPENSION_RULE_REASONS
        and expected_resume_at - now >= SALES_STOP_AFTER
        and not sales_stopped
    ):
        hours = int((expected_resume_at - now).total_seconds() // 3600)
        errors["sales_stopped"] = [
            _(
                "A stock-out or delay of 48 hours or more needs a sales stop: it is expected "
                "to last %(hours)d hours. Stop the sale on the affected channels, so that no "
                "customer orders a product that cannot ship (販売停止の判断基準)."
            )
            % {"hours": hours}
        ]
    if errors:
        raise ValidationError(errors)


def _already_suspended(sku: str) -> ValidationError:
    return ValidationError(
        {
            "sku": [
                _(
                    "%(sku)s is suspended already: open that suspension (lift it first to "
                    "record a new one). Customers are never told twice."
                )
                % {"sku": sku}
            ]
        }
    )


def suspension_record(
    *,
    sku: str,
    product_name: str,
    channels: Iterable[str],
    reason: str,
    expected_resume_at: datetime,
    sales_stopped: bool,
    note: str = "",
    email_template: MessageTemplate | None = None,
    line_template: MessageTemplate | None = None,
    actor: User,
    now: datetime | None = None,
) -> Suspension:
    """A manager records a stock-out, delay or defect of a SKU. Under the
    48-hour rule it must be a sales stop; with templates chosen, every
    customer with an open order of the SKU, on any channel, is told once."""
    manager_required(actor, _("Only a manager can decide a sales suspension."))
    now = now or timezone.now()
    channels = list(dict.fromkeys(channels or []))
    suspension_rule_check(
        reason=reason,
        expected_resume_at=expected_resume_at,
        sales_stopped=sales_stopped,
        channels=channels,
        now=now,
    )
    _notice_templates_check(
        kind=SuspensionNoticeKind.SUSPENDED,
        email_template=email_template,
        line_template=line_template,
    )
    suspension = Suspension(
        sku=(sku or "").strip(),
        product_name=(product_name or "").strip(),
        channels=channels,
        reason=reason,
        sales_stopped=sales_stopped,
        expected_resume_at=expected_resume_at,
        note=(note or "").strip(),
        decided_by=actor,
        decided_at=now,
    )
    # The partial unique index holds one unlifted suspension per SKU; the
    # same rule, asked first, in words (a race is caught at the insert).
    if Suspension.objects.filter(sku=suspension.sku, lifted_at__isnull=True).exists():
        raise _already_suspended(suspension.sku)
    suspension.full_clean(validate_constraints=False)
    with transaction.atomic():
        try:
            with transaction.atomic():
                suspension.save()
        except IntegrityError as error:
            raise _already_suspended(suspension.sku) from error
        _event(
            suspension,
            SuspensionEventKind.RECORDED,
            actor,
            reason=reason,
            channels=channels,
            sales_stopped=sales_stopped,
            expected_resume_at=expected_resume_at.isoformat(),
        )
        _notices_send(
            suspension=suspension,
            kind=SuspensionNoticeKind.SUSPENDED,
            audience=affected_customers(suspension.sku),
            email_template=email_template,
            line_template=line_template,
            actor=actor,
            now=now,
        )
    return suspension


def told_customers(
    suspension: Suspension, *, kind: str = SuspensionNoticeKind.SUSPENDED
) -> QuerySet[Customer]:
    """The customers a notice of `kind` went to: its ledger rows that were
    not skipped (sent, failed or in doubt: it was tried)."""
    sends = SuspensionNotice.objects.filter(suspension=suspension, kind=kind).values("send_id")
    return Customer.objects.filter(
        pk__in=Delivery.objects.filter(send_id__in=sends)
        .exclude(status=DeliveryStatus.SKIPPED)
        .values("customer_id")
    )


def suspension_lift(
    *,
    suspension: Suspension,
    actor: User,
    email_template: MessageTemplate | None = None,
    line_template: MessageTemplate | None = None,
    now: datetime | None = None,
) -> Suspension:
    """Sales resume. With templates chosen, the customers the delay notice
    went to are told the product ships again, once: a second lift (a
    double click) changes nothing and sends nothing."""
    manager_required(actor, _("Only a manager can lift a sales suspension."))
    now = now or timezone.now()
    _notice_templates_check(
        kind=SuspensionNoticeKind.RESUMED,
        email_template=email_template,
        line_template=line_template,
    )
    with transaction.atomic():
        suspension = Suspension.objects.select_for_update().get(pk=suspension.pk)
        if suspension.lifted_at is not None:
            return suspension
        suspension.lifted_at = now
        suspension.lifted_by = actor
        suspension.save(update_fields=["lifted_at", "lifted_by", "updated_at"])
        _event(suspension, SuspensionEventKind.LIFTED, actor)
        _notices_send(
            suspension=suspension,
            kind=SuspensionNoticeKind.RESUMED,
            audience=told_customers(suspension),
            email_template=email_template,
            line_template=line_template,
            actor=actor,
            now=now,
        )
    return suspension


def suspension_inquiries_link(*, suspension: Suspension, inquiries: Iterable, actor: Actor) -> int:
    """Link inquiries about the SKU to the suspension, several at once;
    those linked already are left as they are. Returns how many were new."""
    ids = sorted({getattr(inquiry, "pk", inquiry) for inquiry in inquiries})
    if not ids:
        return 0
    with transaction.atomic():
        already = set(
            SuspensionInquiry.objects.filter(suspension=suspension, inquiry_id__in=ids).values_list(
                "inquiry_id", flat=True
            )
        )
        new = [pk for pk in ids if pk not in already]
        SuspensionInquiry.objects.bulk_create(
            [
                SuspensionInquiry(
                    suspension=suspension, inquiry_id=pk, linked_by=actor_or_none(actor)
                )
                for pk in new
            ],
            ignore_conflicts=True,
        )
        if new:
            _event(suspension, SuspensionEventKind.INQUIRY_LINKED, actor, inquiries=new)
    return len(new)
