"""Reads for inquiries. Each returns a QuerySet holding the joins its
callers need (no N+1)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    FilteredRelation,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, NullIf

from core.roles import AGENT, MANAGER
from core.types import Actor
from crm.models import Customer
from outreach.segments import related_count
from tickets.models import (
    OPEN_STATUSES,
    AssignmentMode,
    AssignmentRule,
    Inquiry,
    InquiryEvent,
    InquiryMessage,
    MessageKind,
    OutboundState,
    StaffNotification,
)

# What the API's InquirySerializer shows, and no more: a list page loads
# 50 rows of these instead of every column of three tables.
API_FIELDS = (
    "reference",
    "customer_id",
    "channel",
    "subject",
    "category__code",
    "order__order_number",
    "order__channel",
    "order_number_given",
    "status",
    "first_replied_at",
    "created_at",
    "updated_at",
)


def inquiry_list_for_channels(*, channels: Iterable[str]) -> QuerySet[Inquiry]:
    """Inquiries an API key may see: those that came in on its channels,
    with the columns the API shows. `api_order_number` is the linked
    order's number when that order is on the key's channels, else the
    number as the customer gave it (or None)."""
    channels = list(channels)
    return (
        Inquiry.objects.filter(channel__in=channels)
        .select_related("category", "order")
        .only(*API_FIELDS)
        .annotate(
            api_order_number=Case(
                When(order__channel__in=channels, then=F("order__order_number")),
                default=NullIf(F("order_number_given"), Value("")),
            )
        )
    )


def inbox(*, open_only: bool = False, reader: Actor = None) -> QuerySet[Inquiry]:
    """The agent inbox: everything a row shows, joined; `last_reply_status`
    is the delivery status of the latest reply (None before one is sent),
    or its OutboundState while it is held for approval or returned. With a
    `reader`, `is_unread` says whether the inquiry has a customer message
    they have not opened (one join on their read state, inbox_unread_q)."""
    latest_reply = InquiryMessage.objects.filter(
        inquiry=OuterRef("pk"), kind=MessageKind.OUTBOUND
    ).order_by("-created_at", "-id")
    reply_status = Case(
        When(outbound_state__in=HELD_STATES, then=F("outbound_state")),
        default=F("delivery__status"),
    )
    queryset = Inquiry.objects.select_related("customer", "category", "assignee").annotate(
        last_reply_status=Subquery(latest_reply.values(status=reply_status)[:1])
    )
    if reader is not None:
        queryset = queryset.annotate(
            reader_state=FilteredRelation(
                "read_states", condition=Q(read_states__user_id=reader.pk)
            ),
            is_unread=ExpressionWrapper(inbox_unread_q(), output_field=BooleanField()),
        )
    if open_only:
        queryset = queryset.filter(status__in=OPEN_STATUSES)
    return queryset


# Replies not sent yet: the inbox badges them in words.
HELD_STATES = (OutboundState.AWAITING_APPROVAL, OutboundState.RETURNED)


def inbox_unread_q() -> Q:
    """On inbox(reader=...): a customer message came in after the one the
    reader last saw (or the reader never opened the inquiry)."""
    return Q(last_inbound_at__isnull=False) & (
        Q(reader_state__seen_inbound_at__isnull=True)
        | Q(last_inbound_at__gt=F("reader_state__seen_inbound_at"))
    )


def inbox_counts(
    queryset: QuerySet[Inquiry], *, since: datetime | None = None, cap: int | None = None
) -> dict:
    """On inbox(reader=...) as filtered: how many there are (`total`), how
    many are unread for the reader and, with `since`, how many had a
    customer message after it (`new`). One query, one pass over the rows.

    With `cap` (a search), at most `cap` + 1 rows are counted, so that a
    word found in a hundred thousand inquiries costs a thousand rows, not
    all of them: `capped` says there are more than `cap` (then `total` is
    `cap`, and `unread` and `new` count among the rows counted: at least
    that many, at most `cap`)."""
    if cap is None:
        counts = {"total": Count("pk"), "unread": Count("pk", filter=inbox_unread_q())}
        if since is not None:
            counts["new"] = Count("pk", filter=Q(last_inbound_at__gt=since))
        return {**queryset.order_by().aggregate(**counts), "capped": False}
    counts = {"total": Count("pk"), "unread": Count("pk", filter=Q(is_unread=True))}
    if since is not None:
        counts["new"] = Count("pk", filter=Q(last_inbound_at__gt=since))
    # Only what is counted (not the rows' annotations: the latest reply's
    # status), in no order: any cap + 1 rows tell that there are more,
    # found the cheapest way (a rare word's index, not a walk of the inbox's
    # order through the 100,000 inquiries before its 1,001st match).
    first = queryset.order_by().values("pk", "is_unread", "last_inbound_at")[: cap + 1]  # type: ignore[misc]  # is_unread: annotated by inbox(reader=...)
    result = first.aggregate(**counts)
    result["capped"] = result["total"] > cap
    return {name: min(value, cap) if name != "capped" else value for name, value in result.items()}


def inquiry_conversation(inquiry: Inquiry) -> QuerySet[InquiryMessage]:
    """The messages of an inquiry in order, with authors, deliveries and
    attachments."""
    return (
        InquiryMessage.objects.filter(inquiry=inquiry)
        .select_related("author", "delivery", "approved_by")
        .prefetch_related(Prefetch("attachments"))
        .order_by("created_at", "id")
    )


def inquiry_messages_after(inquiry: Inquiry, *, message_id: int) -> QuerySet[InquiryMessage]:
    """The messages of an inquiry newer than `message_id` (the latest one a
    page had on screen), in order, with their authors."""
    return (
        InquiryMessage.objects.filter(inquiry=inquiry, pk__gt=message_id)
        .select_related("author")
        .order_by("pk")
    )


def replies_by_others(
    messages: Iterable[InquiryMessage], *, user: User | AnonymousUser | None
) -> list[InquiryMessage]:
    """The replies among `messages` that someone other than `user` sent the
    customer (automatic replies and notes left out): what `user` must read
    before answering the same customer. It sorts messages already loaded,
    so the inquiry page, its heartbeat and the send-time collision check
    each keep to the one query they make anyway."""
    return [
        message
        for message in messages
        if message.kind == MessageKind.OUTBOUND
        and not message.is_automatic
        and message.author_id != getattr(user, "pk", None)
    ]


def assignable_staff() -> QuerySet:
    """Who an inquiry can be assigned to: active staff who are agents,
    managers or superusers, by name."""
    return (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(Q(groups__name__in=[AGENT, MANAGER]) | Q(is_superuser=True))
        .distinct()
        .order_by("last_name", "first_name", "username")
    )


def staff_notifications_unsent(*, now: datetime) -> QuerySet[StaffNotification]:
    """Notifications to mail now: not mailed, not given up, and neither held
    by a run nor waiting for a retry (tickets_notify_unsent serves it)."""
    return StaffNotification.objects.filter(
        Q(email_next_attempt_at__isnull=True) | Q(email_next_attempt_at__lte=now),
        emailed_at__isnull=True,
        email_failed_at__isnull=True,
    )


def complaints_recent(*, now: datetime) -> QuerySet[Inquiry]:
    """Inquiries of a complaint category that came in during the
    CLAIMANT_SUGGEST_DAYS days before `now`: what the segment field
    「過去N日間の苦情件数」 counts and the claimant suggestions count."""
    since = now - timedelta(days=settings.CLAIMANT_SUGGEST_DAYS)
    return Inquiry.objects.filter(category__is_complaint=True, created_at__gte=since)


def claimant_suggestions(*, now: datetime) -> QuerySet[Customer]:
    """Live customers not flagged as claimants with at least
    CLAIMANT_SUGGEST_COMPLAINTS recent complaints (complaints_recent), most
    complaints first: a list for managers to look at, never applied on its
    own. Each row carries `complaint_count` and its latest complaint
    (`latest_complaint_id`, `_reference`, `_subject`, `_created_at`), in one query."""
    recent = complaints_recent(now=now)
    latest = recent.filter(customer=OuterRef("pk")).order_by("-created_at", "-id")
    return (
        Customer.objects.filter(
            pk__in=recent.values("customer"), merged_into__isnull=True, is_claimant=False
        )
        .annotate(complaint_count=related_count(recent))
        .filter(complaint_count__gte=settings.CLAIMANT_SUGGEST_COMPLAINTS)
        .annotate(
            **{
                f"latest_complaint_{field}": Subquery(latest.values(field)[:1])
                for field in ("id", "reference", "subject", "created_at")
            }
        )
        .order_by("-complaint_count", "-latest_complaint_created_at", "-pk")
    )


# A second inquiry of the same customer about the same order within this
# many days of the other is suggested for merging (tickets.services.merge).
MERGE_SUGGEST_DAYS = 7


def inquiries_counted() -> QuerySet[Inquiry]:
    """The inquiries that count as inquiries in figures and reports: not
    those absorbed by a merge, whose messages, time and answers are their
    survivor's (tickets.services.merge)."""
    return Inquiry.objects.filter(merged_into__isnull=True)


