"""Idle expiry of staff sessions (SESSION_IDLE_MINUTES).

A session lives SESSION_COOKIE_AGE seconds from its last save. Django's
plain way to make that an idle time, SESSION_SAVE_EVERY_REQUEST, writes the
session row on every request; here a session in use is saved (its expiry
pushed back) only when its last save is older than a minute, or a tenth of
the idle time when that is shorter.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

SESSION_SAVED_AT = "_madoguchi_saved_at"


def session_touch_seconds() -> int:
    return min(60, settings.SESSION_COOKIE_AGE // 10)


def session_saved_now(session) -> None:
    """Note in the session when it was saved (marks it modified: the
    session middleware then saves it and its expiry starts again)."""
    session[SESSION_SAVED_AT] = int(timezone.now().timestamp())


def session_login_stamp(sender, request, user, **kwargs) -> None:
    """user_logged_in receiver: a new login is saved anyway; stamp it so
    that the next requests within the minute write nothing."""
    session_saved_now(request.session)


class SessionIdleMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        session = request.session
        # is_empty() first: a request without a session cookie loads nothing
        if not session.is_empty() and session.keys():
            saved_at = session.get(SESSION_SAVED_AT)
            now = int(timezone.now().timestamp())
            if saved_at is None or now - saved_at >= session_touch_seconds():
                session_saved_now(session)
        return self.get_response(request)
