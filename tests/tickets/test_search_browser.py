"""An agent searches the inbox in a real browser (Debian's Chromium through
Playwright) against the live server: 「岡田彩」 typed without the space and
「00032」, the number part of a reference, find the inquiry; a search that
finds only a closed inquiry offers to search the closed ones too."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from core.roles import AGENT
from tests.browser import chromium_browser, watch_csp
from tests.crm import factories as crm_factories
from tests.tickets import factories
from tickets.models import InquiryStatus, ReferenceCounter
from tickets.services import inquiry_status_set

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-agent-kimura-1234"
INBOX = "/admin/tickets/inquiry/"


@pytest.fixture
def agent(django_user_model):
    user = django_user_model.objects.create_user(
        "kimura", password=PASSWORD, is_staff=True, last_name="木村"
    )
    user.groups.add(Group.objects.get(name=AGENT))
    return user


def test_agent_finds_an_inquiry_by_a_name_without_the_space_and_by_reference_digits(
    live_server, agent, monkeypatch, tmp_path
):
    # given Okada Aya's inquiry, numbered 00032 this month, among others,
    # and a closed inquiry of another customer
    okada = crm_factories.customer(
        family_name="岡田", given_name="彩", family_name_kana="オカダ", given_name_kana="アヤ"
    )
    month = timezone.localtime().strftime("%y%m")
    ReferenceCounter.objects.update_or_create(month=month, defaults={"last": 31})
    inquiry = factories.inquiry(customer=okada, subject="湯呑みが割れていました")
    others = [factories.inquiry(subject="配送日の変更") for _ in range(2)]
    closed = factories.inquiry(
        customer=crm_factories.customer(family_name="北川", family_name_kana="キタガワ"),
        subject="領収書の再発行",
    )
    inquiry_status_set(inquiry=closed, status=InquiryStatus.CLOSED, actor=agent)
    assert inquiry.reference == f"Q-{month}-00032"

    errors: list[str] = []
    violations: list[str] = []
    with chromium_browser(monkeypatch) as browser:
        pytest.importorskip("playwright.sync_api")
        context = browser.new_context(locale="ja-JP", viewport={"width": 1366, "height": 900})
        watch_csp(context, violations)
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live_server.url}/admin/login/?next={INBOX}")
        page.fill("#id_username", "kimura")
        page.fill("#id_password", PASSWORD)
        page.locator("input[type=submit]").click()
        page.wait_for_url(f"{live_server.url}{INBOX}")
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 3

        for term in ("岡田彩", "00032"):
            # when she types the term into the search box and presses Enter
            page.fill("#searchbar", term)
            page.press("#searchbar", "Enter")
            page.wait_for_load_state()

            # then the inbox lists that inquiry alone
            assert rows.count() == 1, term
            assert inquiry.reference in rows.first.inner_text()
            assert others[0].reference not in page.locator("#result_list").inner_text()
        page.screenshot(path=str(tmp_path / "inbox-search.png"), full_page=True)

        # when she searches for the customer of the closed inquiry
        page.fill("#searchbar", "きたがわ")
        page.press("#searchbar", "Enter")
        page.wait_for_load_state()

        # then nothing open is found, and the link searches the closed ones too
        hint = page.locator("a.closed-search-hint")
        assert hint.inner_text() == "完了済みを含めて検索 (1件)"
        page.screenshot(path=str(tmp_path / "inbox-search-hint.png"), full_page=True)
        hint.click()
        page.wait_for_load_state()
        assert rows.count() == 1
        assert closed.reference in rows.first.inner_text()
        page.screenshot(path=str(tmp_path / "inbox-search-closed.png"), full_page=True)
        context.close()

    assert errors == []
    assert violations == []