def merge_suggestions(inquiry: Inquiry) -> QuerySet[Inquiry]:
    """Inquiries to suggest merging with `inquiry`: the same customer's,
    about the same order, received within MERGE_SUGGEST_DAYS of it, not
    merged already, neither split from the other, and at least one of the
    pair still open; earliest first. The order's foreign-key index serves
    it (a handful of inquiries per order)."""
    if inquiry.order_id is None or inquiry.merged_into_id is not None:
        return Inquiry.objects.none()
    window = timedelta(days=MERGE_SUGGEST_DAYS)
    suggestions = (
        Inquiry.objects.filter(
            order_id=inquiry.order_id,
            customer_id=inquiry.customer_id,
            merged_into__isnull=True,
            created_at__gte=inquiry.created_at - window,
            created_at__lte=inquiry.created_at + window,
        )
        .exclude(pk=inquiry.pk)
        .exclude(split_from_id=inquiry.pk)
        .order_by("created_at", "id")
    )
    if inquiry.split_from_id is not None:
        suggestions = suggestions.exclude(pk=inquiry.split_from_id)
    if not inquiry.is_open:
        suggestions = suggestions.filter(status__in=OPEN_STATUSES)
    return suggestions


def merge_candidates(inquiry: Inquiry) -> QuerySet[Inquiry]:
    """What the merge page offers: the customer's inquiries not merged
    already, `inquiry` among them, newest first (the customer's inquiries
    index serves it), each with how many messages and events it has (what
    would move)."""
    return (
        Inquiry.objects.filter(customer_id=inquiry.customer_id, merged_into__isnull=True)
        .annotate(
            message_count=related_count(InquiryMessage.objects.all(), customer_field="inquiry"),
            event_count=related_count(InquiryEvent.objects.all(), customer_field="inquiry"),
        )
        .select_related("assignee", "order")
        .order_by("-created_at", "-id")
    )


