"""The improvement cycle's countermeasures: recorded by managers in the
admin, per month and category or per incident."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crisis.models import Incident
from reports.models import Countermeasure
from reports.services import countermeasure_save
from tickets.models import Category

pytestmark = pytest.mark.django_db
ADD = reverse("admin:reports_countermeasure_add")
CHANGELIST = reverse("admin:reports_countermeasure_changelist")


def _form(owner, **fields) -> dict:
    return {
        "month": "2026-10",
        "category": str(Category.objects.get(code="delivery_delay").pk),
        "channel": "",
        "incident": "",
        "cause": "繁忙期に集荷が遅れた",
        "action": "出荷締め時刻を1時間早める",
        "owner": str(owner.pk),
        "due_date": "2026-11-15",
        "status": "planned",
        **fields,
    }


def test_a_manager_records_a_countermeasure_for_a_month_and_category(client, owner):
    client.force_login(owner)
    response = client.post(ADD, _form(owner))
    assert response.status_code == 302
    saved = Countermeasure.objects.get()
    assert (saved.month, saved.category.code, saved.created_by) == (
        date(2026, 10, 1),
        "delivery_delay",
        owner,
    )


def test_a_countermeasure_needs_a_category_or_an_incident(client, owner):
    client.force_login(owner)
    response = client.post(ADD, _form(owner, category=""))
    assert response.status_code == 200
    assert "対策の対象となるカテゴリまたは障害を選んでください。" in response.content.decode()
    assert not Countermeasure.objects.exists()
    incident = Incident.objects.create(
        kind="mall_outage",
        title="楽天 RMS 障害",
        channel="rakuten",
        started_at=datetime(2026, 10, 5, 10, tzinfo=ZoneInfo("Asia/Tokyo")),
        opened_by=owner,
    )
    assert client.post(ADD, _form(owner, category="", incident=str(incident.pk))).status_code == 302
    assert Countermeasure.objects.get().incident == incident


def test_done_is_stamped_once_and_cleared_when_reopened(owner):
    countermeasure = Countermeasure(
        month=date(2026, 10, 20),
        category=Category.objects.first(),
        cause="原因",
        action="対策",
        owner=owner,
        due_date=date(2026, 11, 15),
        status="done",
    )
    countermeasure_save(countermeasure=countermeasure, actor=owner)
    done_at = countermeasure.done_at
    assert countermeasure.month == date(2026, 10, 1) and done_at is not None
    countermeasure_save(countermeasure=countermeasure, actor=owner)
    assert countermeasure.done_at == done_at
    countermeasure.status = "in_progress"
    countermeasure_save(countermeasure=countermeasure, actor=owner)
    assert countermeasure.done_at is None


def test_agents_read_countermeasures_but_cannot_record_them(client, owner, colleague):
    client.force_login(colleague)
    assert client.get(CHANGELIST).status_code == 200
    assert client.post(ADD, _form(owner)).status_code == 403
    assert not Countermeasure.objects.exists()


def _changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHANGELIST).status_code == 200
    return len(queries)


def _record(owner, categories, month: date) -> None:
    for category in categories:
        countermeasure_save(
            countermeasure=Countermeasure(
                month=month,
                category=category,
                cause="原因",
                action="対策",
                owner=owner,
                due_date=date(2026, 11, 15),
            ),
            actor=owner,
        )


def test_the_changelist_query_count_does_not_grow_with_rows(client, owner):
    client.force_login(owner)
    _record(owner, Category.objects.all()[:2], date(2026, 10, 1))
    before = _changelist_queries(client)
    _record(owner, Category.objects.all()[2:6], date(2026, 8, 1))
    assert _changelist_queries(client) == before
