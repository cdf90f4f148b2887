"""The monthly trouble analysis against a month computed by hand.

November 2026 (Asia/Tokyo), report run on 2026-12-10 12:00. Inquiries
(received → triaged / first reply / resolved; minutes in the policy's clock):

  A email   11-02 10:00  配送遅延  佐藤  → 20 / 60 / 300          order 1, customer 1
  B email   11-10 09:00  商品不良  店長  → 45 / 240 / 2880        order 2, customer 1
  C phone   11-20 17:30  商品不良  佐藤  → 75 / 90 / open  (business hours; 11/23 is a holiday)
  D amazon  11-30 23:00  配送遅延  佐藤  → 70 / 180 / 2880 (stages reached in December) order 3
  E yahoo   11-25 10:00  —         —     → never triaged, never answered, open past due
  H email   11-28 10:00  配送遅延  店長  → 30 / 1560 (late) / open
  F email   10-31 23:30  配送遅延  佐藤  → October (replied in November: 60)
  G email   12-01 00:00  —         —     → December, open, not triaged
"""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.roles import AGENT, MARKETER
from reports.models import Countermeasure
from reports.selectors.figures import Duration
from reports.selectors.monthly import monthly_report
from reports.services import countermeasure_save
from tests.crm import factories as crm_factories
from tests.reports.monthly_fixture import NOVEMBER, NOW, at, make_inquiry, work
from tickets.models import Category
from tickets.services import inquiries_merge, inquiry_reply

pytestmark = pytest.mark.django_db
MONTHLY = reverse("admin:reports_countermeasure_monthly")


def test_counts_by_category_and_channel_with_the_twelve_month_trend(november):
    report = monthly_report(month=NOVEMBER, now=NOW)
    by_category = report.table("by_category")
    assert by_category.columns[0] == "カテゴリ"
    assert by_category.columns[-2:] == ["2026年10月", "2026年11月"]
    assert len(by_category.columns) == 13  # 2025年12月 … 2026年11月
    assert [row[0] for row in by_category.rows] == ["商品不良", "配送遅延", "未分類"]
    assert [row[-2:] for row in by_category.rows] == [[0, 2], [1, 3], [0, 1]]
    by_channel = report.table("by_channel")
    assert [[row[0], *row[-2:]] for row in by_channel.rows] == [
        ["Amazon", 0, 1],
        ["Yahoo!ショッピング", 0, 1],
        ["メール", 1, 3],
        ["電話", 0, 1],
    ]


def test_impact_counts_distinct_customers_orders_and_the_months_crisis_rows(november):
    impact = monthly_report(month=NOVEMBER, now=NOW).table("impact")
    assert [row[1] for row in impact.rows] == [6, 5, 3, 1, 1]


def test_stage_medians_percentiles_and_buckets_in_the_policy_clock(november):
    durations = monthly_report(month=NOVEMBER, now=NOW).table("durations")
    # stage, reached, not reached, median, p90, 0–1 h, 1–4 h, 4–8 h, 8–24 h, over 24 h
    assert durations.rows == [
        ["状況確認までの時間", 5, 1, 45.0, 73.0, 3, 2, 0, 0, 0],
        ["初回返信までの時間", 5, 1, 180.0, 1032.0, 0, 3, 1, 0, 1],
        ["解決までの時間", 3, 3, 2880.0, 2880.0, 0, 0, 1, 0, 2],
    ]


def test_durations_read_in_days_hours_and_minutes_on_the_page_and_in_the_csv(
    client, owner, november
):
    durations = monthly_report(month=NOVEMBER, now=NOW).table("durations")
    assert [str(row[3]) for row in durations.rows] == ["45分", "3時間", "2日"]
    assert str(durations.rows[1][4]) == "17時間12分"  # 1032 minutes
    assert str(Duration(5041.0)) == "3日12時間"
    client.force_login(owner)
    page = client.get(MONTHLY + "?month=2026-11")
    assert "2日" in page.content.decode() and "2880.0" not in page.content.decode()


