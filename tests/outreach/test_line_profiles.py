"""LINE customers get names: a follow or a first message marks the user's
profile due, the worker's task reads it from the LINE fake through the SDK,
and staff screens show 「LINE: さくら」; LINE's errors leave the customer as
they were."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import ChannelIdentity, Customer
from crm.services import customer_upsert
from outreach.line_profiles import PROFILE_RETRY_MINUTES
from outreach.linefake import LineFake
from outreach.tasks import line_profile_fetch_task, line_profiles_due_task
from tests.tickets import factories
from tickets.services.inbound import line_messages_consume

pytestmark = pytest.mark.django_db

SECRET = "test-line-channel-secret"
SAKURA = "U" + "5a" * 16
PICTURE = "https://profile.line-scdn.net/sakura-picture"


@pytest.fixture
def line(settings):
    with LineFake(channel_access_token="test-token", channel_secret=SECRET) as fake:
        settings.LINE_API_HOST = fake.url
        settings.LINE_CHANNEL_ACCESS_TOKEN = "test-token"
        settings.LINE_CHANNEL_SECRET = SECRET
        fake.set_profile(SAKURA, "さくら", picture_url=PICTURE)
        yield fake


def deliver(line: LineFake, *events) -> None:
    request = line.webhook_request(*events)
    response = Client().post(
        "/hooks/line/",
        data=request.body,
        content_type="application/json",
        HTTP_X_LINE_SIGNATURE=request.signature,
    )
    assert response.status_code == 200


def profile_reads(line: LineFake) -> int:
    return sum(1 for request in line.requests if request.endpoint == "profile")


def identity(user_id: str = SAKURA) -> ChannelIdentity:
    return ChannelIdentity.objects.select_related("customer").get(
        channel="line", external_id=user_id
    )


def test_follow_reads_the_profile_in_the_worker_not_in_the_webhook(line):
    deliver(line, line.follow_event(SAKURA))
    # The webhook only marked the profile due: LINE was not asked yet.
    assert profile_reads(line) == 0
    assert identity().profile_due_at is not None
    assert identity().customer.label.startswith("#")

    assert line_profile_fetch_task(identity().pk) is True

    read = identity()
    assert profile_reads(line) == 1
    assert (read.display_name, read.picture_url) == ("さくら", PICTURE)
    assert read.profile_fetched_at is not None and read.profile_due_at is None
    assert read.customer.nickname == "さくら"
    assert read.customer.label == "LINE: さくら"
    assert str(read.customer) == "LINE: さくら"
    # Run twice (a redelivered task): nothing is due, LINE is not asked again.
    assert line_profile_fetch_task(read.pk) is False
    assert profile_reads(line) == 1


def test_first_message_reads_the_profile_and_later_messages_do_not(line):
    deliver(line, line.text_message_event(SAKURA, "注文した商品について"))
    assert identity().profile_due_at is not None
    assert line_profiles_due_task() == 1
    assert identity().customer.label == "LINE: さくら"

    deliver(line, line.text_message_event(SAKURA, "追加の質問です"))
    assert identity().profile_due_at is None
    assert line_profiles_due_task() == 0
    assert profile_reads(line) == 1


def test_a_user_who_is_not_a_friend_stays_as_they_were_and_is_not_asked_again(line):
    line.set_not_friend(SAKURA)
    deliver(line, line.follow_event(SAKURA))
    before = Customer.objects.get(pk=identity().customer_id)

    line_profiles_due_task()

    read = identity()
    assert read.profile_error.startswith("LINE 404")
    assert read.profile_due_at is None  # a 404 is not retried
    assert read.display_name == "" and read.picture_url == ""
    assert read.customer.nickname == "" and read.customer.label == before.label
    assert read.customer.updated_at == before.updated_at
    # A later message does not ask again either.
    deliver(line, line.text_message_event(SAKURA, "こんにちは"))
    assert line_profiles_due_task() == 0


@pytest.mark.parametrize("status", [500, 429])
def test_a_transient_line_error_leaves_the_customer_and_retries_later(line, status):
    deliver(line, line.follow_event(SAKURA))
    before = Customer.objects.get(pk=identity().customer_id)
    line.fail_next(1, status, endpoint="profile")

    line_profiles_due_task()

    read = identity()
    assert read.profile_error.startswith(f"LINE {status}")
    assert read.customer.nickname == "" and read.customer.updated_at == before.updated_at
    assert read.profile_due_at > timezone.now() + timedelta(minutes=PROFILE_RETRY_MINUTES - 1)
    assert line_profiles_due_task() == 0  # not before its time

    ChannelIdentity.objects.filter(pk=read.pk).update(profile_due_at=timezone.now())
    assert line_profiles_due_task() == 1
    assert identity().customer.label == "LINE: さくら"
    assert identity().profile_error == ""


def test_an_unreachable_line_is_a_transient_error(line, settings):
    deliver(line, line.follow_event(SAKURA))
    settings.LINE_API_HOST = "http://127.0.0.1:9"  # nothing listens there
    line_profiles_due_task()
    read = identity()
    assert read.profile_error.startswith("LINE unreachable")
    assert read.profile_due_at is not None
    assert read.customer.nickname == ""


def test_a_name_staff_typed_is_never_overwritten(line):
    customer, _ = customer_upsert(
        channel="line", external_id=SAKURA, family_name="佐藤", given_name="桜子"
    )
    deliver(line, line.follow_event(SAKURA))
    line_profiles_due_task()

    customer.refresh_from_db()
    assert (customer.family_name, customer.given_name) == ("佐藤", "桜子")
    assert customer.label == "佐藤 桜子"
    assert identity().display_name == "さくら"


def test_inbox_inquiry_page_and_customer_list_show_the_line_name(line, client, owner):
    deliver(line, line.text_message_event(SAKURA, "注文した商品が届きません"))
    line_messages_consume()
    line_profiles_due_task()
    customer = identity().customer
    inquiry = customer.inquiries.get()
    client.force_login(owner)

    inbox = client.get(reverse("admin:tickets_inquiry_changelist")).content.decode()
    page = client.get(reverse("admin:tickets_inquiry_change", args=[inquiry.pk])).content.decode()
    customers = client.get(reverse("admin:crm_customer_changelist")).content.decode()

    for html in (inbox, page, customers):
        assert "LINE: さくら" in html
        assert f"#{customer.pk}<" not in html


def test_a_customer_without_any_name_still_shows_their_number():
    inquiry = factories.inquiry(customer=customer_upsert(channel="phone", phone="0312345678")[0])
    assert inquiry.customer.label == f"#{inquiry.customer.pk}"


@pytest.mark.django_db(transaction=True)
def test_the_webhook_hands_the_read_to_the_worker_queue(line):
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    deliver(line, line.follow_event(SAKURA))

    queued = [SignedPackage.loads(task.payload) for task in OrmQ.objects.all()]
    assert [(t["func"], t["args"]) for t in queued] == [
        ("outreach.tasks.line_profile_fetch_task", (identity().pk,))
    ]
    assert profile_reads(line) == 0


@pytest.mark.django_db(transaction=True)
def test_a_queue_that_cannot_take_the_read_leaves_it_to_the_every_minute_job(line, monkeypatch):
    def broker_down(*args, **kwargs):
        raise ConnectionError("the broker is down")

    monkeypatch.setattr("django_q.tasks.async_task", broker_down)
    deliver(line, line.follow_event(SAKURA))  # still answered 200

    assert identity().profile_due_at is not None
    assert line_profiles_due_task() == 1
    assert identity().customer.label == "LINE: さくら"


def test_a_line_name_given_with_the_identity_names_the_customer():
    customer, _ = customer_upsert(
        channel="line", external_id=SAKURA, identity_display_name="はな🌸"
    )
    named, _ = customer_upsert(
        channel="line",
        external_id="U" + "6b" * 16,
        identity_display_name="たろう",
        family_name="佐藤",
    )
    assert customer.label.startswith("#")

    from outreach.line_profiles import line_nicknames_fill

    assert line_nicknames_fill() == 2
    customer.refresh_from_db()
    named.refresh_from_db()
    assert customer.label == "LINE: はな🌸"
    assert named.label == "佐藤" and named.family_name == "佐藤"
    assert line_nicknames_fill() == 0
