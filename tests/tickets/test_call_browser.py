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

from core.choices import Channel
from core.roles import AGENT
from tests.browser import chromium_browser, watch_csp
from tests.crm import factories as crm_factories
from tickets.models import Inquiry, InquiryMessage, SlaState
from tickets.services import InboundMessage, inquiry_create

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
        message=InboundMessage(
            subject="注文した商品がまだ届きません",
            body_text="11月20日に注文した商品がまだ届きません。",
            received_at=timezone.now() - timedelta(hours=2),
        ),
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


def test_agent_enters_a_new_phone_inquiry_telling_two_customers_apart(
    live_server, agent, monkeypatch, tmp_path
):
    # given two 「山本 一郎」, each with an order
    first, second = (
        crm_factories.customer(
            family_name="山本",
            given_name="一郎",
            family_name_kana="ヤマモト",
            given_name_kana="イチロウ",
            phone=f"090-1234-000{n}",
            email=f"ichiro{n}@example.jp",
        )
        for n in (1, 2)
    )
    mine = crm_factories.order(customer=second, order_number="R-2612-0002")
    crm_factories.order(customer=first, order_number="R-2612-0001")
    add_url = "/admin/tickets/inquiry/add/"

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
        page.goto(f"{live_server.url}/admin/login/?next={add_url}")
        page.fill("#id_username", "suzuki")
        page.fill("#id_password", PASSWORD)
        page.locator("input[type=submit]").click()
        page.wait_for_url(f"{live_server.url}{add_url}")

        # when the agent searches the customer: each candidate shows kana,
        # phone and email
        page.locator(".field-customer .select2-selection").click()
        page.locator(".select2-search__field").fill("山本")
        options = page.locator(".select2-results__option", has_text="山本 一郎")
        expect(options).to_have_count(2)
        expect(options.nth(0)).to_contain_text("ヤマモト イチロウ")
        page.screenshot(path=str(tmp_path / "customer-picker.png"), full_page=True)
        page.locator(".select2-results__option", has_text="ichiro2@example.jp").click()

        # then the order picker offers that customer's order only
        page.locator(".field-order .select2-selection").click()
        order_options = page.locator(".select2-results__option")
        expect(order_options).to_have_count(1)
        expect(order_options).to_contain_text("R-2612-0002")
        page.screenshot(path=str(tmp_path / "order-picker.png"), full_page=True)
        order_options.click()

        page.fill("#id_subject", "お届け日の確認")
        page.fill("#id_body_text", "お届け日を確認された。明日着とお伝えした。")
        page.fill("#id_call_minutes", "4")
        page.check("#id_call_answered")
        page.locator("input[name=_save]").click()
        expect(page.locator(".messagelist .success")).to_have_count(1)
        context.close()

    assert errors == []
    assert violations == []
    inquiry = Inquiry.objects.get(subject="お届け日の確認")
    assert (inquiry.customer, inquiry.order, inquiry.channel) == (second, mine, Channel.PHONE)
    assert inquiry.sla_state == SlaState.MET
