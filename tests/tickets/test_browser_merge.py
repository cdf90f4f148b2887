"""An agent merges two inquiries of one customer about one order and splits
a message out again, in a real browser (Debian's Chromium through
Playwright) against the live server, at the two window widths agents use."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from core.roles import AGENT
from tests.browser import chromium_browser, watch_csp
from tests.crm import factories as crm_factories
from tickets.models import Inquiry, InquiryStatus
from tickets.services import InboundMessage, inquiry_create, inquiry_inbound_add

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-agent-suzuki-1234"


@pytest.fixture
def agent(django_user_model):
    user = django_user_model.objects.create_user(
        "suzuki", password=PASSWORD, is_staff=True, last_name="鈴木"
    )
    user.groups.add(Group.objects.get(name=AGENT))
    return user


@pytest.mark.parametrize("width", [1366, 1920])
def test_agent_merges_the_suggested_inquiry_and_splits_a_message_out(
    live_server, agent, monkeypatch, tmp_path, width
):
    # given two inquiries of one customer about one order, a day apart
    customer = crm_factories.customer(family_name="田中", given_name="花子")
    order = crm_factories.order(customer=customer, order_number="R-2611-0042")
    start = timezone.now() - timedelta(days=2)
    first = inquiry_create(
        customer=customer,
        channel="email",
        message=InboundMessage(
            subject="注文した商品がまだ届きません",
            body_text="11月20日に注文した商品がまだ届きません。",
            received_at=start,
        ),
        order=order,
    )
    second = inquiry_create(
        customer=customer,
        channel="email",
        message=InboundMessage(
            subject="Re: 配送状況の確認",
            body_text="先ほどの件、追跡番号を教えてください。",
            received_at=start + timedelta(days=1),
        ),
        order=order,
    )
    inquiry_inbound_add(
        inquiry=second,
        message=InboundMessage(
            body_text="別件ですが、領収書を発行していただけますか。",
            received_at=start + timedelta(days=1, hours=2),
        ),
    )

    errors: list[str] = []
    violations: list[str] = []
    with chromium_browser(monkeypatch) as browser:
        context = browser.new_context(locale="ja-JP", viewport={"width": width, "height": 900})
        watch_csp(context, violations)
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live_server.url}/admin/login/?next=/admin/tickets/inquiry/{second.pk}/change/")
        page.fill("#id_username", "suzuki")
        page.fill("#id_password", PASSWORD)
        page.locator("input[type=submit]").click()

        # when she opens the later inquiry, the earlier one is suggested
        suggestion = page.locator("#merge-suggestion")
        assert first.reference in suggestion.inner_text()
        page.screenshot(path=str(tmp_path / f"suggestion-{width}.png"), full_page=True)
        suggestion.get_by_role("link", name="統合を確認する").click()

        # then the merge page keeps the earliest and says what moves
        page.wait_for_url(re.compile(rf"/{second.pk}/merge/"))
        assert first.reference in page.locator(".merge-kept").inner_text()
        page.screenshot(path=str(tmp_path / f"merge-{width}.png"), full_page=True)
        page.get_by_role("button", name="統合する", exact=True).click()

        # and merging opens the kept inquiry with every message
        page.wait_for_url(re.compile(rf"/{first.pk}/change/"))
        assert page.locator("#conversation > li").count() == 3
        page.screenshot(path=str(tmp_path / f"merged-{width}.png"), full_page=True)

        # when she splits the receipt question out again
        page.get_by_role("link", name="メッセージを分割…").click()
        page.wait_for_url(re.compile(rf"/{first.pk}/split/"))
        page.get_by_label(re.compile("田中")).last.check()
        page.fill("#id_subject", "領収書の発行")
        page.screenshot(path=str(tmp_path / f"split-{width}.png"), full_page=True)
        page.get_by_role("button", name="新しい問い合わせとして分割する").click()

        # then the new inquiry opens, linked to the one it came from
        new = Inquiry.objects.get(split_from=first)
        page.wait_for_url(re.compile(rf"/{new.pk}/change/"))
        assert first.reference in page.locator("#split-from").inner_text()
        page.screenshot(path=str(tmp_path / f"split-out-{width}.png"), full_page=True)

        # and the absorbed inquiry's page sends her to the survivor
        page.goto(f"{live_server.url}/admin/tickets/inquiry/{second.pk}/change/")
        assert first.reference in page.locator("#merged-into").inner_text()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert errors == [] and violations == []
    assert overflow <= 0
    second.refresh_from_db()
    assert second.status == InquiryStatus.CLOSED and second.merged_into_id == first.pk
    print(tmp_path)
