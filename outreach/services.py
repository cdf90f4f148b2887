"""Writes for outreach: templates, sends, campaigns, opt-outs."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Case, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core.timeline import actor_or_none
from crm.models import (
    Channel,
    ChannelIdentity,
    ConsentSource,
    ConsentState,
    Customer,
)
from crm.services import consent_withdraw, customer_test_recipient_set, customer_upsert
from outreach import ledger
from outreach.ledger import PENDING
from outreach.models import (
    CAMPAIGN_EDITABLE,
    Campaign,
    CampaignEvent,
    CampaignEventKind,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    MessageChannel,
    MessageTemplate,
    MulticastRequest,
    Purpose,
    Send,
    SendKind,
    SendStatus,
    SkipReason,
)
from outreach.segments import segment_customers
from outreach.selectors import test_recipients
from outreach.templating import template_validate

logger = logging.getLogger(__name__)


# --- Templates ---------------------------------------------------------------


def template_save(*, template: MessageTemplate, actor=None) -> MessageTemplate:
    """Validate (syntax, variables, LINE limits) and save."""
    check = template_validate(
        channel=template.channel,
        subject=template.subject,
        body_text=template.body_text,
        body_html=template.body_html,
        line_messages=template.line_messages,
    )
    template.is_personal = check.is_personal
    if template.pk is None and getattr(actor, "pk", None):
        template.created_by = actor
    template.full_clean()
    template.save()
    return template


# --- Unsubscribe links ------------------------------------------------------------------


def unsubscribe_token(*, customer_id: int, channel: str) -> str:
    return signing.dumps(
        {"c": customer_id, "ch": channel}, salt=settings.UNSUBSCRIBE_SALT, compress=True
    )


def unsubscribe_token_read(token: str) -> tuple[int, str]:
    """(customer id, channel) of a link; raises signing.BadSignature."""
    data = signing.loads(token, salt=settings.UNSUBSCRIBE_SALT)
    if not isinstance(data, dict) or "c" not in data or data.get("ch") not in MessageChannel.values:
        raise signing.BadSignature("malformed unsubscribe token")
    return int(data["c"]), data["ch"]


@functools.lru_cache(maxsize=8)
def _unsubscribe_path(
    script_prefix: str, urlconf: str | None, root_urlconf: str
) -> tuple[str, str]:
    """The unsubscribe path before and after its token, resolved once per
    URLconf: `reverse()` for every mail was the email worker's largest cost
    after rendering. A token (URL-safe base64, ':' and '.') is a path
    segment reverse() leaves as it is."""
    before, _token, after = reverse("outreach:unsubscribe", args=["TOKEN"]).partition("TOKEN")
    return before, after


def unsubscribe_url(*, customer_id: int, channel: str) -> str:
    token = unsubscribe_token(customer_id=customer_id, channel=channel)
    before, after = _unsubscribe_path(get_script_prefix(), get_urlconf(), settings.ROOT_URLCONF)
    return settings.SITE_URL + before + token + after


def unsubscribe_apply(*, customer: Customer, channel: str) -> None:
    """The unsubscribe link and its one-click POST: opt out once. A second
    click (or a mail client's one-click after the page's button) writes no
    second event, but anything still queued is skipped either way."""
    consent_withdraw(
        customer=customer, channel=channel, source=ConsentSource.UNSUBSCRIBE, unless_current=True
    )


def deliveries_skip_for_opt_out(*, customer_id: int, channel: str) -> int:
    """Skip queued marketing rows at once. `crm.services.consent_record`
    calls it for every opt-out, whatever its door: nothing else should. A
    row of a LINE request (a retry key on the row, or named by an open
    multicast request) may already have gone out; it is settled by
    re-sending that request as it was, so it is left alone."""
    queued = Delivery.objects.filter(
        customer_id=customer_id, channel=channel, send__purpose=Purpose.MARKETING
    )
    return _queued_skip(queued, reason=SkipReason.UNSUBSCRIBED)


def deliveries_skip_for_erasure(*, customer_ids: list[int]) -> int:
    """Skip everything still queued to customers whose personal data is
    being erased (crm.services.privacy), marketing or not: nothing more
    goes to them. A LINE request's rows are left as in an opt-out."""
    return _queued_skip(
        Delivery.objects.filter(customer_id__in=customer_ids), reason=SkipReason.GONE
    )


