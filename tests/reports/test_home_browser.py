"""The manager's home in a real browser (Debian's Chromium through
Playwright) against the live server: every chart on it is drawn."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from crm.models import OrderStatus
from reports.home import MALL_HEALTH_WINDOWS_KEY
from tests.browser import chromium_browser, watch_csp
from tests.crm import factories as crm_factories
from tickets.models import Inquiry
from tickets.services import InboundMessage, inquiry_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-owner-1234"  # tests.conftest.owner
# Counts the canvas's painted pixels (alpha > 0): 0 for a canvas left blank.
PAINTED_PIXELS = """canvas => {
  const context = canvas.getContext("2d");
  const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
  return painted;
}"""


def some_inquiries() -> None:
    now = timezone.now()
    for channel, hours_ago, replied_after in (
        ("rakuten", 30, 2),
        ("rakuten", 50, 30),
        ("amazon", 40, 10),
        ("yahoo", 20, 6),
        ("yahoo", 60, None),
    ):
        inquiry = inquiry_create(
            customer=crm_factories.customer(),
            channel=channel,
            message=InboundMessage(
                subject="お問い合わせ",
                body_text="教えてください。",
                received_at=now - timedelta(hours=hours_ago),
            ),
        )
        if replied_after is not None:
            Inquiry.objects.filter(pk=inquiry.pk).update(
                first_replied_at=inquiry.created_at + timedelta(hours=replied_after)
            )
    crm_factories.order(
        customer=crm_factories.customer(), channel="rakuten", status=OrderStatus.CANCELLED
    )


def test_the_managers_home_draws_every_chart(live_server, owner, monkeypatch):
    cache.delete(MALL_HEALTH_WINDOWS_KEY)  # counted afresh, not kept from another test
    some_inquiries()
    errors: list[str] = []
    violations: list[str] = []
    with chromium_browser(monkeypatch) as browser:
        context = browser.new_context(locale="ja-JP", viewport={"width": 1366, "height": 900})
        watch_csp(context, violations)
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", owner.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#home-health")

        canvases = page.locator("canvas")
        assert canvases.count() >= 1
        page.wait_for_function(
            "() => [...document.querySelectorAll('canvas')].every(c => Chart.getChart(c))"
        )
        for index in range(canvases.count()):
            canvas = canvases.nth(index)
            assert canvas.bounding_box()["width"] > 100
            assert canvas.evaluate(PAINTED_PIXELS) > 500, f"canvas {index} is blank"
        if shot := os.environ.get("HOME_SCREENSHOT"):
            page.screenshot(path=shot, full_page=True)
    assert errors == []
    assert violations == []  # the Content-Security-Policy blocked nothing
