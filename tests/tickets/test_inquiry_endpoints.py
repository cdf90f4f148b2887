"""The inquiry page's controls without a reload (update/<name>/ in
tickets/admin/inquiry_endpoints.py): each calls its service, writes its
event and returns the parts of the page that show the change; a refusal
is a 400 in Japanese that changes nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from core.roles import MARKETER
from tests.page_text import visible_text
from tests.tickets import factories
from tickets.admin.inquiry_context import ACTIONS
from tickets.admin.inquiry_forms import PAGE_UPDATES
from tickets.models import Category, InquiryEventKind, MessageKind

pytestmark = pytest.mark.django_db


def update_url(inquiry, action: str) -> str:
    return reverse("admin:tickets_inquiry_update", args=[inquiry.pk, action])


def post(client, inquiry, action: str, data=None):
    return client.post(
        update_url(inquiry, action),
        data or {},
        HTTP_ACCEPT="application/json",
        HTTP_ACCEPT_LANGUAGE="ja",
    )


def fragment_text(response, name: str) -> str:
    return visible_text(response.json()["fragments"][name])


@pytest.fixture
def agent_client(client, colleague):
    client.force_login(colleague)
    return client


def test_every_update_is_a_control_of_the_page():
    assert set(PAGE_UPDATES) <= set(ACTIONS)


def test_priority_changes_through_the_service_with_its_event_and_fragments(agent_client):
    inquiry = factories.inquiry()

    response = post(agent_client, inquiry, "priority", {"priority-priority": "urgent"})

    assert response.status_code == 200
    inquiry.refresh_from_db()
    assert inquiry.priority == "urgent"
    event = inquiry.events.get(kind=InquiryEventKind.PRIORITY)
    assert (event.old, event.new, event.actor.get_username()) == ("normal", "urgent", "colleague")
    data = response.json()
    assert data["message"] == "優先度を変更しました。"
    assert set(data["fragments"]) == {"header", "controls", "timeline"}
    assert "優先度: 緊急" in fragment_text(response, "header")
    assert "優先度: 通常 → 緊急" in fragment_text(response, "timeline")
    assert 'value="urgent" selected' in data["fragments"]["controls"]


def test_assign_and_assign_to_me(agent_client, colleague, owner):
    inquiry = factories.inquiry()

    response = post(agent_client, inquiry, "assign", {"assign-assignee": owner.pk})
    assert response.status_code == 200
    inquiry.refresh_from_db()
    assert inquiry.assignee == owner
    assert "担当者: 店長" in fragment_text(response, "header")
    assert "担当者: 店長" in fragment_text(response, "timeline")

    response = post(agent_client, inquiry, "assign-me")
    assert response.status_code == 200
    inquiry.refresh_from_db()
    assert inquiry.assignee == colleague
    assert "担当者: 店長 → 佐藤" in fragment_text(response, "timeline")
    # the button "assign to me" is gone from the controls
    assert update_url(inquiry, "assign-me") not in response.json()["fragments"]["controls"]
    assert inquiry.events.filter(kind=InquiryEventKind.ASSIGNED).count() == 2


def test_category_and_status(agent_client):
    inquiry = factories.inquiry()
    defect = Category.objects.get(code="product_defect")

    response = post(agent_client, inquiry, "category", {"category-category": defect.pk})
    assert response.status_code == 200
    assert f"カテゴリ: {defect.name}" in fragment_text(response, "timeline")

    response = post(agent_client, inquiry, "status", {"status-status": "resolved"})
    assert response.status_code == 200
    inquiry.refresh_from_db()
    assert (inquiry.category, inquiry.status) == (defect, "resolved")
    assert inquiry.resolved_at is not None
    assert "ステータス: 解決" in fragment_text(response, "header")
    kinds = set(inquiry.events.values_list("kind", flat=True))
    assert {InquiryEventKind.CATEGORY, InquiryEventKind.STATUS} <= kinds


def test_a_note_is_added_and_the_conversation_returned(agent_client):
    inquiry = factories.inquiry()

    response = post(agent_client, inquiry, "note", {"note-body": "倉庫に在庫を確認中"})

    assert response.status_code == 200
    note = inquiry.messages.get(kind=MessageKind.NOTE)
    assert note.body_text == "倉庫に在庫を確認中"
    assert inquiry.events.filter(kind=InquiryEventKind.NOTE).exists()
    fragments = response.json()["fragments"]
    assert set(fragments) == {"header", "conversation", "timeline"}
    assert "倉庫に在庫を確認中" in visible_text(fragments["conversation"])
    assert f'data-latest="{note.pk}"' in fragments["conversation"]


@pytest.mark.parametrize(
    ("action", "data", "error"),
    [
        ("status", {"status-status": "on_hold"}, "ステータス: 一覧から選んでください。"),
        ("priority", {"priority-priority": "asap"}, "優先度: 一覧から選んでください。"),
        ("category", {"category-category": "999999"}, "カテゴリ: 一覧から選んでください。"),
        ("note", {"note-body": "  "}, "社内メモ: この項目は必須です。"),
    ],
)
def test_an_invalid_value_is_a_japanese_400_that_changes_nothing(agent_client, action, data, error):
    inquiry = factories.inquiry()
    events = inquiry.events.count()

    response = post(agent_client, inquiry, action, data)

    assert response.status_code == 400
    assert response.json()["error"].startswith(error)
    assert inquiry.events.count() == events
    inquiry.refresh_from_db()
    assert (inquiry.status, inquiry.priority, inquiry.category) == ("new", "normal", None)


def test_a_staff_member_who_cannot_be_assigned_is_refused_in_japanese(agent_client, outsider):
    inquiry = factories.inquiry()

    response = post(agent_client, inquiry, "assign", {"assign-assignee": outsider.pk})

    assert response.status_code == 400
    assert response.json()["error"].startswith("担当者: 一覧から選んでください。")
    inquiry.refresh_from_db()
    assert inquiry.assignee is None


def test_who_may_not_change_the_inquiry_is_refused(client, django_user_model, outsider):
    inquiry = factories.inquiry()
    marketer = django_user_model.objects.create_user("marketer", is_staff=True)
    marketer.groups.add(Group.objects.get(name=MARKETER))
    client.force_login(marketer)
    response = post(client, inquiry, "priority", {"priority-priority": "high"})
    assert response.status_code == 403
    assert response.json()["error"] == "この問い合わせを変更する権限がありません。"
    client.force_login(outsider)
    response = post(client, inquiry, "priority", {"priority-priority": "high"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    inquiry.refresh_from_db()
    assert inquiry.priority == "normal"


def test_only_posts_of_known_controls_with_a_csrf_token_are_answered(agent_client, colleague):
    inquiry = factories.inquiry()
    assert agent_client.get(update_url(inquiry, "priority")).status_code == 405
    for unknown in ("reply", "approve", "delete"):
        assert agent_client.post(update_url(inquiry, unknown)).status_code == 404, unknown
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(colleague)
    response = strict.post(update_url(inquiry, "priority"), {"priority-priority": "high"})
    assert response.status_code == 403
    inquiry.refresh_from_db()
    assert inquiry.priority == "normal"


def test_the_page_offers_each_control_its_update_url(agent_client):
    inquiry = factories.inquiry()
    html = agent_client.get(reverse("admin:tickets_inquiry_change", args=[inquiry.pk])).content
    for action in PAGE_UPDATES:
        assert f'data-update-url="{update_url(inquiry, action)}"'.encode() in html, action