def _queued_skip(deliveries: QuerySet[Delivery], *, reason: str) -> int:
    queued = deliveries.filter(status=DeliveryStatus.QUEUED, retry_key__isnull=True)
    with transaction.atomic():
        sends = Send.objects.filter(pk__in=queued.values("send_id"))
        ledger.sends_lock(sends)
        return queued.exclude(pk__any_of=ledger.multicast_open_ids(sends)).update(
            status=DeliveryStatus.SKIPPED, skip_reason=reason, updated_at=timezone.now()
        )


# --- Sends ----------------------------------------------------------------------


def send_create(
    *,
    kind: str,
    channel: str,
    purpose: str,
    template: MessageTemplate | None = None,
    content: dict[str, Any] | None = None,
    respect_quiet_hours: bool | None = None,
    actor=None,
) -> Send:
    if template is not None and template.channel != channel:
        raise ValidationError({"template": [_("The template is for another channel.")]})
    if template is None and not content:
        raise ValidationError({"content": [_("A send needs a template or content.")]})
    content = dict(content or {})
    if template is not None:
        # What goes out is the template as it is now: editing the template
        # later does not change a send that is already under way.
        content["template"] = template_snapshot(template)
    return Send.objects.create(
        kind=kind,
        channel=channel,
        purpose=purpose,
        template=template,
        content=content,
        respect_quiet_hours=purpose == Purpose.MARKETING
        if respect_quiet_hours is None
        else respect_quiet_hours,
        created_by=actor_or_none(actor),
    )


def template_snapshot(template: MessageTemplate) -> dict[str, Any]:
    return {
        "subject": template.subject,
        "body_text": template.body_text,
        "body_html": template.body_html,
        "line_messages": list(template.line_messages or []),
        "is_personal": template.is_personal,
    }


def send_enqueue(send: Send, *, parallel: int | None = None) -> None:
    """Start dispatch tasks for a send once the transaction commits."""
    from django_q.tasks import async_task

    count = parallel or settings.DISPATCH_PARALLELISM

    def enqueue() -> None:
        for _index in range(count):
            async_task("outreach.tasks.send_dispatch_task", send.pk, group=f"send-{send.pk}")

    transaction.on_commit(enqueue)


def eligibility_reason(*, channel: str, purpose: str, customer_ids=None) -> Case:
    """Why a customer gets no message on `channel` (first reason wins), or
    "" — as one SQL expression over the customer row. The one definition of
    who may be sent what: the launch snapshot and the worker's send-time
    check both use it.

    Each test is `id IN (SELECT customer_id ...)`, which PostgreSQL runs
    once per query as a hashed subplan (a correlated EXISTS in a CASE is
    costed per row: a plan estimated in millions, which switches on JIT
    compilation, seconds at launch). `customer_ids` (a worker's batch)
    limits every subquery to those customers, so that checking 500 rows
    reads 500 rows of each table, not the whole table."""

    def among(queryset: QuerySet) -> Q:
        if customer_ids is not None:
            queryset = queryset.filter(customer_id__any_of=customer_ids)
        return Q(pk__in=queryset.values("customer_id"))

    consent_channel = channel  # outreach channels map 1:1 onto consent channels
    consent = ConsentState.objects.filter(channel=consent_channel)
    identities = ChannelIdentity.objects.all()
    if channel == MessageChannel.EMAIL:
        no_address = Q(email_normalized="")
    else:
        no_address = ~among(identities.filter(channel=Channel.LINE))
    whens = [When(merged_into__isnull=False, then=Value(SkipReason.MERGED.value))]
    if purpose == Purpose.MARKETING:
        amazon_only = among(identities.filter(channel=Channel.AMAZON)) & ~among(
            identities.exclude(channel=Channel.AMAZON)
        )
        whens += [
            When(is_claimant=True, then=Value(SkipReason.CLAIMANT.value)),
            When(amazon_only, then=Value(SkipReason.AMAZON_ONLY.value)),
            When(among(consent.filter(granted=False)), then=Value(SkipReason.UNSUBSCRIBED.value)),
            When(~among(consent.filter(granted=True)), then=Value(SkipReason.NO_CONSENT.value)),
        ]
    whens.append(When(no_address, then=Value(SkipReason.NO_ADDRESS.value)))
    return Case(*whens, default=Value(""))


def recipient_address(*, channel: str):
    """The customer's address on `channel`, as an SQL expression: the email
    address, or the LINE userId of their (latest) LINE identity."""
    if channel == MessageChannel.EMAIL:
        return F("email")
    return Subquery(
        ChannelIdentity.objects.filter(customer=OuterRef("pk"), channel=Channel.LINE)
        .order_by("-id")
        .values("external_id")[:1]
    )


