"""The inbox in a real browser (Debian's Chromium through Playwright) against
the live server: subject, the latest message and the unread mark; a
customer's new message brings 「新着 1件 — 更新」, which reloads the list with
its filter and the rows the agent had ticked."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from core.roles import AGENT
from tests.browser import chromium_browser, watch_csp
from tests.crm import factories as crm_factories
from tests.tickets import factories
from tickets.services import InboundMessage, inquiry_assign, inquiry_inbound_add

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-agent-yamada-1234"
# Whether the inbox's table fits its box, and which texts that must stay on
# one line take more than one (the tops of their text's line boxes more than
# 8 px apart).
LAYOUT = """() => {
  const table = document.querySelector("#result_list");
  const box = table.closest(".results");
  const lines = (el) => {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    const tops = [];
    while (walker.nextNode()) {
      const range = document.createRange();
      range.selectNodeContents(walker.currentNode);
      tops.push(...[...range.getClientRects()].map((r) => r.top));
    }
    tops.sort((a, b) => a - b);
    return tops.filter((top, i) => i === 0 || top - tops[i - 1] > 8).length;
  };
  const selector = ".field-reference a, .inbox-name, .inbox-kana, .inbox-subject, .inbox-excerpt";
  return {
    fits: table.getBoundingClientRect().width <= box.getBoundingClientRect().width + 1,
    broken: [...document.querySelectorAll(selector)]
      .filter((el) => lines(el) > 1)
      .map((el) => el.className + ": " + el.textContent),
  };
}"""
INBOX = "/admin/tickets/inquiry/"


@pytest.fixture
def agent(django_user_model):
    user = django_user_model.objects.create_user(
        "yamada", password=PASSWORD, is_staff=True, last_name="山田", first_name="花子"
    )
    user.groups.add(Group.objects.get(name=AGENT))
    return user


def test_the_inbox_marks_unread_and_offers_new_messages_keeping_filter_and_selection(
    live_server, agent, owner, monkeypatch
):
    # given: two of the agent's inquiries and a colleague's
    earlier = timezone.now() - timedelta(hours=2)
    delayed = factories.inquiry(
        subject="注文した商品がまだ届きません",
        body="11月20日に注文した緑茶が\nまだ届いていません。",
        received_at=earlier,
        customer=crm_factories.customer(
            family_name="勅使河原",
            given_name="左衛門三郎",
            family_name_kana="テシガワラ",
            given_name_kana="サエモンサブロウ",
        ),
    )
    gift = factories.inquiry(
        subject="ギフト包装とのし紙、メッセージカードの同梱について" * 2,
        body="のしは付けられますか。" * 30,
        received_at=earlier,
    )
    other = factories.inquiry(subject="領収書の発行", received_at=earlier)
    for inquiry in (delayed, gift):
        inquiry_assign(inquiry=inquiry, assignee=agent, actor=owner)

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
        page.goto(f"{live_server.url}/admin/login/?next={INBOX}")
        page.fill("#id_username", "yamada")
        page.fill("#id_password", PASSWORD)
        page.locator("input[type=submit]").click()
        page.wait_for_url(f"{live_server.url}{INBOX}")

        # when: the agent looks at their own inquiries
        page.goto(f"{live_server.url}{INBOX}?assignee=mine")
        expect(page.locator("h1")).to_have_text("問い合わせ一覧")
        row = page.locator("#result_list tbody tr", has_text=delayed.reference)
        # then: subject, the message in one line, unread
        expect(row.locator(".inbox-subject")).to_contain_text("注文した商品がまだ届きません")
        expect(row.locator(".inbox-excerpt")).to_have_text(
            "11月20日に注文した緑茶が まだ届いていません。"
        )
        expect(row.locator(".inbox-unread")).to_be_visible()
        expect(page.locator("#inbox-unread-count")).to_have_text("未読 2件")
        assert page.locator("#result_list tbody tr", has_text=other.reference).count() == 0
        # the list fits a 1366 px window, and a 1920 px one; references, names and
        # kana never break over lines, the subject and message end in "…" instead
        for width in (1366, 1920):
            page.set_viewport_size({"width": width, "height": 900})
            assert page.evaluate(LAYOUT) == {"fits": True, "broken": []}, width

        # opening one marks it read
        row.locator("a", has_text=delayed.reference).click()
        page.wait_for_url(f"**/{delayed.pk}/change/**")
        page.go_back()
        page.reload()
        row = page.locator("#result_list tbody tr", has_text=delayed.reference)
        expect(row.locator(".inbox-unread")).to_have_count(0)
        expect(page.locator("#inbox-unread-count")).to_have_text("未読 1件")

        # the agent ticks the gift inquiry; the customer of the other writes again
        gift_box = page.locator("#result_list tbody tr", has_text=gift.reference).locator(
            "input.action-select"
        )
        gift_box.check()
        expect(page.locator("#result_list tbody tr.selected")).to_have_count(1)
        inquiry_inbound_add(
            inquiry=delayed, message=InboundMessage(body_text="追跡番号を教えてください。")
        )
        page.evaluate("window.dispatchEvent(new Event('focus'))")  # back to the tab
        news = page.locator("#inbox-new")
        expect(news).to_have_text("新着 1件 — 更新")
        expect(page.locator("#inbox-unread-count")).to_have_text("未読 2件")

        # clicking it reloads the same list, the filter and the ticked row kept
        with page.expect_navigation():
            news.click()
        expect(page.locator("#inbox-new")).to_be_hidden()
        assert page.url.endswith("?assignee=mine")
        row = page.locator("#result_list tbody tr", has_text=delayed.reference)
        expect(row.locator(".inbox-excerpt")).to_have_text("追跡番号を教えてください。")
        expect(row.locator(".inbox-unread")).to_be_visible()
        gift_row = page.locator("#result_list tbody tr", has_text=gift.reference)
        expect(gift_row.locator("input.action-select")).to_be_checked()
        expect(gift_row).to_have_class(re.compile(r"\bselected\b"))
        expect(page.locator(".action-counter")).to_contain_text("1")
        context.close()

    assert errors == []
    assert violations == []
