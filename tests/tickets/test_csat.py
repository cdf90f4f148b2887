"""The satisfaction survey (CSAT): asked once when an inquiry is resolved,
by email (signed links to a public page, through the real SMTP server) or
by LINE (quick reply buttons through the LINE fake, the answer back
through the signed webhook); never on Amazon; settable per channel."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.core import signing
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.roles import AGENT
from outreach.dispatch import send_dispatch
from outreach.linefake import postback_event
from outreach.models import Purpose, Send, SendKind
from reports.selectors.monthly import monthly_report
from tests.tickets import factories
from tests.tickets.test_inbound import BOB, deliver
from tests.tickets.test_inbound import line as line
from tickets.models import (
    CsatSetting,
    CsatSurvey,
    InquiryEventKind,
    InquiryStatus,
)
from tickets.services import csat_answer, inquiry_assign, inquiry_status_set
from tickets.services.csat import POSTBACK_PREFIX, csat_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def asking():
    """Every channel asks, as far as its setting may (Amazon may not)."""
    for channel in ("email", "line", "rakuten", "yahoo", "own_site", "store", "phone"):
        CsatSetting.objects.create(channel=channel, is_active=True)


def resolved(channel: str = "email", actor=None, **kwargs):
    inquiry = factories.inquiry(channel=channel, **kwargs)
    return inquiry_status_set(inquiry=inquiry, status=InquiryStatus.RESOLVED, actor=actor)


def links(smtp) -> list[str]:
    """The survey links of the one mail the SMTP server received."""
    (received,) = smtp.received
    body = received.message.get_body(("plain",)).get_content()
    return re.findall(r"https?://\S+/csat/\S+/", body)


def path_of(url: str) -> str:
    return url[len(django_settings.SITE_URL) :]


def test_a_resolved_inquiry_asks_once_by_email_with_five_signed_links(asking, smtp, colleague):
    inquiry = resolved(actor=colleague)

    survey = CsatSurvey.objects.get(inquiry=inquiry)
    assert survey.channel == "email" and survey.score is None
    send = Send.objects.get(pk=survey.send_id)
    assert (send.kind, send.purpose) == (SendKind.NOTICE, Purpose.TRANSACTIONAL)
    send_dispatch(send_id=send.pk)
    assert len(links(smtp)) == 5
    assert "今回の対応はいかがでしたか" in smtp.received[0].message["Subject"]
    assert inquiry.events.filter(kind=InquiryEventKind.CSAT_SENT).count() == 1

    # resolved again after a reopening: not asked a second time
    inquiry_status_set(inquiry=inquiry, status=InquiryStatus.OPEN, actor=colleague)
    inquiry_status_set(inquiry=inquiry, status=InquiryStatus.RESOLVED, actor=colleague)
    assert Send.objects.filter(kind=SendKind.NOTICE).count() == 1


def test_an_email_link_is_accepted_once_then_a_comment_once(asking, smtp):
    inquiry = resolved()
    send_dispatch(send_id=inquiry.csat.send_id)
    four = path_of(links(smtp)[1])  # 5, 4, 3, 2, 1
    client = Client()

    # opening the link records nothing (a mail scanner opens links too)
    page = client.get(four)
    assert page.status_code == 200 and "4" in page.content.decode()
    assert CsatSurvey.objects.get(inquiry=inquiry).score is None

    answered = client.post(four)
    assert answered.status_code == 200
    assert "コメント" in answered.content.decode()
    survey = CsatSurvey.objects.get(inquiry=inquiry)
    assert survey.score == 4 and survey.answered_at is not None

    # the same link again, or another of the five: refused kindly, unchanged
    again = client.post(path_of(links(smtp)[4]))
    assert again.status_code == 409
    assert "既にご回答" in again.content.decode()
    assert CsatSurvey.objects.get(inquiry=inquiry).score == 4

    assert client.post(four, {"comment": "丁寧な対応でした。"}).status_code == 200
    second = client.post(four, {"comment": "書き直し"})
    assert second.status_code == 409
    survey.refresh_from_db()
    assert survey.comment == "丁寧な対応でした。"
    assert inquiry.events.filter(kind=InquiryEventKind.CSAT_ANSWERED, new="4").count() == 1


def test_a_comment_before_an_answer_is_not_taken(asking):
    inquiry = resolved()
    url = reverse("tickets-csat", args=[csat_token(inquiry_id=inquiry.pk, score=3)])

    response = Client().post(url, {"comment": "先にコメント"})

    assert response.status_code == 409
    assert "この内容で回答する" in response.content.decode()
    survey = CsatSurvey.objects.get(inquiry=inquiry)
    assert (survey.score, survey.comment) == (None, "")


@pytest.mark.parametrize(
    "forge",
    [
        lambda pk: "not-a-token",
        lambda pk: signing.dumps([pk, 5], salt="madoguchi.unsubscribe"),  # another purpose's
        lambda pk: signing.dumps([pk, 5], salt="madoguchi.csat", key="not-our-secret-key"),
        lambda pk: signing.dumps([pk, 9], salt="madoguchi.csat"),  # no such answer
    ],
)
def test_a_forged_link_is_refused_with_a_page_in_japanese(asking, forge):
    inquiry = resolved()
    forged = forge(inquiry.pk)
    response = Client().get(reverse("tickets-csat", args=[forged]))
    assert response.status_code == 400
    assert "このリンクは無効です" in response.content.decode()
    assert Client().post(reverse("tickets-csat", args=[forged])).status_code == 400
    assert CsatSurvey.objects.get(inquiry=inquiry).score is None


def test_a_link_with_a_changed_score_is_refused(asking):
    inquiry = resolved()
    token = csat_token(inquiry_id=inquiry.pk, score=1)
    _value, stamp, signature = token.split(":")
    five = signing.b64_encode(f"[{inquiry.pk},5]".encode()).decode()
    response = Client().post(reverse("tickets-csat", args=[f"{five}:{stamp}:{signature}"]))
    assert response.status_code == 400
    assert CsatSurvey.objects.get(inquiry=inquiry).score is None


def test_an_expired_link_is_refused(asking, settings):
    inquiry = resolved()

    class Past(signing.TimestampSigner):
        def timestamp(self):
            days = django_settings.CSAT_LINK_DAYS + 1
            return signing.b62_encode(int(time.time()) - days * 86400)

    old = Past(salt=settings.CSAT_SALT).sign_object([inquiry.pk, 5])
    response = Client().post(reverse("tickets-csat", args=[old]))
    assert response.status_code == 400
    assert "有効期限" in response.content.decode()
    assert CsatSurvey.objects.get(inquiry=inquiry).score is None


def test_a_line_inquiry_asks_with_quick_reply_buttons_and_the_postback_is_recorded_once(
    asking, line
):
    inquiry = resolved(channel="line")
    send_dispatch(send_id=inquiry.csat.send_id)
    customer_line_id = inquiry.customer.identities.get(channel="line").external_id
    (delivery,) = line.deliveries_for(customer_line_id)
    (message,) = delivery.messages
    assert "今回の対応はいかがでしたか" in message["text"]
    items = message["quickReply"]["items"]
    assert [item["action"]["label"][0] for item in items] == ["5", "4", "3", "2", "1"]
    two = items[3]["action"]["data"]

    deliver(line, postback_event(customer_line_id, two, reply_token="rt-two"))
    survey = CsatSurvey.objects.get(inquiry=inquiry)
    assert survey.score == 2

    # tapped again (a new event), or another button: the first answer stays
    five = items[0]["action"]["data"]
    for data in (two, five):
        deliver(line, postback_event(customer_line_id, data, reply_token="rt"))
    survey.refresh_from_db()
    assert survey.score == 2
    assert inquiry.events.filter(kind=InquiryEventKind.CSAT_ANSWERED).count() == 1


def test_a_postback_from_someone_else_or_forged_is_not_recorded(asking, line):
    inquiry = resolved(channel="line")
    customer_line_id = inquiry.customer.identities.get(channel="line").external_id
    answer = POSTBACK_PREFIX + csat_token(inquiry_id=inquiry.pk, score=5)

    deliver(line, postback_event(BOB, answer, reply_token="rt-bob"))
    forged = POSTBACK_PREFIX + signing.dumps([inquiry.pk, 5], salt="elsewhere")
    deliver(line, postback_event(customer_line_id, forged, reply_token="rt-forged"))

    assert CsatSurvey.objects.get(inquiry=inquiry).score is None


def test_amazon_is_never_asked_and_its_setting_cannot_be_switched_on(asking, client, owner):
    inquiry = resolved(channel="amazon")
    assert not CsatSurvey.objects.filter(inquiry=inquiry).exists()
    assert not Send.objects.filter(kind=SendKind.NOTICE).exists()

    with pytest.raises(IntegrityError), transaction.atomic():
        CsatSetting.objects.create(channel="amazon", is_active=True)
    client.force_login(owner)
    response = client.post(
        reverse("admin:tickets_csatsetting_add"), {"channel": "amazon", "is_active": "on"}
    )
    assert response.status_code == 200  # the form again, with the reason
    assert "Amazon" in response.content.decode()
    assert not CsatSetting.objects.filter(channel="amazon").exists()


def test_amazon_is_not_asked_even_with_its_setting_forced_on():
    # a setting row that only a database without the constraint could hold
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tickets_csatsetting DROP CONSTRAINT tickets_csat_never_amazon")
    CsatSetting.objects.create(channel="amazon", is_active=True)

    inquiry = resolved(channel="amazon")

    assert not CsatSurvey.objects.filter(inquiry=inquiry).exists()
    assert not Send.objects.filter(kind=SendKind.NOTICE).exists()


def test_a_channel_whose_setting_is_off_or_missing_is_not_asked(smtp):
    CsatSetting.objects.create(channel="email", is_active=False)
    assert not CsatSurvey.objects.filter(inquiry=resolved(channel="email")).exists()
    assert not CsatSurvey.objects.filter(inquiry=resolved(channel="yahoo")).exists()
    CsatSetting.objects.create(channel="yahoo", is_active=True)
    assert CsatSurvey.objects.filter(inquiry=resolved(channel="yahoo")).exists()


def test_the_inquiry_page_shows_the_answer_and_comment(asking, client, colleague):
    inquiry = resolved()
    csat_answer(inquiry_id=inquiry.pk, score=5)
    client.force_login(colleague)
    page = client.get(reverse("admin:tickets_inquiry_change", args=[inquiry.pk]))
    text = page.content.decode()
    assert "5 / 5" in text and "とても満足" in text


def queries_of(client: Client, method: str, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        getattr(client, method)(path)
    return len(queries)


def test_the_survey_page_makes_a_fixed_number_of_queries(asking):
    first, second = resolved(), resolved()
    for _other in range(5):
        resolved()
    client = Client()
    url = reverse("tickets-csat", args=[csat_token(inquiry_id=first.pk, score=3)])
    other = reverse("tickets-csat", args=[csat_token(inquiry_id=second.pk, score=3)])
    # the survey row
    assert queries_of(client, "get", url) == 1
    # the answer: the row (and its lock), the update, the event, under a savepoint
    answer = queries_of(client, "post", url)
    assert answer == queries_of(client, "post", other)
    assert answer <= 8


def test_the_monthly_report_shows_satisfaction_by_channel_and_agent(
    asking, owner, django_user_model
):
    misaki = django_user_model.objects.create_user(
        "misaki", is_staff=True, last_name="佐藤", first_name="美咲"
    )
    misaki.groups.add(Group.objects.get(name=AGENT))

    def answered(channel: str, score: int | None, agent=None) -> None:
        inquiry = factories.inquiry(channel=channel)
        if agent is not None:
            inquiry_assign(inquiry=inquiry, assignee=agent, actor=owner)
        inquiry_status_set(inquiry=inquiry, status=InquiryStatus.RESOLVED, actor=owner)
        if score is not None:
            csat_answer(inquiry_id=inquiry.pk, score=score)

    answered("email", 5, misaki)
    answered("email", 2, misaki)
    answered("email", None, misaki)
    answered("line", 4)
    month = datetime.now(UTC).date().replace(day=1)
    report = monthly_report(month=month)

    by_channel = report.table("csat_by_channel")
    assert by_channel.rows == [["メール", 3, 2, 66.7, 3.5, 50.0], ["LINE", 1, 1, 100.0, 4.0, 100.0]]
    by_agent = report.table("csat_by_agent")
    assert by_agent.rows == [
        ["佐藤 美咲", 3, 2, 66.7, 3.5, 50.0],
        ["（未割り当て）", 1, 1, 100.0, 4.0, 100.0],
    ]


def test_the_report_addition_queries_do_not_grow_with_rows(asking, owner):
    def count() -> int:
        month = datetime.now(UTC).date().replace(day=1)
        with CaptureQueriesContext(connection) as queries:
            monthly_report(month=month)
        return len(queries)

    def some(n: int) -> None:
        for index in range(n):
            agent = owner if index % 2 else None
            inquiry = factories.inquiry(channel="email" if index % 3 else "line")
            if agent:
                inquiry_assign(inquiry=inquiry, assignee=agent, actor=owner)
            inquiry_status_set(inquiry=inquiry, status=InquiryStatus.RESOLVED, actor=owner)
            csat_answer(inquiry_id=inquiry.pk, score=1 + index % 5)

    some(2)
    few = count()
    some(6)
    assert count() == few