def recipients_checked(*, customer_ids, channel: str, purpose: str) -> QuerySet[Customer]:
    """Customers annotated with `skip_reason` and `send_address`, one query:
    the worker's send-time check."""
    customer_ids = list(customer_ids)
    return Customer.objects.filter(pk__any_of=customer_ids).annotate(
        skip_reason=eligibility_reason(channel=channel, purpose=purpose, customer_ids=customer_ids),
        send_address=recipient_address(channel=channel),
    )


def deliveries_snapshot(
    *,
    send: Send,
    audience: QuerySet[Customer],
    now: datetime,
    context_key: str = "",
    new_send: bool = False,
) -> int:
    """Write one ledger row per customer of `audience` — queued, or skipped
    with the reason — as a single INSERT ... SELECT. Safe to repeat (rows
    that exist are left alone). Returns the number of rows written.

    `new_send`: the send was created in the current transaction, so no
    other transaction can have written its rows; a plain INSERT then skips
    ON CONFLICT's per-row speculative insertion (about a third of the
    snapshot's time for a 100,000-row campaign). A segment lists each
    customer once (its rules are column tests and subqueries, never joins);
    an audience that did not would fail the unique constraint, and the
    whole launch with it, rather than send twice."""
    reason = eligibility_reason(channel=send.channel, purpose=send_eligibility_purpose(send))
    select = audience.order_by().annotate(skip=reason).values_list("pk", "skip")
    select_sql, select_params = select.query.sql_with_params()
    stamp = connection.ops.adapt_datetimefield_value(now)
    # "WHERE 1 = 1" lets SQLite parse ON CONFLICT after a SELECT.
    conflict = "" if new_send else "WHERE 1 = 1 ON CONFLICT DO NOTHING"
    # PostgreSQL would pull the subquery up and evaluate the skip reason
    # (its five hashed subqueries) once for each of the two places the
    # outer SELECT names it; OFFSET 0 keeps it a subquery, computed once.
    fence = " OFFSET 0" if connection.vendor == "postgresql" else ""
    sql = f"""
        INSERT INTO outreach_delivery (
            send_id, customer_id, channel, context_key, status, skip_reason, attempts,
            next_attempt_at, provider_message_id, address, last_error, created_at, updated_at
        )
        SELECT %s, a.pk, %s, %s, CASE WHEN a.skip = '' THEN %s ELSE %s END,
               a.skip, 0, NULL, '', '', '', %s, %s
        FROM ({select_sql}{fence}) AS a
        {conflict}
    """
    params = [
        send.pk,
        send.channel,
        context_key,
        DeliveryStatus.QUEUED.value,
        DeliveryStatus.SKIPPED.value,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, stamp, stamp, *select_params])
        written = cursor.rowcount
    _ledger_statistics_refresh(written)
    return written


# A snapshot that grows the ledger by this share (or a never-analysed one)
# refreshes its planner statistics at once.
LEDGER_ANALYZE_SHARE = 0.1
LEDGER_ANALYZE_MIN_ROWS = 5000


