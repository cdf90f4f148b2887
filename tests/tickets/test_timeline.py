"""The inquiry timeline in words (tickets/timeline.py through
core.timeline): every event kind reads as a support team says it, and
nothing internal reaches the inquiry page."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from core.choices import Channel
from tests.page_text import internal_values, visible_text
from tests.tickets import factories
from tickets.models import (
    InquiryEvent,
    InquiryEventKind,
    InquiryStatus,
    MessageKind,
    OutboundState,
    Priority,
    SlaState,
)
from tickets.services import inquiry_assign, inquiry_note_add, inquiry_reply
from tickets.timeline import INQUIRY_EVENT_WORDING, STAGE_LABELS, inquiry_timeline

pytestmark = pytest.mark.django_db

K = InquiryEventKind
# Each kind with the old and new values the code stores for it (grep
# InquiryEventKind): a new kind adds a line here, and its wording in
# tickets/timeline.py.
STORED = {
    K.CREATED: [("", "own_site")],
    K.MESSAGE: [("", "inbound"), ("", "outbound")],
    K.NOTE: [("", "")],
    K.STATUS: [("new", "open"), ("open", "waiting_customer")],
    K.ASSIGNED: [("", "misaki"), ("misaki", "colleague"), ("colleague", ""), ("", "gone")],
    K.CATEGORY: [("", "商品不良")],
    K.PRIORITY: [("normal", "urgent")],
    K.STAGE: [("", "triaged"), ("", "first_contact"), ("", "solution_proposed")],
    K.SLA: [("on_track", "at_risk"), ("on_track", "breached"), ("met", "on_track")],
    K.REPLY_SUBMITTED: [("", "")],
    K.REPLY_APPROVED: [("", "")],
    K.REPLY_RETURNED: [("", "")],
    K.REOPENED: [("resolved", "open")],
    K.LINKED: [("", "Q-2611-00002"), ("", "楽天市場 受注APIの障害")],
    K.REPLY_FAILED: [("", "")],
    K.REPLY_UNKNOWN: [("", "")],
    K.CLOCK_REOPENED: [("", "")],
    K.ORDER_UNLINKED: [("R-2611-0042", "")],
    K.TRIAGE_LATE: [("", "")],
    K.SLA_NEXT_REPLY: [("on_track", "at_risk"), ("at_risk", "met")],
    K.SLA_RESOLUTION: [("on_track", "breached"), ("on_track", "met")],
    K.CALL: [("", "8分・その場で回答")],
    K.ASSIGN_WAITING: [("", "")],
    K.CSAT_SENT: [("", "email"), ("", "line")],
    K.CSAT_ANSWERED: [("", "5"), ("", "1")],
    K.CSAT_COMMENTED: [("", "")],
    K.MERGED: [("", "Q-2611-00003")],
    K.MERGED_INTO: [("", "Q-2611-00002")],
    K.SPLIT_OUT: [("", "Q-2611-00004")],
    K.SPLIT_FROM: [("", "Q-2611-00002")],
}


def every_kind_events(inquiry, actor) -> None:
    InquiryEvent.objects.bulk_create(
        InquiryEvent(inquiry=inquiry, kind=kind, old=old, new=new, actor=actor, data={"message": 1})
        for kind, values in STORED.items()
        for old, new in values
    )


def internal_words(*usernames: str) -> set[str]:
    enums = (InquiryStatus, SlaState, Priority, Channel, MessageKind, OutboundState, K)
    return {value for enum in enums for value in enum.values} | set(STAGE_LABELS) | {*usernames}


def test_every_event_kind_has_a_wording_and_a_sample_here():
    assert set(INQUIRY_EVENT_WORDING) == set(K.values)
    assert set(STORED) == set(K.values)


def test_the_timeline_reads_in_words(misaki, colleague):
    inquiry = factories.inquiry()
    every_kind_events(inquiry, misaki)
    with translation.override("ja"):
        texts = [row["text"] for row in inquiry_timeline(inquiry, limit=100)]
    assert "SLA: 期限内 → 期限超過" in texts
    assert "SLA: 期限内 → 期限間近" in texts
    assert "段階: 初期連絡" in texts
    assert "担当者: 佐藤 美咲" in texts
    assert "担当者: 佐藤 美咲 → 佐藤" in texts
    assert "担当者: 佐藤 → なし" in texts
    assert "担当者: （不明なスタッフ）" in texts  # an account deleted since
    assert "優先度: 通常 → 緊急" in texts
    assert "受付: 自社サイト" in texts
    assert "カテゴリ: 商品不良" in texts
    for text in texts:
        assert not internal_values(text, words=internal_words("misaki", "colleague")), text


def test_the_inquiry_page_shows_nothing_internal_with_every_event_kind(client, misaki, colleague):
    # given: an inquiry that went through the services, and every other kind of event
    inquiry = factories.inquiry(channel="own_site")
    inquiry_assign(inquiry=inquiry, assignee=colleague, actor=misaki)
    inquiry_note_add(inquiry=inquiry, body="倉庫に確認中", actor=colleague)
    inquiry_reply(inquiry=inquiry, body="確認いたします。", actor=colleague)
    every_kind_events(inquiry, misaki)
    client.force_login(misaki)
    # when
    html = client.get(reverse("admin:tickets_inquiry_change", args=[inquiry.pk])).content
    text = visible_text(html.decode())
    # then: every event reads in words, and no stored value, username nor JSON shows
    assert "SLA: 期限内 → 期限超過" in text and "担当者: 佐藤 美咲" in text
    assert "段階: 初期連絡" in text
    assert internal_values(text, words=internal_words("misaki", "colleague")) == []


def test_inquiry_page_query_count_does_not_grow_with_events(
    client, misaki, colleague, django_assert_num_queries
):
    inquiry = factories.inquiry()
    inquiry_assign(inquiry=inquiry, assignee=colleague, actor=misaki)
    every_kind_events(inquiry, misaki)
    client.force_login(misaki)
    url = reverse("admin:tickets_inquiry_change", args=[inquiry.pk])
    client.get(url)  # the permission and content-type caches

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(3):
        every_kind_events(inquiry, colleague)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert len(response.context["timeline"]) == 50  # the latest 50
