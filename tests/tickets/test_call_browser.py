"""An agent logs a phone call on an existing inquiry in a real browser
(Debian's Chromium through Playwright) against the live server: the call
shows in the conversation with its length, and, answered on the spot, it
is the first reply."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from core.roles import AGENT
from crm.models import Channel
from tests.browser import chromium_browser, watch_csp
from tests.crm import factories as crm_factories
from tickets.models import InquiryMessage, SlaState
from tickets.services import inquiry_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-agent-suzuki-1234"
NOTES = "お届け日の確認のお電話。明日の午前中に届く予定とお伝えした。"


@pytest.fixture
def agent(django_user_model):
    user = django_user_model.objects.create_user(
        "suzuki", password=PASSWORD, is_staff=True, last_name="鈴木"
    )
    user.groups.add(Group.objects.get(name=AGENT))
    return user


def test_agent_logs_a_call_answered_on_the_spot_on_an_existing_inquiry(
    live_server, agent, monkeypatch, tmp_path
):
    # given an email inquiry received two hours ago, not answered yet
    customer = crm_factories.customer(family_name="山本", given_name="一郎")
    inquiry = inquiry_create(
        customer=customer,
        channel="email",
        subject="注文した商品がまだ届きません",
        body_text="11月20日に注文した商品がまだ届きません。",
        received_at=timezone.now() - timedelta(hours=2),
    )
    page_url = f"/admin/tickets/inquiry/{inquiry.pk}/change/"

    errors: list[str] = []
    violations: list[str] = []
    with chromium_browser(monkeypatch) as browser:
        sync_api = pytest.importorskip("playwright.sync_api")
        expect = sync_api.expect
        context = browser.new_context(locale="ja-JP", viewport={"width": 1366, "height": 900})
        watch_csp(context, violations)
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))

        page.goto(f"{live_server.url}/admin/login/?next={page_url}")
        page.fill("#id_username", "suzuki")
        page.fill("#id_password", PASSWORD)
        page.locator("input[type=submit]").click()
        page.wait_for_url(f"{live_server.url}{page_url}")

        # when the customer calls and the agent answers, then writes it down
        page.locator("#call summary").click()
        page.fill("#id_call-minutes", "8")
        page.fill("#id_call-notes", NOTES)
        page.check("#id_call-answered")
        page.screenshot(path=str(tmp_path / "call-form-1366.png"), full_page=True)
        page.locator("#call-form button[type=submit]").click()

        # then the page says so, shows the call in the conversation, and the
        # first reply is met
        expect(page.locator(".messagelist .success")).to_have_count(1)
        page.wait_for_url(re.compile(rf"{page_url}#latest$"))
        call = page.locator("#conversation li.msg-customer", has_text=NOTES)
        expect(call).to_have_count(1)
        expect(call.locator(".tag-call")).to_have_text("8分・その場で回答")
        expect(call.locator(".msg-channel")).to_have_text("電話")
        assert page.locator(".inquiry-sla .sla").get_attribute("data-sla") == "met"
        page.set_viewport_size({"width": 1920, "height": 1080})
        page.screenshot(path=str(tmp_path / "call-logged-1920.png"), full_page=True)
        context.close()

    assert errors == []
    assert violations == []
    message = InquiryMessage.objects.get(inquiry=inquiry, channel=Channel.PHONE)
    assert (message.call_minutes, message.call_answered, message.author) == (8, True, agent)
    inquiry.refresh_from_db()
    assert inquiry.sla_state == SlaState.MET
    assert inquiry.first_replied_at is not None
