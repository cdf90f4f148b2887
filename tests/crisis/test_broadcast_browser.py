"""The mall outage, end to end in a real browser (Debian's Chromium through
Playwright) against the live server: a manager opens the incident from the
add form, an agent sees its banner on their own page, and the manager sends
the emergency broadcast from the incident page; the real worker (a qcluster
on the test database) sends it to the in-process SMTP server while the
page's progress climbs to 100 %."""

from __future__ import annotations

import re

import pytest

from crisis.models import Incident, IncidentSend
from tests.browser import chromium_browser, watch_csp
from tests.crisis.broadcasting import broadcast_template
from tests.crisis.test_broadcast_worker import rakuten_customers
from tests.outreach.test_worker_faults import smtp_recipients

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def login(page, live_server, username: str, password: str, next_url: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.locator("input[type=submit]").click()
    page.wait_for_url(f"{live_server.url}{next_url}")


def test_a_manager_opens_an_outage_an_agent_sees_it_and_the_broadcast_reaches_100_percent(
    live_server, cluster, smtp_server, owner, colleague, monkeypatch, tmp_path, settings
):
    # the worker runs with no quiet hours (tests/outreach/test_worker_faults.py): so does the page
    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0
    # given 25 Rakuten customers who opted in to email, and the broadcast template
    customers = rakuten_customers(25)
    template = broadcast_template()
    cluster.start()
    title = "楽天市場の障害（スーパーSALE中）"

    errors: list[str] = []
    violations: list[str] = []
    with chromium_browser(monkeypatch) as browser:
        sync_api = pytest.importorskip("playwright.sync_api")
        expect = sync_api.expect
        context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 1000})
        watch_csp(context, violations)
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        asked: list[str] = []
        page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))

        # when the manager opens the incident from the add form
        login(page, live_server, "owner", "pw-owner-1234", "/admin/crisis/incident/add/")
        page.select_option("#id_kind", "mall_outage")
        page.fill("#id_title", title)
        page.select_option("#id_channel", "rakuten")
        page.fill("#id_expected_recovery_at_0", "2099-01-01")
        page.fill("#id_expected_recovery_at_1", "18:00:00")
        page.locator("input[name=_continue]").click()
        outage = Incident.objects.get(title=title)
        page_url = f"{live_server.url}/admin/crisis/incident/{outage.pk}/change/"
        page.wait_for_url(page_url)
        # with the mall-outage playbook copied into its checklist
        assert outage.checklist.count() > 0

        # then an agent, on their own home page, sees the banner
        agent_context = browser.new_context(locale="ja-JP")
        watch_csp(agent_context, violations)
        agent_context.set_default_timeout(15_000)
        agent = agent_context.new_page()
        agent.on("pageerror", lambda error: errors.append(str(error)))
        login(agent, live_server, "colleague", "pw-colleague-1234", "/admin/")
        banner = agent.locator(".incident-banner")
        expect(banner).to_contain_text(title)
        expect(banner).to_contain_text("楽天市場")
        expect(banner).to_contain_text("1/1 18:00")
        agent.screenshot(path=str(tmp_path / "agent-banner.png"), full_page=True)
        agent_context.close()

        # then the panel offers the broadcast, and the announcement to copy
        panel = page.locator("#broadcast-panel")
        expect(panel.locator("#announcement-x")).to_have_attribute("readonly", "")
        # only the chosen channel's templates are offered
        page.select_option("#id_broadcast-channel", "line")
        assert page.locator(f"#id_broadcast-template option[value='{template.pk}']").is_disabled()
        page.select_option("#id_broadcast-channel", "email")

        # when they choose the template and send
        page.select_option("#id_broadcast-template", str(template.pk))
        panel.locator("#broadcast-form button[type=submit]").click()
        page.wait_for_url(re.compile(rf"/admin/crisis/incident/{outage.pk}/change/"))
        # after being asked to confirm (core/confirm.js: no inline handler under the CSP)
        assert asked == ["緊急一斉送信を今すぐ送りますか？"]
        expect(page.locator(".messagelist .success")).to_have_count(1)

        # then the progress climbs to 100 % by itself (the page polls)
        sent = IncidentSend.objects.get()
        box = page.locator(f"#send-progress-{sent.send_id}")
        expect(box.locator("[data-field=percent]")).to_have_text("100", timeout=90_000)
        expect(box.locator("[data-field=done]")).to_have_text("25")
        page.screenshot(path=str(tmp_path / "broadcast-sent.png"), full_page=True)
        context.close()

    assert errors == []
    assert violations == []  # the Content-Security-Policy blocked nothing
    # and the mail server holds one message for each of them
    assert smtp_recipients(smtp_server) == {c.email for c in customers}
    assert len(smtp_server.received) == 25
    subject = smtp_server.received[0].message["Subject"]
    assert "楽天市場" in subject