def test_first_reply_compliance_by_channel_and_agent(november):
    report = monthly_report(month=NOVEMBER, now=NOW)
    # name, in time, late or overdue, open not yet due, rate
    assert report.table("compliance_channel").rows == [
        ["Amazon", 1, 0, 0, 100.0],
        ["Yahoo!ショッピング", 0, 1, 0, 0.0],
        ["メール", 2, 1, 0, 66.7],
        ["電話", 1, 0, 0, 100.0],
    ]
    assert report.table("compliance_agent").rows == [
        ["佐藤", 3, 0, 0, 100.0],
        ["店長", 1, 1, 0, 50.0],
        ["未割り当て", 0, 1, 0, 0.0],
    ]


def test_triage_target_share_and_open_inquiries_past_it_now(november):
    report = monthly_report(month=NOVEMBER, now=NOW)
    assert [row[1] for row in report.table("triage").rows] == [2, 3, 1, 0, 33.3]
    assert report.triage_open_overdue == 2  # E (November) and G (December)


def test_filters_narrow_every_figure(november):
    report = monthly_report(month=NOVEMBER, channel="email", category=november["delivery"], now=NOW)
    assert [row[1] for row in report.table("impact").rows] == [2, 2, 1, 0, 0]
    assert report.table("compliance_channel").rows == [["メール", 1, 1, 0, 50.0]]
    assert report.table("durations").rows[1][1:5] == [2, 0, 810.0, 1410.0]


def test_a_month_without_inquiries_has_zeros_and_no_medians(november):
    report = monthly_report(month=date(2026, 9, 1), now=NOW)
    assert [row[1] for row in report.table("impact").rows] == [0, 0, 0, 0, 0]
    assert [row[1:] for row in report.table("durations").rows] == [
        [0, 0, None, None, 0, 0, 0, 0, 0]
    ] * 3
    assert report.table("compliance_channel").rows == []
    assert [row[1] for row in report.table("triage").rows] == [0, 0, 0, 0, None]


def test_open_inquiries_not_yet_due_stay_out_of_the_rate(clock, colleague):
    make_inquiry(clock, channel="email", received=at("11-02", 10))
    clock(at("11-02", 20))
    report = monthly_report(month=NOVEMBER, now=at("11-02", 20))
    assert report.table("compliance_channel").rows == [["メール", 0, 0, 1, None]]


def _october_countermeasure(category, owner) -> Countermeasure:
    """Recorded for October's delivery delays, due mid-November."""
    return countermeasure_save(
        countermeasure=Countermeasure(
            month=date(2026, 10, 1),
            category=category,
            cause="繁忙期に運送会社の集荷が遅れた",
            action="出荷締め時刻を1時間早める",
            owner=owner,
            due_date=date(2026, 11, 15),
        ),
        actor=owner,
    )


def test_a_countermeasure_appears_beside_the_following_months_figures(november, owner):
    countermeasure = _october_countermeasure(november["delivery"], owner)
    for month in (NOVEMBER, date(2026, 12, 1)):
        report = monthly_report(month=month, now=NOW)
        (entry,) = report.countermeasures
        assert entry.countermeasure == countermeasure
        assert entry.months[0] == date(2026, 7, 1) and entry.months[-1] == date(2027, 1, 1)
        # July … January: October is its month; January is not over yet.
        assert entry.counts == [0, 0, 0, 1, 3, 0, None]
        assert entry.first_reply_medians == [None, None, None, 60.0, 180.0, None, None]
    # A report before its month does not show it.
    assert monthly_report(month=date(2026, 9, 1), now=NOW).countermeasures == []


def test_the_report_page_is_for_managers_only(client, owner, colleague, django_user_model):
    marketer = django_user_model.objects.create_user("marketer", password="pw", is_staff=True)
    marketer.groups.add(Group.objects.get(name=MARKETER))
    for user in (colleague, marketer):
        client.force_login(user)
        assert client.get(MONTHLY).status_code == 403
        assert client.get(f"{MONTHLY}?export=impact").status_code == 403
    client.force_login(owner)
    assert client.get(MONTHLY).status_code == 200