def merge_panel_inquiries(inquiry: Inquiry) -> list[Inquiry]:
    """What the inquiry page's merge panel names, in one query (none when
    there is nothing to name): the inquiry it was merged into, the one it
    was split out of, and its merge_suggestions."""
    pointers = [pk for pk in (inquiry.merged_into_id, inquiry.split_from_id) if pk]
    if not pointers and inquiry.order_id is None:
        return []
    return list(merge_suggestions(inquiry) | Inquiry.objects.filter(pk__in=pointers).order_by())


def merge_suggested() -> Exists:
    """True for an inquiry that has a merge suggestion (merge_suggestions'
    rule, as one correlated EXISTS for the inbox filter): another inquiry
    of the same customer about the same order within MERGE_SUGGEST_DAYS,
    not merged, neither split from the other. The order's index serves
    each probe."""
    window = timedelta(days=MERGE_SUGGEST_DAYS)
    twins = (
        Inquiry.objects.filter(
            order_id=OuterRef("order_id"),
            customer_id=OuterRef("customer_id"),
            merged_into__isnull=True,
            created_at__gte=OuterRef("created_at") - window,
            created_at__lte=OuterRef("created_at") + window,
        )
        .exclude(pk=OuterRef("pk"))
        .exclude(pk=Coalesce(OuterRef("split_from_id"), Value(0)))
        .filter(Q(split_from_id__isnull=True) | ~Q(split_from_id=OuterRef("pk")))
    )
    return Exists(twins)


def assignment_rule_for(*, channel: str, category_id: int | None) -> AssignmentRule | None:
    """The active assignment rule that covers a new inquiry: its category's,
    else its channel's, else the rule for all inquiries; None without one."""
    covers = Q(category__isnull=True, channel__in=[channel, ""])
    if category_id is not None:
        covers |= Q(category_id=category_id)
    rules = AssignmentRule.objects.filter(covers, is_active=True)
    return rules.order_by(F("category_id").asc(nulls_last=True), "-channel").first()


def assignment_candidates(*, rule: AssignmentRule) -> QuerySet[User]:
    """The agents a round-robin rule may give a new inquiry to, the next one
    first: assignable staff of the rule's group (everyone without a group)
    who are present and hold fewer open inquiries than their limit, the
    least recently assigned first (never assigned before anyone), then by
    id."""
    staff = assignable_staff()
    if rule.group_id is not None:
        staff = staff.filter(groups=rule.group_id)
    open_count = (
        Inquiry.objects.filter(assignee=OuterRef("pk"), status__in=OPEN_STATUSES)
        .order_by()
        .values("assignee")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return (
        get_user_model()
        .objects.filter(pk__in=staff.values("pk"), availability__is_present=True)
        .annotate(open_count=Coalesce(Subquery(open_count), 0))
        .filter(open_count__lt=F("availability__open_limit"))
        .order_by(F("availability__last_assigned_at").asc(nulls_first=True), "pk")
    )


def assignment_rules_unstaffed() -> list:
    """The active round-robin rules with nobody to give a new inquiry to
    right now: what the inbox warns about (one query per such rule; there
    are a few rules)."""
    rules = AssignmentRule.objects.filter(
        is_active=True, mode=AssignmentMode.ROUND_ROBIN
    ).select_related("category")
    return [rule for rule in rules if not assignment_candidates(rule=rule).exists()]


def assignment_status(*, user: User | AnonymousUser) -> dict:
    """What the inbox shows about automatic assignment: whether `user` is
    present (None when they are not assignable staff, False when they
    never said) and the round-robin rules with nobody available now."""
    present = list(
        assignable_staff().filter(pk=user.pk).values_list("availability__is_present", flat=True)
    )
    return {
        "present": bool(present[0]) if present else None,
        "unstaffed": [str(rule) for rule in assignment_rules_unstaffed()],
    }
