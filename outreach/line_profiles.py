"""LINE customers get names: the user's profile (display name and picture),
read through line-bot-sdk v3's MessagingApi.get_profile.

A follow, or the first message of a user we have not read yet, marks the
LINE identity due (``profile_due_at``) in the webhook's transaction and
hands it to the worker (line_profile_fetch_task); the every-minute job
(line_profiles_due_task) reads whatever is still due, so nothing waits on a
lost task and the webhook itself never calls LINE.

What a read does:
  found     the identity keeps the name and picture; the customer gets the
            name as their name on LINE (Customer.nickname), which staff
            screens show while no name is known (「LINE: さくら」). The
            customer's own name fields are never written: a name staff
            typed stays.
  404       LINE's answer for a user who blocked the account or is not a
            friend: the error is kept on the identity, not asked again
            (until the next follow).
  429, 5xx, no answer
            the error is kept and the read is due again in
            PROFILE_RETRY_MINUTES.
In every error case the customer stays as they were.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from core.choices import Channel
from crm.models import ChannelIdentity, Customer
from crm.services.customers import customer_search_keys_refresh
from outreach.channels.line import LineAdapter, LineProfile

logger = logging.getLogger(__name__)

PROFILE_RETRY_MINUTES = 15
PROFILES_PER_RUN = 100
_ERROR_MAX = ChannelIdentity._meta.get_field("profile_error").max_length


def line_profile_due(*, user_id: str, follow: bool, now: datetime | None = None) -> bool:
    """Mark the LINE identity of `user_id` due for a profile read: always on
    a follow (a user who comes back may have a new name), on a message only
    if it was never read nor tried. Enqueues the read after the caller's
    transaction commits. True when it was marked."""
    now = now or timezone.now()
    identities = ChannelIdentity.objects.filter(channel=Channel.LINE, external_id=user_id)
    if not follow:
        identities = identities.filter(
            profile_fetched_at__isnull=True, profile_due_at__isnull=True, profile_error=""
        )
    identity_id = identities.values_list("pk", flat=True).first()
    if identity_id is None:
        return False
    ChannelIdentity.objects.filter(pk=identity_id).update(profile_due_at=now)
    transaction.on_commit(lambda: _enqueue(identity_id))
    return True


def _enqueue(identity_id: int) -> None:
    """Hand the read to the worker now; if the queue cannot take it (Redis
    down), the every-minute job reads it, and the webhook still answers."""
    from django_q.tasks import async_task

    try:
        async_task("outreach.tasks.line_profile_fetch_task", identity_id)
    except Exception:
        logger.exception("LINE profile of identity %s: left to the every-minute job", identity_id)


def line_profile_fetch(
    *, identity_id: int, adapter: LineAdapter | None = None
) -> ChannelIdentity | None:
    """Read one LINE user's profile and keep what LINE said (see the module
    docstring). Safe to run twice; a no-op for an identity not due."""
    identity = ChannelIdentity.objects.filter(
        pk=identity_id, channel=Channel.LINE, profile_due_at__isnull=False
    ).first()
    if identity is None:
        return None
    if adapter is None:
        with LineAdapter() as own:
            answer = own.profile(user_id=identity.external_id)
    else:
        answer = adapter.profile(user_id=identity.external_id)
    return _profile_keep(identity_id, answer)


def _profile_keep(identity_id: int, answer: LineProfile) -> ChannelIdentity | None:
    now = timezone.now()
    with transaction.atomic():
        identity = ChannelIdentity.objects.select_for_update().filter(pk=identity_id).first()
        if identity is None:  # erased meanwhile
            return None
        if answer.error:
            logger.warning("LINE profile of identity %s not read: %s", identity.pk, answer.error)
            identity.profile_error = answer.error[:_ERROR_MAX]
            identity.profile_due_at = (
                now + timedelta(minutes=PROFILE_RETRY_MINUTES) if answer.transient else None
            )
            identity.save(update_fields=["profile_error", "profile_due_at"])
            return identity
        identity.display_name = answer.display_name[:255]
        identity.picture_url = answer.picture_url[:1000]
        identity.profile_fetched_at = now
        identity.profile_error = ""
        identity.profile_due_at = None
        identity.save(
            update_fields=[
                "display_name",
                "picture_url",
                "profile_fetched_at",
                "profile_error",
                "profile_due_at",
            ]
        )
        if identity.display_name:
            # Only the name on LINE: the customer's name fields stay as typed.
            Customer.objects.filter(pk=identity.customer_id).update(
                nickname=identity.display_name, nickname_channel=Channel.LINE, updated_at=now
            )
            customer_search_keys_refresh(customer_ids=[identity.customer_id])
    return identity


def line_profiles_fetch_due(*, now: datetime | None = None, limit: int = PROFILES_PER_RUN) -> int:
    """Read the profiles that are due (new follows a lost task missed,
    retries after a transient error). Returns how many were read."""
    now = now or timezone.now()
    due = list(
        ChannelIdentity.objects.filter(channel=Channel.LINE, profile_due_at__lte=now)
        .order_by("profile_due_at")
        .values_list("pk", flat=True)[:limit]
    )
    if not due:
        return 0
    with LineAdapter() as adapter:
        for identity_id in due:
            line_profile_fetch(identity_id=identity_id, adapter=adapter)
    return len(due)


def line_nicknames_fill() -> int:
    """Customers with no name on a channel yet take the display name their
    LINE identity already holds (given with the identity, as the demo data
    and store sites do, or read before). One statement; returns how many."""
    name = (
        ChannelIdentity.objects.filter(customer=OuterRef("pk"), channel=Channel.LINE)
        .exclude(display_name="")
        .order_by("-id")
        .values("display_name")[:1]
    )
    unnamed = Customer.objects.filter(nickname="").filter(Exists(name))
    ids = list(unnamed.values_list("pk", flat=True))
    filled = unnamed.update(nickname=Subquery(name), nickname_channel=Channel.LINE)
    customer_search_keys_refresh(customer_ids=ids)  # found by that name
    return filled
