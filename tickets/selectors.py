"""Reads for inquiries. Each returns a QuerySet holding the joins its
callers need (no N+1)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import (
    Case,
    Count,
    F,
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
from crm.models import Customer
from outreach.segments import related_count
from tickets.models import (
    OPEN_STATUSES,
    AssignmentMode,
    AssignmentRule,
    Inquiry,
    InquiryMessage,
    MessageKind,
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


def inbox(*, open_only: bool = False) -> QuerySet[Inquiry]:
    """The agent inbox: everything a row shows, joined; `last_reply_status`
    is the delivery status of the latest reply (None before one is sent)."""
    latest_reply = InquiryMessage.objects.filter(
        inquiry=OuterRef("pk"), kind=MessageKind.OUTBOUND
    ).order_by("-created_at", "-id")
    queryset = Inquiry.objects.select_related("customer", "category", "assignee").annotate(
        last_reply_status=Subquery(latest_reply.values("delivery__status")[:1])
    )
    if open_only:
        queryset = queryset.filter(status__in=OPEN_STATUSES)
    return queryset


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


def replies_by_others(messages: Iterable[InquiryMessage], *, user) -> list[InquiryMessage]:
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
        and message.author_id != user.pk
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


def assignment_rule_for(*, channel: str, category_id: int | None):
    """The active assignment rule that covers a new inquiry: its category's,
    else its channel's, else the rule for all inquiries; None without one."""
    covers = Q(category__isnull=True, channel__in=[channel, ""])
    if category_id is not None:
        covers |= Q(category_id=category_id)
    rules = AssignmentRule.objects.filter(covers, is_active=True)
    return rules.order_by(F("category_id").asc(nulls_last=True), "-channel").first()


def assignment_candidates(*, rule) -> QuerySet:
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


def assignment_status(*, user) -> dict:
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
