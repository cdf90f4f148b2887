"""A marketer in a real browser (Debian's Chromium through Playwright): a
postal DM campaign's form hides the message template, and its page offers
the address list in CP932 and UTF-8; a download, once confirmed, is the
print shop's file, under the Content-Security-Policy."""

from __future__ import annotations

import pytest

from outreach.models import Delivery, DeliveryStatus
from tests.browser import chromium_browser, watch_csp
from tests.outreach.test_campaign_admin import (
    change_url,
    marketer,  # noqa: F401 (fixture)
    segment,  # noqa: F401 (fixture)
)
from tests.outreach.test_dm import dm_campaign, dm_customer

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_marketer_downloads_a_dm_address_list_from_the_campaign_page(
    live_server,
    marketer,  # noqa: F811
    segment,  # noqa: F811
    monkeypatch,
):
    customer = dm_customer(family_name="髙橋")
    campaign = dm_campaign(segment)
    url = change_url(campaign)
    errors: list[str] = []
    violations: list[str] = []
    with chromium_browser(monkeypatch) as browser:
        context = browser.new_context(
            locale="ja-JP", viewport={"width": 1366, "height": 900}, accept_downloads=True
        )
        watch_csp(context, violations)
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live_server.url}/admin/login/?next={url}")
        page.fill("#id_username", "marketer")
        page.fill("#id_password", "pw-marketer-1234")
        page.locator("input[type=submit]").click()
        page.wait_for_url(f"{live_server.url}{url}")

        assert page.locator(".field-template").is_hidden()  # no template for a DM
        page.select_option("#id_channel", "email")
        assert page.locator(".field-template").is_visible()
        page.select_option("#id_channel", "dm")
        page.on("dialog", lambda dialog: dialog.accept())
        with page.expect_download() as download:
            page.get_by_role("button", name="宛名リストをダウンロード (CP932)").click()
        content = download.value.path().read_bytes().decode("cp932")

    assert content.splitlines()[1].startswith("150-0001,東京都渋谷区神宮前1-2-3,髙橋 ")
    row = Delivery.objects.get(customer=customer)
    assert row.status == DeliveryStatus.SENT
    assert errors == []
    assert violations == []
