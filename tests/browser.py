"""Playwright helpers for browser tests: Debian's Chromium, never a
downloaded browser.

`chromium_browser()` skips the test when Chromium is not installed, so the
suite runs on machines without it; install it with `apt-get install
chromium`. Playwright's own browser download is never used.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connections

CHROMIUM_MISSING = "chromium is not installed (Debian package: chromium)"
DEBIAN_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """Debian's Chromium, or a `chromium` on PATH; None if neither."""
    if os.access(DEBIAN_CHROMIUM, os.X_OK):
        return DEBIAN_CHROMIUM
    return shutil.which("chromium")


@contextmanager
def chromium_browser(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """A headless Chromium (Playwright sync API), closed afterwards.

    Playwright's sync API keeps an event loop in the test's thread, and
    Django refuses ORM calls from a thread with a running loop; a test
    that reads the database between browser steps needs the override.
    Those calls run in Playwright's greenlet, whose context has database
    connections of its own: they are closed on the way out, or the test
    database could not be dropped at the end of the session.
    """
    path = chromium_path()
    if path is None:
        pytest.skip(CHROMIUM_MISSING)
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            connections.close_all()
            browser.close()


def watch_csp(context, violations: list[str]) -> None:
    """Appends to `violations` each Content-Security-Policy violation the
    browser reports on the console of any page of `context`: a browser
    test asserts the list is empty at its end."""

    def on_console(message) -> None:
        if "Content Security Policy" in message.text:
            violations.append(f"{message.location.get('url')}: {message.text}")

    context.on("console", on_console)