def _ledger_statistics_refresh(written: int) -> None:
    """ANALYZE the ledger after a snapshot that grew it by a tenth or more
    (PostgreSQL). Autovacuum would, but up to a minute later: until then
    the planner believes the table as small as it was, and the worker's
    first batches update their 500 rows by a sequential scan of the whole
    ledger instead of 500 primary-key lookups (11 of 17 ms per batch at
    100,000 rows). Inside the launch's transaction the new rows are
    counted (ANALYZE samples the rows its own transaction wrote), and the
    statistics become visible with them at commit, before a worker starts."""
    if connection.vendor != "postgresql" or written < LEDGER_ANALYZE_MIN_ROWS:
        return
    table = connection.ops.quote_name(Delivery._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        (known,) = cursor.fetchone()
        if known < 0 or written >= LEDGER_ANALYZE_SHARE * known:
            cursor.execute(f"ANALYZE {table}")


# --- Campaigns ----------------------------------------------------------------------------


def _campaign_event(campaign: Campaign, kind: str, actor=None, **data) -> None:
    CampaignEvent.objects.create(
        campaign=campaign, kind=kind, actor=actor_or_none(actor), data=data
    )


def _campaign_check(campaign: Campaign) -> None:
    errors = {}
    if campaign.template.channel != campaign.channel:
        errors["template"] = [_("The template is for another channel.")]
    if campaign.template.purpose != Purpose.MARKETING:
        errors["template"] = [
            _("A campaign needs a marketing template (with an unsubscribe link).")
        ]
    if errors:
        raise ValidationError(errors)


def campaign_save(
    *,
    campaign: Campaign | None,
    name: str,
    channel: str,
    template: MessageTemplate,
    segment,
    actor=None,
) -> Campaign:
    """Create a draft, or edit one that has not been launched."""
    with transaction.atomic():
        if campaign is not None and campaign.pk:
            campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
            if campaign.status not in CAMPAIGN_EDITABLE:
                raise ValidationError(_("A launched campaign cannot be edited."))
            created = False
        else:
            campaign = Campaign(created_by=actor_or_none(actor))
            created = True
        campaign.name, campaign.channel = name, channel
        campaign.template, campaign.segment = template, segment
        _campaign_check(campaign)
        campaign.full_clean()
        campaign.save()
        _campaign_event(
            campaign, CampaignEventKind.CREATED if created else CampaignEventKind.EDITED, actor
        )
    return campaign


def campaign_schedule(*, campaign: Campaign, at: datetime, actor=None) -> Campaign:
    if at <= timezone.now():
        raise ValidationError({"scheduled_at": [_("Choose a time in the future.")]})
    _campaign_check(campaign)
    with transaction.atomic():
        updated = Campaign.objects.filter(pk=campaign.pk, status__in=CAMPAIGN_EDITABLE).update(
            status=CampaignStatus.SCHEDULED, scheduled_at=at
        )
        if not updated:
            raise ValidationError(_("Only a draft can be scheduled."))
        _campaign_event(campaign, CampaignEventKind.SCHEDULED, actor, at=at.isoformat())
    campaign.refresh_from_db()
    return campaign


def campaign_unschedule(*, campaign: Campaign, actor=None) -> Campaign:
    """Back to a draft: it will not go out at the scheduled time."""
    with transaction.atomic():
        updated = Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.SCHEDULED).update(
            status=CampaignStatus.DRAFT, scheduled_at=None
        )
        if not updated:
            raise ValidationError(_("Only a scheduled campaign can be unscheduled."))
        _campaign_event(campaign, CampaignEventKind.UNSCHEDULED, actor)
    campaign.refresh_from_db()
    return campaign


