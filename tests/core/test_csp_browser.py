"""Pages that run scripts of their own, in a real browser (Debian's
Chromium through Playwright) under the Content-Security-Policy: they work
and the browser reports no violation. The home, reply and broadcast pages
are covered by their own browser tests (tests.browser.watch_csp)."""

from __future__ import annotations

import pytest

from outreach.models import Campaign, CampaignStatus
from tests.browser import chromium_browser, watch_csp
from tests.outreach.test_campaign_admin import (  # noqa: F401 (fixtures)
    consented,
    marketer,
    segment,
    template,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-marketer-1234"


def test_the_api_docs_draw_swagger_ui_under_the_policy(live_server, monkeypatch):
    errors: list[str] = []
    violations: list[str] = []
    with chromium_browser(monkeypatch) as browser:
        context = browser.new_context(locale="ja-JP")
        watch_csp(context, violations)
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live_server.url}/api/docs/")
        # the schema is fetched and its operations listed
        page.wait_for_selector(".swagger-ui .info .title")
        page.wait_for_selector(".opblock-tag")
        assert page.locator(".opblock").count() > 0
        context.close()
    assert errors == []
    assert violations == []


def test_the_campaign_and_template_pages_work_under_the_policy(live_server, request, monkeypatch):
    # the campaign admin tests' fixtures (imported above)
    user, email, audience = map(request.getfixturevalue, ("marketer", "template", "segment"))
    customer = consented()
    campaign = Campaign.objects.create(
        name="冬のセール", channel="email", template=email, segment=audience
    )
    errors: list[str] = []
    violations: list[str] = []
    asked: list[str] = []
    with chromium_browser(monkeypatch) as browser:
        sync_api = pytest.importorskip("playwright.sync_api")
        expect = sync_api.expect
        context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 1000})
        watch_csp(context, violations)
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
        page.goto(f"{live_server.url}/admin/login/?next=/admin/outreach/campaign/add/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")

        # the add form offers only the chosen channel's templates (inline script, nonce)
        page.wait_for_selector("#id_channel")
        page.select_option("#id_channel", "line")
        assert page.locator(f"#id_template option[value='{email.pk}']").is_disabled()
        page.select_option("#id_channel", "email")
        assert not page.locator(f"#id_template option[value='{email.pk}']").is_disabled()

        # "Send now" asks first (core/confirm.js); declining sends nothing
        page.goto(f"{live_server.url}/admin/outreach/campaign/{campaign.pk}/change/")
        page.locator("#campaign-panel button.default").click()
        assert len(asked) == 1 and "冬のセール" in asked[0]
        campaign.refresh_from_db()
        assert campaign.status == CampaignStatus.DRAFT

        # the LINE template editor counts characters (inline script, nonce)
        page.goto(f"{live_server.url}/admin/outreach/messagetemplate/add/")
        page.select_option("#id_channel", "line")
        area = page.locator("textarea.line-message").first
        area.fill("こんにちは")
        expect(page.locator(".line-counter").first).to_contain_text("5")

        # the preview shows the HTML body in its sandboxed frame, select2 and all
        email.body_html = "<p>セール開催中です。</p>"
        email.save(update_fields=["body_html"])
        page.goto(
            f"{live_server.url}/admin/outreach/messagetemplate/{email.pk}/preview/"
            f"?customer={customer.pk}"
        )
        expect(page.locator(".select2-container").first).to_be_visible()
        frame = page.frame_locator("iframe.mail-html")
        expect(frame.locator("body")).to_contain_text("セール開催中です。")
        context.close()
    assert errors == []
    assert violations == []
