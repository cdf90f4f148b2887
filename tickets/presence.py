"""Who has an inquiry open right now: a hint for the collision warning.

The inquiry page sends a heartbeat every PRESENCE_HEARTBEAT_SECONDS; a
viewer counts as present for PRESENCE_TTL_SECONDS after their last one.
The hint lives in Django's cache (one entry per inquiry), not in the
database: it is advisory and may be lost (per-process local memory by
default). What protects a customer from two replies is the check at send
time against the inquiry's messages (tickets/admin/inquiry_page.py), which
does not depend on this.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache

from core.roles import staff_name

PRESENCE_HEARTBEAT_SECONDS = 20
PRESENCE_TTL_SECONDS = 45


@dataclass(frozen=True)
class Viewer:
    user_id: int
    name: str
    seen_at: float  # time.time()


def _key(inquiry_id: int) -> str:
    return f"tickets:presence:{inquiry_id}"


def _viewers(inquiry_id: int, now: float) -> dict[str, tuple[str, float]]:
    entries = cache.get(_key(inquiry_id)) or {}
    return {
        user_id: (name, seen_at)
        for user_id, (name, seen_at) in entries.items()
        if now - seen_at < PRESENCE_TTL_SECONDS
    }


def presence_touch(*, inquiry_id: int, user, now: float | None = None) -> None:
    """`user` has the inquiry open (the page loaded, or a heartbeat)."""
    now = time.time() if now is None else now
    entries = _viewers(inquiry_id, now)
    entries[str(user.pk)] = (staff_name(user), now)
    cache.set(_key(inquiry_id), entries, PRESENCE_TTL_SECONDS * 2)


def presence_leave(*, inquiry_id: int, user) -> None:
    """`user` closed the page (best effort: browsers may not say so)."""
    entries = _viewers(inquiry_id, time.time())
    if entries.pop(str(user.pk), None) is not None:
        cache.set(_key(inquiry_id), entries, PRESENCE_TTL_SECONDS * 2)


def presence_others(*, inquiry_id: int, user, now: float | None = None) -> list[Viewer]:
    """The other staff who have the inquiry open, by name."""
    now = time.time() if now is None else now
    viewers = [
        Viewer(user_id=int(user_id), name=name, seen_at=seen_at)
        for user_id, (name, seen_at) in _viewers(inquiry_id, now).items()
        if user_id != str(user.pk)
    ]
    return sorted(viewers, key=lambda viewer: (viewer.name, viewer.user_id))
