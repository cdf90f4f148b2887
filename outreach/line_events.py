"""LINE webhook events: stored once, then applied (SPEC rules 8 and 11).

Every event of a verified webhook becomes one LineWebhookEvent row, keyed by
LINE's ``webhookEventId``, so a redelivery finds its row and changes nothing.
Storing and applying happen in one transaction per event; a failure while
applying rolls back to a savepoint and is kept in ``LineWebhookEvent.error``,
so one bad event never loses the others.

What each event does (user sources only; group and room events are stored,
nothing more):

  follow    the customer of that LINE userId (created with the identity if
            new) gets a LINE opt-in at the event's own time, and their LINE
            profile is read by the worker (outreach.line_profiles)
  unfollow  the same customer (created if unknown: an opt-out is worth
            keeping for the audit even for someone we never saw follow) gets
            a LINE opt-out at the event's time; while LINE consent ends up
            withdrawn, their queued LINE marketing deliveries are skipped
  message   linked to the customer (created if new) and left unprocessed
            (processed_at NULL) with its reply token, for the inquiry work;
            a user whose profile was never read gets it read
  postback  a satisfaction survey's answer (quick reply buttons) is
            recorded on its inquiry (tickets.services.csat), once
  other     stored, nothing more

Consent events carry the event's timestamp, so follow and unfollow that
arrive out of order still leave the state of the later one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.choices import Channel
from crm.models import (
    ConsentAction,
    ConsentChannel,
    ConsentSource,
)
from crm.services import consent_record, customer_upsert
from outreach.line_profiles import line_profile_due
from outreach.models import LineWebhookEvent

logger = logging.getLogger(__name__)

FOLLOW = "follow"
UNFOLLOW = "unfollow"
MESSAGE = "message"
POSTBACK = "postback"

_ID_MAX: int = LineWebhookEvent._meta.get_field("webhook_event_id").max_length  # type: ignore[assignment]  # a CharField: it has one
_TYPE_MAX = LineWebhookEvent._meta.get_field("event_type").max_length
_USER_MAX: int = LineWebhookEvent._meta.get_field("user_id").max_length  # type: ignore[assignment]  # a CharField: it has one
_TOKEN_MAX = LineWebhookEvent._meta.get_field("reply_token").max_length
_SYNTHETIC_PREFIX = "sha256:"


@dataclass(frozen=True)
class LineEventFields:
    """What the ledger row needs from one raw event, read leniently.

    ``problem`` says why the event cannot be applied ("" when it can); such
    an event is still stored, with the problem as its error."""

    webhook_event_id: str
    event_type: str
    source_type: str
    user_id: str
    reply_token: str
    occurred_at: datetime | None
    problem: str


def _synthetic_event_id(event: Any) -> str:
    """A stable key for an event without a usable webhookEventId: the hash
    of the event minus its delivery context, so a redelivery of it matches."""
    if isinstance(event, dict):
        event = {k: v for k, v in event.items() if k != "deliveryContext"}
    canonical = json.dumps(event, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return (_SYNTHETIC_PREFIX + digest)[:_ID_MAX]


def _event_time(timestamp: Any) -> datetime | None:
    """LINE's ``timestamp`` (milliseconds since the epoch) as an aware datetime."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp <= 0:
        return None
    try:
        return datetime.fromtimestamp(timestamp / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def line_event_fields(event: Any) -> LineEventFields:
    """Read one webhook event (a decoded JSON value) the way LINE's webhook
    definition shapes it; never raises."""
    problems: list[str] = []
    data = event if isinstance(event, dict) else {}
    if not isinstance(event, dict):
        problems.append("the event is not a JSON object")

    event_id = data.get("webhookEventId")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= _ID_MAX:
        problems.append("missing or invalid webhookEventId")
        event_id = _synthetic_event_id(event)

    event_type = data.get("type")
    if not isinstance(event_type, str) or not event_type:
        problems.append("missing type")
        event_type = ""

    occurred_at = _event_time(data.get("timestamp"))
    if occurred_at is None:
        problems.append("missing or invalid timestamp")

    source: Any = data.get("source")
    source = source if isinstance(source, dict) else {}
    source_type = source.get("type") if isinstance(source.get("type"), str) else ""
    user_id = source.get("userId") if isinstance(source.get("userId"), str) else ""
    if len(user_id) > _USER_MAX:
        problems.append("invalid userId")
    if source_type == "user" and not user_id and event_type in (FOLLOW, UNFOLLOW, MESSAGE):
        problems.append("user source without userId")

    reply_token = data.get("replyToken")
    reply_token = reply_token if isinstance(reply_token, str) else ""

    return LineEventFields(
        webhook_event_id=event_id,
        event_type=event_type[:_TYPE_MAX],
        source_type=source_type,
        user_id=user_id[:_USER_MAX],
        reply_token=reply_token[:_TOKEN_MAX],
        occurred_at=occurred_at,
        problem="; ".join(problems),
    )


def line_event_receive(*, event: Any) -> tuple[LineWebhookEvent, bool]:
    """Store one webhook event once and apply it. Returns (row, created);
    a known webhookEventId returns the existing row and does nothing else.

    Errors while applying are caught, logged and kept on the row (the
    webhook still answers 200: LINE would otherwise redeliver an event
    that fails the same way every time). Database errors while storing
    propagate: the webhook answers 500 and a redelivery is welcome, since
    the events stored before it are recognised by their ids."""
    fields = line_event_fields(event)
    with transaction.atomic():
        try:
            with transaction.atomic():
                row = LineWebhookEvent.objects.create(
                    webhook_event_id=fields.webhook_event_id,
                    event_type=fields.event_type,
                    user_id=fields.user_id,
                    reply_token=fields.reply_token,
                    payload=event,
                    occurred_at=fields.occurred_at or timezone.now(),
                    error=fields.problem,
                )
        except IntegrityError:
            row = LineWebhookEvent.objects.get(webhook_event_id=fields.webhook_event_id)
            logger.info("LINE event %s received again: ignored", fields.webhook_event_id)
            return row, False
        if fields.problem:
            logger.warning(
                "LINE event %s stored, not applied: %s", fields.webhook_event_id, fields.problem
            )
            return row, True
        try:
            with transaction.atomic():
                line_event_apply(event=row)
        except Exception as exc:
            logger.exception("LINE event %s could not be applied", row.webhook_event_id)
            row.customer = None
            row.processed_at = None
            row.error = f"{type(exc).__name__}: {exc}"
            row.save(update_fields=["error"])
    return row, True


def line_event_apply(*, event: LineWebhookEvent) -> LineWebhookEvent:
    """Act on a stored event (see the module docstring). Runs inside the
    caller's transaction; may be run again for an event whose error has
    been dealt with."""
    now = timezone.now()
    from_user = line_event_fields(event.payload).source_type == "user" and bool(event.user_id)
    if from_user and event.event_type in (FOLLOW, UNFOLLOW, MESSAGE):
        customer, _created = customer_upsert(channel=Channel.LINE, external_id=event.user_id)
        event.customer = customer
        note = f"LINE {event.event_type} {event.webhook_event_id}"
        if event.event_type in (FOLLOW, UNFOLLOW):
            # An unfollow skips queued LINE marketing: consent_record does it.
            consent_record(
                customer=customer,
                channel=ConsentChannel.LINE,
                action=ConsentAction.OPT_IN
                if event.event_type == FOLLOW
                else ConsentAction.OPT_OUT,
                source=ConsentSource.LINE,
                occurred_at=event.occurred_at,
                note=note,
            )
        if event.event_type in (FOLLOW, MESSAGE):
            line_profile_due(user_id=event.user_id, follow=event.event_type == FOLLOW)
    if from_user and event.event_type == POSTBACK:
        _postback_apply(event)
    # Message events from a user wait for the inquiry work; everything else
    # has nothing left to do.
    if not (from_user and event.event_type == MESSAGE):
        event.processed_at = now
    event.error = ""
    event.save(update_fields=["customer", "processed_at", "error"])
    return event


def _postback_apply(event: LineWebhookEvent) -> None:
    """A postback's data: the survey's answers are the only postbacks sent."""
    from tickets.services.csat import csat_line_postback  # tickets builds on outreach

    postback = event.payload.get("postback")
    data = postback.get("data") if isinstance(postback, dict) else None
    if isinstance(data, str):
        csat_line_postback(user_id=event.user_id, data=data)
