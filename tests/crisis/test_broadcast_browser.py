"""A manager sends the emergency broadcast from the incident page in a real
browser (Debian's Chromium through Playwright) against the live server; the
real worker (a qcluster on the test database) sends it to the in-process
SMTP server while the page's progress climbs to 100 %.

(The integrator adds the step where an agent sees the incident banner, once
the incidents branch is merged.)"""

from __future__ import annotations

import re

import pytest

from crisis.models import IncidentSend
from tests.browser import chromium_browser
from tests.crisis.broadcasting import broadcast_template, incident
from tests.crisis.test_broadcast_worker import rakuten_customers
from tests.outreach.test_worker_faults import smtp_recipients

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_manager_sends_the_broadcast_and_watches_it_reach_100_percent(
    live_server, cluster, smtp_server, owner, monkeypatch, tmp_path
):
    # given a Rakuten outage and 25 Rakuten customers who opted in to email
    customers = rakuten_customers(25)
    outage = incident(actor=owner, channel="rakuten", title="楽天市場の障害（スーパーSALE中）")
    template = broadcast_template()
    cluster.start()
    page_url = f"{live_server.url}/admin/crisis/incident/{outage.pk}/change/"

    errors: list[str] = []
    with chromium_browser(monkeypatch) as browser:
        sync_api = pytest.importorskip("playwright.sync_api")
        expect = sync_api.expect
        context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 1000})
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("dialog", lambda dialog: dialog.accept())

        # when the manager logs in and opens the incident
        page.goto(f"{live_server.url}/admin/login/?next={page_url}")
        page.fill("#id_username", "owner")
        page.fill("#id_password", "pw-owner-1234")
        page.locator("input[type=submit]").click()
        page.wait_for_url(page_url)

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
        expect(page.locator(".messagelist .success")).to_have_count(1)

        # then the progress climbs to 100 % by itself (the page polls)
        sent = IncidentSend.objects.get()
        box = page.locator(f"#send-progress-{sent.send_id}")
        expect(box.locator("[data-field=percent]")).to_have_text("100", timeout=90_000)
        expect(box.locator("[data-field=done]")).to_have_text("25")
        page.screenshot(path=str(tmp_path / "broadcast-sent.png"), full_page=True)
        context.close()

    assert errors == []
    # and the mail server holds one message for each of them
    assert smtp_recipients(smtp_server) == {c.email for c in customers}
    assert len(smtp_server.received) == 25
    subject = smtp_server.received[0].message["Subject"]
    assert "楽天市場" in subject