def campaign_launch(*, campaign: Campaign, actor=None, now: datetime | None = None) -> Campaign:
    """Snapshot the audience into the ledger and start sending. Runs once:
    a second launch (a double click, a second worker) changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update()
            .select_related("template", "segment")
            .get(pk=campaign.pk)
        )
        if campaign.status not in CAMPAIGN_EDITABLE:
            return campaign
        _campaign_check(campaign)
        send = send_create(
            kind=SendKind.CAMPAIGN,
            channel=campaign.channel,
            purpose=Purpose.MARKETING,
            template=campaign.template,
            actor=actor,
        )
        written = deliveries_snapshot(
            send=send,
            audience=segment_customers(campaign.segment, now=now),
            now=now,
            new_send=True,
        )
        campaign.send = send
        campaign.status = CampaignStatus.SENDING
        campaign.launched_at = now
        campaign.save(update_fields=["send", "status", "launched_at"])
        _campaign_event(
            campaign, CampaignEventKind.LAUNCHED, actor, send=send.pk, recipients=written
        )
        send_enqueue(send)
    logger.info("campaign %s launched as send %s", campaign.pk, send.pk)
    return campaign


def campaigns_launch_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    due = Campaign.objects.filter(status=CampaignStatus.SCHEDULED, scheduled_at__lte=now)
    launched = 0
    for campaign in due.order_by("scheduled_at")[:20]:
        campaign_launch(campaign=campaign, now=now)
        launched += 1
    return launched


def _campaign_transition(
    campaign: Campaign,
    *,
    from_: set[str],
    to: str,
    send_change: Callable[..., bool],
    event: str,
    actor,
) -> Campaign:
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",))
            .select_related("send")
            .get(pk=campaign.pk)
        )
        if campaign.status not in from_:
            raise ValidationError(
                _("A campaign that is %(status)s cannot be changed that way.")
                % {"status": campaign.get_status_display()}
            )
        campaign.status = to
        fields = ["status"]
        if to in (CampaignStatus.CANCELLED, CampaignStatus.COMPLETED):
            campaign.completed_at = timezone.now()
            fields.append("completed_at")
        campaign.save(update_fields=fields)
        if campaign.send_id:
            send_change(send=campaign.send, actor=actor)
        _campaign_event(campaign, event, actor)
    return campaign


def campaign_pause(*, campaign: Campaign, actor=None) -> Campaign:
    return _campaign_transition(
        campaign,
        from_={CampaignStatus.SENDING},
        to=CampaignStatus.PAUSED,
        send_change=send_pause,
        event=CampaignEventKind.PAUSED,
        actor=actor,
    )


def campaign_resume(*, campaign: Campaign, actor=None) -> Campaign:
    return _campaign_transition(
        campaign,
        from_={CampaignStatus.PAUSED},
        to=CampaignStatus.SENDING,
        send_change=send_resume,
        event=CampaignEventKind.RESUMED,
        actor=actor,
    )


def campaign_cancel(*, campaign: Campaign, actor=None) -> Campaign:
    return _campaign_transition(
        campaign,
        from_={
            CampaignStatus.DRAFT,
            CampaignStatus.SCHEDULED,
            CampaignStatus.SENDING,
            CampaignStatus.PAUSED,
        },
        to=CampaignStatus.CANCELLED,
        send_change=send_cancel,
        event=CampaignEventKind.CANCELLED,
        actor=actor,
    )


# --- Pausing, resuming and cancelling a send (a campaign, a broadcast) ----------------


def _send_status_change(send: Send, *, from_: tuple[str, ...], to: str) -> bool:
    """One conditional UPDATE: whether the send was in `from_` (and now is
    `to`). The worker claims rows only while its send is sending, so a
    pause or cancel holds at its next batch."""
    return bool(Send.objects.filter(pk=send.pk, status__in=from_).update(status=to))


def send_pause(*, send: Send, actor=None) -> bool:
    """Stop claiming the send's rows; what a worker holds still goes out.
    False if the send was not sending."""
    return _send_status_change(send, from_=(SendStatus.SENDING,), to=SendStatus.PAUSED)


def send_resume(*, send: Send, actor=None) -> bool:
    """Send a paused send again (its dispatch tasks start on commit). False
    if it was not paused."""
    resumed = _send_status_change(send, from_=(SendStatus.PAUSED,), to=SendStatus.SENDING)
    if resumed:
        send_enqueue(send)
    return resumed


def send_cancel(*, send: Send, actor=None) -> bool:
    """Cancel a sending or paused send and settle its rows at once (see
    send_settle_cancelled). False if it had already finished."""
    cancelled = _send_status_change(
        send, from_=(SendStatus.SENDING, SendStatus.PAUSED), to=SendStatus.CANCELLED
    )
    if cancelled:
        send_settle_cancelled(send)
    return cancelled


# What the ledger says of a row a cancelled send leaves in doubt.
CANCELLED_IN_DOUBT = "Send cancelled; the message may have gone out and is not sent again."


def send_settle_cancelled(send: Send, *, now: datetime | None = None) -> int:
    """Give the rows of a cancelled send that no live worker holds their
    final state; return how many changed. Nothing is sent for them again.

    - Rows that may have gone out become unknown, with why: an attempt
      ended in doubt (the row's `in_doubt`: a lost connection, a timeout, a
      5xx), its worker stopped in the middle of sending it (`sending`, the
      lease expired), or it is in a multicast request whose worker stopped
      (its lease expired). Such a request is settled.
    - The other pending rows never reached a provider (not attempted yet,
      deferred, or refused with a retry: an SMTP 4xx, a LINE 429): skipped,
      reason cancelled.

    A live worker keeps its rows — a push or an email it holds, the rows of
    a multicast request it holds — and records their outcome. The sends
    tick calls this again for what is left once its lease has ended."""
    now = now or timezone.now()
    pending = Delivery.objects.filter(send=send, status__in=PENDING)
    doubtful = {
        "status": DeliveryStatus.UNKNOWN,
        "last_error": CANCELLED_IN_DOUBT,
        "lease_expires_at": None,
        "updated_at": now,
    }
    cancelled = {
        "status": DeliveryStatus.SKIPPED,
        "skip_reason": SkipReason.CANCELLED,
        "updated_at": now,
    }
    with transaction.atomic():
        sends = Send.objects.filter(pk=send.pk, status=SendStatus.CANCELLED)
        if not ledger.sends_lock(sends):
            return 0  # not cancelled
        # Requests no worker holds; locking one waits for a worker writing
        # its outcome, and skips it if that worker renewed its lease.
        idle = (
            MulticastRequest.objects.filter(send=send, settled_at__isnull=True)
            .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
            .order_by("pk")
            .select_for_update(no_key=True)
        )
        changed = 0
        for request in idle.only("attempts", "retry_key", "delivery_ids", "lease_expires_at"):
            rows = pending.filter(pk__any_of=request.delivery_ids, status=DeliveryStatus.QUEUED)
            written = ledger.request_columns(request)
            if request.lease_expires_at is None:  # waiting for its retry
                changed += rows.filter(in_doubt=True).update(**doubtful, **written)
                changed += rows.update(**cancelled, **written)
            else:  # its worker stopped during the request
                changed += rows.update(**doubtful, **written)
            MulticastRequest.objects.filter(pk=request.pk).update(
                settled_at=now, lease_expires_at=None, next_attempt_at=None
            )
        # What is left of the requests is held by live workers.
        left = pending.exclude(pk__any_of=ledger.multicast_open_ids(sends))
        changed += left.filter(
            Q(status=DeliveryStatus.QUEUED, in_doubt=True)
            | Q(status=DeliveryStatus.SENDING, lease_expires_at__lt=now)
        ).update(**doubtful)
        changed += left.filter(status=DeliveryStatus.QUEUED).update(**cancelled)
    return changed


def send_finish_if_done(send: Send) -> bool:
    """Mark a send (and its campaign) completed once nothing is pending."""
    pending = Delivery.objects.filter(send=send, status__in=PENDING).exists()
    if pending:
        return False
    now = timezone.now()
    with transaction.atomic():
        finished = Send.objects.filter(pk=send.pk, status=SendStatus.SENDING).update(
            status=SendStatus.COMPLETED, completed_at=now
        )
        # Locked, and updated only while still sending: a pause committed
        # meanwhile is not overwritten.
        campaigns = list(
            Campaign.objects.select_for_update().filter(send=send, status=CampaignStatus.SENDING)
        )
        Campaign.objects.filter(
            pk__in=[c.pk for c in campaigns], status=CampaignStatus.SENDING
        ).update(status=CampaignStatus.COMPLETED, completed_at=now)
        CampaignEvent.objects.bulk_create(
            CampaignEvent(campaign=campaign, kind=CampaignEventKind.COMPLETED)
            for campaign in campaigns
        )
    return bool(finished)


def campaign_test_send(*, campaign: Campaign, customer: Customer, actor=None) -> Send:
    """Send the campaign's message, as customers will get it (legal footer,
    unsubscribe link) but marked 【テスト】 first, to one test recipient now:
    a customer marked as one (outreach.selectors.test_recipients), e.g. a
    staff member's own address. Consent and quiet hours do not apply: only
    testers get it. The ledger records it as a test (its send's kind)."""
    if not test_recipients(channel=campaign.channel).filter(pk=customer.pk).exists():
        raise ValidationError(
            _("A test goes only to a test recipient with an address on this channel.")
        )
    with transaction.atomic():
        send = send_create(
            kind=SendKind.TEST,
            channel=campaign.channel,
            purpose=Purpose.MARKETING,
            template=campaign.template,
            respect_quiet_hours=False,
            actor=actor,
        )
        deliveries_snapshot(
            send=send, audience=Customer.objects.filter(pk=customer.pk), now=timezone.now()
        )
        _campaign_event(campaign, CampaignEventKind.TEST_SENT, actor, customer=customer.pk)
        send_enqueue(send, parallel=1)
    return send


def staff_test_recipient(*, user) -> Customer:
    """A staff member's own email address as a test recipient: their
    customer record by that address (made if there is none), marked as a
    test recipient."""
    if not getattr(user, "email", ""):
        raise ValidationError(_("Your staff account has no email address to send a test to."))
    customer, _created = customer_upsert(
        channel=Channel.EMAIL,
        email=user.email,
        family_name=user.last_name,
        given_name=user.first_name,
        actor=user,
    )
    return customer_test_recipient_set(customer=customer, value=True, actor=user)


def send_eligibility_purpose(send: Send) -> str:
    """Which rules decide who may receive a send: a test send goes to the
    chosen person whatever their marketing consent."""
    return Purpose.TRANSACTIONAL if send.kind == SendKind.TEST else send.purpose