def test_the_outsider_is_sent_to_the_login_page(client, outsider):
    client.force_login(outsider)
    response = client.get(MONTHLY)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_every_table_downloads_as_csv_with_a_bom(client, owner, november):
    client.force_login(owner)
    report = monthly_report(month=NOVEMBER, now=NOW)
    for table in report.tables:
        response = client.get(MONTHLY, {"month": "2026-11", "export": table.key})
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        body = response.content.decode("utf-8")
        assert body.startswith("\ufeff")
        rows = list(csv.reader(io.StringIO(body[1:])))
        assert rows[0] == [str(column) for column in table.columns]
        assert len(rows) == len(table.rows) + 1
    response = client.get(MONTHLY, {"month": "2026-11", "export": "by_channel"})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8")[1:])))
    assert rows[3][0] == "メール" and rows[3][-1] == "3"


def test_the_page_links_rows_into_the_filtered_inquiry_list(client, owner, november):
    client.force_login(owner)
    response = client.get(MONTHLY, {"month": "2026-11", "channel": "email"})
    page = response.content.decode()
    links = (
        monthly_report(
            month=NOVEMBER,
            channel="email",
            now=NOW,
            inquiry_list_url=reverse("admin:tickets_inquiry_changelist"),
        )
        .table("by_category")
        .links
    )
    assert links[0].replace("&", "&amp;") in page
    listed = client.get(links[0])
    assert listed.status_code == 200
    # 商品不良 by email in November: B only (closed ones included).
    assert [row.reference for row in listed.context["cl"].result_list] == [november["b"].reference]


def _report_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(MONTHLY, {"month": "2026-11"}).status_code == 200
    return len(queries)


def test_the_report_query_count_does_not_grow_with_inquiries(
    client, owner, clock, november, django_user_model
):
    _october_countermeasure(november["delivery"], owner)
    client.force_login(owner)
    before = _report_queries(client)
    # More inquiries, on more channels and categories, for more agents.
    agent_group = Group.objects.get(name=AGENT)
    categories = list(Category.objects.all())
    for day, channel in enumerate(("rakuten", "own_site", "line", "email", "amazon"), start=3):
        agent = django_user_model.objects.create_user(
            f"agent{day}", is_staff=True, last_name=f"担当{day}"
        )
        agent.groups.add(agent_group)
        inquiry = make_inquiry(clock, channel=channel, received=at(f"11-{day:02d}", 10))
        work(
            clock,
            inquiry,
            agent=agent,
            category=categories[day % len(categories)],
            triaged=at(f"11-{day:02d}", 10, 5),
            replied=at(f"11-{day:02d}", 11),
        )
    clock(NOW)
    assert _report_queries(client) == before


def test_an_inquiry_absorbed_by_a_merge_counts_as_part_of_its_survivor(clock, colleague):
    # given: two November inquiries of one customer, merged into one
    customer = crm_factories.customer()
    first = make_inquiry(clock, channel="email", received=at("11-02", 10), customer=customer)
    second = make_inquiry(clock, channel="email", received=at("11-02", 11), customer=customer)
    clock(at("11-02", 12))
    inquiries_merge(inquiries=[first, second], actor=colleague)
    inquiry_reply(inquiry=first, body="ご連絡ありがとうございます。", actor=colleague)
    clock(NOW)

    report = monthly_report(month=NOVEMBER, now=NOW)

    # then: one inquiry in every count, the absorbed one nowhere
    assert report.table("impact").rows[0][1] == 1
    assert [row[-1] for row in report.table("by_channel").rows] == [1]
    assert report.table("durations").rows[1][1] == 1  # first replies measured
    assert report.table("compliance_channel").rows[0][1] == 1
