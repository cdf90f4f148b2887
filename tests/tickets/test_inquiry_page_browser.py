"""An agent works the inquiry page in a real browser (Debian's Chromium
through Playwright): priority, assignee and a note change without a reload,
a refusal shows in place, and nothing internal is on the screen."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from core.roles import AGENT
from tests.browser import chromium_browser, watch_csp
from tests.page_text import internal_values
from tests.tickets import factories
from tests.tickets.test_timeline import every_kind_events, internal_words
from tickets.models import Inquiry, MessageKind
from tickets.services import inquiry_assign, inquiry_note_add, inquiry_reply

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-agent-suzuki-1234"


@pytest.fixture
def agent(django_user_model):
    user = django_user_model.objects.create_user(
        "suzuki", password=PASSWORD, is_staff=True, last_name="鈴木", first_name="一郎"
    )
    user.groups.add(Group.objects.get(name=AGENT))
    return user


def test_agent_changes_priority_assignee_and_adds_a_note_without_a_reload(
    live_server, agent, misaki, monkeypatch, tmp_path
):
    # given an inquiry that went through a few hands, with every kind of event
    inquiry = factories.inquiry(channel="own_site")
    inquiry_assign(inquiry=inquiry, assignee=agent, actor=agent)
    inquiry_note_add(inquiry=inquiry, body="倉庫に確認中", actor=agent)
    inquiry_reply(inquiry=inquiry, body="確認いたします。", actor=agent)
    every_kind_events(inquiry, misaki)
    url = f"{live_server.url}/admin/tickets/inquiry/{inquiry.pk}/change/"

    errors: list[str] = []
    violations: list[str] = []
    with chromium_browser(monkeypatch) as browser:
        expect = pytest.importorskip("playwright.sync_api").expect
        context = browser.new_context(locale="ja-JP", viewport={"width": 1366, "height": 900})
        watch_csp(context, violations)
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live_server.url}/admin/login/?next={url}")
        page.fill("#id_username", "suzuki")
        page.fill("#id_password", PASSWORD)
        page.locator("input[type=submit]").click()
        page.wait_for_url(url)
        # a marker that a reload or a navigation would lose
        page.evaluate("window.stillTheSamePage = true")
        header = page.locator("#inquiry-header")

        # when she raises the priority
        page.select_option("#id_priority-priority", "urgent")
        page.locator("#controls form", has=page.locator("#id_priority-priority")).locator(
            "button"
        ).click()
        # then the header, the timeline and the message say so, without a reload
        expect(header).to_contain_text("優先度: 緊急")
        expect(page.locator("#update-messages")).to_contain_text("優先度を変更しました。")
        expect(page.locator("#timeline-panel")).to_contain_text("優先度: 通常 → 緊急")

        # when she gives the inquiry to her colleague
        page.select_option("#id_assign-assignee", str(misaki.pk))
        page.locator("#controls form", has=page.locator("#id_assign-assignee")).locator(
            "button"
        ).click()
        expect(header).to_contain_text("担当者: 佐藤 美咲")
        # the refreshed controls show the new assignee and offer "assign to me"
        expect(page.locator("#id_assign-assignee")).to_have_value(str(misaki.pk))

        # when a value the server refuses is posted (a stale choice)
        page.evaluate(
            """() => {
                const select = document.getElementById("id_status-status");
                select.add(new Option("保留", "on_hold"));
                select.value = "on_hold";
            }"""
        )
        status_form = page.locator("#controls form", has=page.locator("#id_status-status"))
        status_form.locator("button").click()
        # then the reason shows above the form, in Japanese
        expect(status_form.locator(".update-error")).to_contain_text(
            "ステータス: 一覧から選んでください。"
        )

        # when she adds an internal note
        page.fill("#id_note-body", "お客様に電話で在庫を確認済み")
        page.locator("#note form button").click()
        expect(page.locator("#conversation")).to_contain_text("お客様に電話で在庫を確認済み")
        expect(page.locator("#id_note-body")).to_have_value("")

        assert page.evaluate("window.stillTheSamePage") is True
        page.locator("#timeline-panel summary").click()
        page.screenshot(path=str(tmp_path / "inquiry-page-1366.png"), full_page=True)
        text = page.inner_text("body")
        page.set_viewport_size({"width": 1920, "height": 1000})
        page.screenshot(path=str(tmp_path / "inquiry-page-1920.png"), full_page=True)
        context.close()

    assert errors == []
    assert violations == []  # the Content-Security-Policy blocked nothing
    # nothing internal anywhere on the page: no snake_case, enum value, username nor JSON
    assert "SLA: 期限内 → 期限超過" in text and "段階: 初期連絡" in text
    assert internal_values(text, words=internal_words("suzuki", "misaki")) == []
    inquiry = Inquiry.objects.get(pk=inquiry.pk)
    assert (inquiry.priority, inquiry.assignee_id, inquiry.status) == (
        "urgent",
        misaki.pk,
        "waiting_customer",
    )
    assert inquiry.messages.filter(kind=MessageKind.NOTE).count() == 2
