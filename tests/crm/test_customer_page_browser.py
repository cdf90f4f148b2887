"""The customer page in a real browser (Debian's Chromium through
Playwright), as an agent: a customer with orders, inquiries and messages
sent reads in words, at the window widths agents use."""

from __future__ import annotations

import os

import pytest

from crm.services import consent_record
from tests.browser import chromium_browser, watch_csp
from tests.crm.customer_history import customer_with_history, internal_values, marketing_template

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-colleague-1234"  # tests.conftest.colleague


@pytest.mark.parametrize("width", [1366, 1920])
def test_an_agent_reads_the_customer_page_without_internal_values(
    live_server, colleague, monkeypatch, width
):
    customer = customer_with_history(4, template=marketing_template(), agent=colleague)
    consent_record(
        customer=customer,
        channel="line",
        action="opt_out",
        source="staff",
        note="お電話で配信停止のご希望",
        actor=colleague,
    )
    errors: list[str] = []
    violations: list[str] = []
    with chromium_browser(monkeypatch) as browser:
        context = browser.new_context(locale="ja-JP", viewport={"width": width, "height": 900})
        watch_csp(context, violations)
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live_server.url}/admin/login/?next=/admin/crm/customer/{customer.pk}/change/")
        page.fill("#id_username", colleague.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#customer-overview")

        text = page.locator("#content").inner_text()
        overview = page.locator("#customer-overview")
        for section in ("orders", "inquiries", "deliveries", "timeline"):
            assert overview.locator(f"#customer-{section} tbody tr").count() >= 4, section
        # read first: the overview is above the edit form
        overview_top = overview.bounding_box()["y"]
        assert overview_top < page.locator("#id_family_name").bounding_box()["y"]
        # nothing wider than the window
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if os.environ.get("SCREENSHOTS"):
            page.screenshot(path=f"/tmp/customer-page-{width}.png", full_page=True)

    assert "¥12,345" in text and "090-1234-5678" in text
    assert "冬のセール 3" in text and "お電話で配信停止のご希望" in text
    assert internal_values(text, usernames=(colleague.username,)) == []
    assert scroll_width <= width
    assert errors == [] and violations == []
