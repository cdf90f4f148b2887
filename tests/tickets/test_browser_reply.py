"""An agent answers an at-risk email inquiry in a real browser (Debian's
Chromium through Playwright) against the live server; the worker then sends
the reply to an in-process SMTP server, threaded under the customer's mail."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from core.roles import AGENT
from outreach.dispatch import send_dispatch
from tests.browser import chromium_browser, watch_csp
from tests.crm import factories as crm_factories
from tickets.models import Inquiry, InquiryMessage, MessageKind, SlaState
from tickets.reply_templates import DELIVERY_DELAY, reply_templates_ensure
from tickets.services import InboundMessage, inquiry_create, sla_watch

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-agent-suzuki-1234"
ORIGINAL_MESSAGE_ID = "<CAF-20261124-hanako.001@mail.example.jp>"
INBOX = "/admin/tickets/inquiry/"


@pytest.fixture
def agent(django_user_model):
    user = django_user_model.objects.create_user(
        "suzuki", password=PASSWORD, is_staff=True, last_name="鈴木"
    )
    user.groups.add(Group.objects.get(name=AGENT))
    return user


def test_agent_answers_an_at_risk_email_inquiry_from_the_browser(
    live_server, agent, smtp, monkeypatch, tmp_path
):
    # given an email inquiry received 21 hours ago (24 h target, at risk
    # from 20 h) about an order, and another one that is still on track
    reply_templates_ensure()
    customer = crm_factories.customer(
        family_name="田中", given_name="花子", email="hanako.tanaka@example.jp"
    )
    order = crm_factories.order(customer=customer, order_number="R-2611-0042")
    inquiry = inquiry_create(
        customer=customer,
        channel="email",
        message=InboundMessage(
            subject="注文した商品がまだ届きません",
            body_text="11月20日に注文した商品がまだ届きません。いつ届きますか？",
            message_id=ORIGINAL_MESSAGE_ID,
            received_at=timezone.now() - timedelta(hours=21),
        ),
        order=order,
    )
    calm = inquiry_create(
        customer=crm_factories.customer(),
        channel="email",
        message=InboundMessage(
            subject="ギフト包装について",
            body_text="ギフト包装はできますか？",
            received_at=timezone.now() - timedelta(hours=1),
        ),
    )
    assert sla_watch()["at_risk"] == 1
    inquiry.refresh_from_db()
    assert inquiry.sla_state == SlaState.AT_RISK

    errors: list[str] = []
    violations: list[str] = []
    with chromium_browser(monkeypatch) as browser:
        sync_api = pytest.importorskip("playwright.sync_api")
        context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
        watch_csp(context, violations)
        context.set_default_timeout(10_000)
        page = context.new_page()
        expect = sync_api.expect
        page.on("pageerror", lambda error: errors.append(str(error)))

        # when the agent logs in through the login form
        page.goto(f"{live_server.url}/admin/login/?next={INBOX}")
        page.fill("#id_username", "suzuki")
        page.fill("#id_password", PASSWORD)
        page.locator("input[type=submit]").click()
        page.wait_for_url(f"{live_server.url}{INBOX}")

        # then the inbox shows the inquiry at risk, the other on track
        row = page.locator("#result_list tbody tr", has_text=inquiry.reference)
        assert row.locator("span.sla.sla-at_risk[data-sla=at_risk]").count() == 1
        assert row.locator("span.sla").inner_text().strip()
        calm_row = page.locator("#result_list tbody tr", has_text=calm.reference)
        assert calm_row.locator("span.sla-on_track").count() == 1

        # when she opens it and picks the delivery-delay template with a date
        row.get_by_role("link", name=inquiry.reference).click()
        page.wait_for_url(re.compile(rf"/admin/tickets/inquiry/{inquiry.pk}/change/"))
        assert page.locator(".inquiry-sla .sla").get_attribute("data-sla") == "at_risk"
        body = page.locator("#id_reply-body")
        page.select_option("#id_pick-template", label=DELIVERY_DELAY)
        expect(body).to_have_value(re.compile("お届け予定日"))
        page.fill("#id_pick-date", "2026-12-01")
        expect(body).to_have_value(re.compile(r"お届け予定日: 2026年12月1日（火）"))

        # then the reply box holds the template filled for this customer
        text = body.input_value()
        assert text.startswith("田中 花子様")
        assert "R-2611-0042" in text
        assert "{{" not in text

        # when she edits it a little and sends it
        body.click()
        page.keyboard.press("Control+End")
        page.keyboard.type("\n追伸: 担当は鈴木です。")
        page.screenshot(path=str(tmp_path / "inquiry-at-risk.png"), full_page=True)
        page.locator("#reply-form button[type=submit]").click()
        expect(page.locator(".messagelist .success")).to_have_count(1)

        # and the worker sends the reply
        reply = InquiryMessage.objects.select_related("delivery").get(
            inquiry=inquiry, kind=MessageKind.OUTBOUND
        )
        report = send_dispatch(send_id=reply.delivery.send_id)

        # then the page, reloaded, no longer shows the inquiry at risk
        page.reload()
        assert page.locator(".inquiry-sla .sla").get_attribute("data-sla") == "met"
        assert page.locator(".sla-at_risk").count() == 0
        page.screenshot(path=str(tmp_path / "inquiry-replied.png"), full_page=True)
        context.close()

    assert errors == []
    assert violations == []  # the Content-Security-Policy blocked nothing
    assert report.sent == 1
    # the customer got exactly one mail, threaded under hers
    [received] = smtp.received
    assert received.rcpt_tos == ["hanako.tanaka@example.jp"]
    mail = received.message
    assert mail["In-Reply-To"] == ORIGINAL_MESSAGE_ID
    assert ORIGINAL_MESSAGE_ID in mail["References"].split()
    assert inquiry.reference in mail["Subject"]
    sent_text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "田中 花子様" in sent_text
    assert "追伸: 担当は鈴木です。" in sent_text
    assert reply.body_text.endswith("追伸: 担当は鈴木です。")
    # and the first-reply clock stopped in time
    inquiry = Inquiry.objects.get(pk=inquiry.pk)
    assert inquiry.sla_state == SlaState.MET
    assert inquiry.first_replied_at is not None
