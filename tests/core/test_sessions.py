"""Idle expiry of admin sessions (SESSION_IDLE_MINUTES, core.middleware)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")
LOGIN = reverse("admin:login")


class Clock:
    """Moves django.utils.timezone.now, which the session store reads."""

    def __init__(self, monkeypatch) -> None:
        self.now = timezone.now()
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


def is_logged_in(client) -> bool:
    response = client.get(INDEX)
    if response.status_code == 302:
        assert response["Location"].startswith(LOGIN)
        return False
    assert response.status_code == 200
    return True


def test_default_idle_time_is_an_hour(settings):
    assert settings.SESSION_IDLE_MINUTES == 60
    assert settings.SESSION_COOKIE_AGE == 3600


def test_session_idle_past_the_limit_is_sent_to_login(client, owner, monkeypatch):
    clock = Clock(monkeypatch)
    client.force_login(owner)
    assert is_logged_in(client)

    clock.advance(minutes=61)

    assert not is_logged_in(client)


def test_session_in_use_stays_logged_in_past_the_idle_time(client, owner, monkeypatch):
    clock = Clock(monkeypatch)
    client.force_login(owner)
    # a request every 50 minutes for three hours: never idle for an hour
    for _ in range(4):
        clock.advance(minutes=50)
        assert is_logged_in(client)
    clock.advance(minutes=59)
    assert is_logged_in(client)


def test_idle_minutes_come_from_the_environment():
    import subprocess
    import sys

    def settings_with(value: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-c",
                "import os, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; "
                "django.setup(); from django.conf import settings; "
                "print(settings.SESSION_COOKIE_AGE)",
            ],
            env={"SESSION_IDLE_MINUTES": value, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
        )

    assert settings_with("15").stdout.strip() == "900"
    refused = settings_with("an hour")
    assert refused.returncode != 0
    assert "SESSION_IDLE_MINUTES='an hour' is not an integer" in refused.stderr


def test_requests_within_a_minute_do_not_write_the_session(client, owner, monkeypatch):
    clock = Clock(monkeypatch)
    client.force_login(owner)

    def session_writes() -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            assert is_logged_in(client)
        return [q["sql"] for q in queries if 'UPDATE "django_session"' in q["sql"]]

    assert session_writes() == []
    clock.advance(seconds=30)
    assert session_writes() == []
    clock.advance(seconds=31)
    assert len(session_writes()) == 1  # pushed back once a minute
    assert session_writes() == []
