"""Unsubscribe links (SPEC rule 8): GET shows, POST does, the RFC 8058
one-click POST works without a cookie or CSRF token."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm import services as crm
from crm.models import ChannelIdentity, ConsentEvent, ConsentState, Customer, CustomerEvent
from outreach import services
from outreach.linefake import unfollow_event, webhook_request
from outreach.models import (
    Delivery,
    DeliveryStatus,
    MessageTemplate,
    Purpose,
    Send,
    SendKind,
    SkipReason,
)
from tests.api_client import api_client
from tests.conftest import make_api_key
from tests.crm import factories

pytestmark = pytest.mark.django_db

ONE_CLICK = "List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"


def link(customer: Customer, channel: str = "email") -> str:
    return reverse(
        "outreach:unsubscribe",
        args=[services.unsubscribe_token(customer_id=customer.pk, channel=channel)],
    )


def counts() -> dict[str, int]:
    models = (Customer, ChannelIdentity, CustomerEvent, ConsentEvent, ConsentState, Delivery)
    return {model.__name__: model.objects.count() for model in models}


def statuses() -> dict[Any, tuple[str, str]]:
    return {
        (d.send.channel, d.send.purpose, d.customer_id): (d.status, d.skip_reason)
        for d in Delivery.objects.select_related("send")
    }


def _queue(send: Send, customers: list[Customer]) -> None:
    services.deliveries_snapshot(
        send=send,
        audience=Customer.objects.filter(pk__in=[c.pk for c in customers]),
        now=timezone.now(),
    )


def queue_all(customers: list[Customer]) -> None:
    """One queued row per customer in each of: email marketing, email
    transactional, LINE marketing."""
    email = services.template_save(
        template=MessageTemplate(
            name="冬のセール",
            channel="email",
            purpose=Purpose.MARKETING,
            subject="冬のセールのお知らせ",
            body_text="{{ customer.family_name }}様\n冬のセールを開催します。",
        )
    )
    line = services.template_save(
        template=MessageTemplate(
            name="LINE冬セール",
            channel="line",
            purpose=Purpose.MARKETING,
            line_messages=["冬のセールを開催中です。"],
        )
    )
    for send in (
        services.send_create(
            kind=SendKind.CAMPAIGN, channel="email", purpose=Purpose.MARKETING, template=email
        ),
        services.send_create(
            kind=SendKind.NOTICE,
            channel="email",
            purpose=Purpose.TRANSACTIONAL,
            content={"subject": "発送のお知らせ", "body_text": "ご注文の商品を発送しました。"},
        ),
        services.send_create(
            kind=SendKind.CAMPAIGN, channel="line", purpose=Purpose.MARKETING, template=line
        ),
    ):
        _queue(send, customers)
    assert {status for status, _reason in statuses().values()} == {DeliveryStatus.QUEUED}


def subscriber(n: int = 1) -> Customer:
    """A customer who opted in to email and LINE and follows on LINE."""
    customer = factories.customer(email=f"hanako{n}@example.jp")
    crm.customer_upsert(channel="line", external_id=f"U{n:032x}", email=customer.email)
    for channel, source in (("email", "web_form"), ("line", "line")):
        crm.consent_record(customer=customer, channel=channel, action="opt_in", source=source)
    return customer


@pytest.fixture
def hanako() -> Customer:
    return subscriber(1)


# --- GET shows ------------------------------------------------------------------


def test_get_shows_a_japanese_confirmation_form_and_changes_nothing(hanako, client):
    before = counts()

    response = client.get(link(hanako), HTTP_ACCEPT_LANGUAGE="ja")

    assert response.status_code == 200
    assert response["Content-Language"] == "ja"
    html = response.content.decode()
    assert '<html lang="ja">' in html
    assert '<form method="post">' in html
    assert '<button type="submit">' in html
    assert "no-cache" in response["Cache-Control"]
    assert counts() == before
    assert ConsentState.objects.get(customer=hanako, channel="email").granted


def test_get_in_english_is_marked_english(hanako, client):
    response = client.get(link(hanako), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="en">' in html
    assert "Stop receiving promotional messages by Email?" in html


# --- POST does --------------------------------------------------------------------


def test_the_form_opts_out_of_that_channel_and_skips_only_its_queued_marketing(hanako, client):
    other = subscriber(2)
    queue_all([hanako, other])

    response = client.post(link(hanako), {})

    assert response.status_code == 200
    assert "outreach/unsubscribe_done.html" in [t.name for t in response.templates]
    event = ConsentEvent.objects.get(customer=hanako, action="opt_out")
    assert (event.channel, event.source) == ("email", "unsubscribe")
    states = {s.channel: s.granted for s in ConsentState.objects.filter(customer=hanako)}
    assert states == {"email": False, "line": True}
    assert statuses() == {
        ("email", "marketing", hanako.pk): ("skipped", SkipReason.UNSUBSCRIBED),
        ("email", "transactional", hanako.pk): ("queued", ""),
        ("line", "marketing", hanako.pk): ("queued", ""),
        ("email", "marketing", other.pk): ("queued", ""),
        ("email", "transactional", other.pk): ("queued", ""),
        ("line", "marketing", other.pk): ("queued", ""),
    }


def test_a_line_link_withdraws_line_consent_and_leaves_email_alone(hanako, client):
    queue_all([hanako])

    client.post(link(hanako, "line"), {})

    states = {s.channel: s.granted for s in ConsentState.objects.filter(customer=hanako)}
    assert states == {"email": True, "line": False}
    assert statuses() == {
        ("email", "marketing", hanako.pk): ("queued", ""),
        ("email", "transactional", hanako.pk): ("queued", ""),
        ("line", "marketing", hanako.pk): ("skipped", SkipReason.UNSUBSCRIBED),
    }


def test_one_click_works_without_cookie_or_csrf_token(hanako):
    queue_all([hanako])
    client = Client(enforce_csrf_checks=True)

    response = client.post(link(hanako), ONE_CLICK, content_type=FORM)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert not client.cookies
    assert not ConsentState.objects.get(customer=hanako, channel="email").granted
    event = ConsentEvent.objects.get(customer=hanako, action="opt_out")
    assert event.source == "unsubscribe"
    assert statuses()[("email", "marketing", hanako.pk)] == ("skipped", SkipReason.UNSUBSCRIBED)


def test_the_form_post_also_needs_no_csrf_token(hanako):
    response = Client(enforce_csrf_checks=True).post(link(hanako), {})

    assert response.status_code == 200
    assert not ConsentState.objects.get(customer=hanako, channel="email").granted


def test_unsubscribing_twice_writes_one_event(hanako, client):
    url = link(hanako)

    client.post(url, {})
    client.post(url, ONE_CLICK, content_type=FORM)
    response = client.post(url, {})

    assert response.status_code == 200
    assert ConsentEvent.objects.filter(customer=hanako, action="opt_out").count() == 1


def test_when_already_opted_out_elsewhere_the_link_writes_no_second_event(hanako, client):
    # Given: queued rows, then an opt-out staff recorded from a phone call.
    queue_all([hanako])
    crm.consent_record(
        customer=hanako,
        channel="email",
        action="opt_out",
        source="staff",
        note="12/5 電話にて配信停止のご依頼",
    )
    before = ConsentEvent.objects.count()

    client.post(link(hanako), {})

    assert ConsentEvent.objects.count() == before
    assert statuses()[("email", "marketing", hanako.pk)] == ("skipped", SkipReason.UNSUBSCRIBED)


def test_a_link_of_a_merged_customer_opts_out_the_winner(client):
    loser = subscriber(1)
    winner = subscriber(2)
    url = link(loser)  # sent before the merge
    crm.customer_merge(winner=winner, loser=loser, actor=None)

    response = client.post(url, {})

    assert response.status_code == 200
    event = ConsentEvent.objects.get(action="opt_out")
    assert event.customer == winner
    assert not ConsentState.objects.get(customer=winner, channel="email").granted
    assert not ConsentState.objects.filter(customer=loser).exists()


# --- Every door: one opt-out -------------------------------------------------------
# SPEC rule 8: an opt-out takes effect at once across queued sends, however
# it arrives. Each door below is driven the way it is used: a browser, a
# mail client's one-click, LINE's signed webhook, a store site's API key and
# an agent in the admin.

LINE_SECRET = "test-line-channel-secret"


def _line_user_id(customer: Customer) -> str:
    return customer.identities.get(channel="line").external_id


def door_link(customer: Customer, channel: str, _agent) -> None:
    assert Client().post(link(customer, channel), {}).status_code == 200


def door_one_click(customer: Customer, channel: str, _agent) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(link(customer, channel), ONE_CLICK, content_type=FORM)
    assert response.status_code == 200


def door_line_unfollow(customer: Customer, channel: str, _agent) -> None:
    assert channel == "line"
    request = webhook_request(
        [unfollow_event(_line_user_id(customer))],
        destination="U" + "0f" * 16,
        channel_secret=LINE_SECRET,
    )
    response = Client(enforce_csrf_checks=True).post(
        "/hooks/line/",
        data=request.body,
        content_type="application/json",
        HTTP_X_LINE_SIGNATURE=request.signature,
    )
    assert response.status_code == 200


def door_api(customer: Customer, channel: str, _agent) -> None:
    client = api_client(make_api_key(channels=["own_site"])[1])
    body = {
        "customer_id": customer.pk,
        "channel": channel,
        "action": "opt_out",
        "wording_version": "privacy-2025-04",
    }
    assert client.post("/api/v1/consent-events/", body, format="json").status_code == 201


def door_admin(customer: Customer, channel: str, agent) -> None:
    client = Client()
    client.force_login(agent)
    url = reverse("admin:crm_customer_consent", args=[customer.pk])
    body = {"channel": channel, "action": "opt_out", "note": "電話で配信停止のご依頼"}
    response = client.post(url, body)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:crm_customer_change", args=[customer.pk])


def queue_marketing_and_notices(customers: list[Customer]) -> None:
    """One queued row per customer in each of: email marketing, email
    transactional, LINE marketing, LINE transactional."""
    queue_all(customers)
    notice = services.send_create(
        kind=SendKind.NOTICE,
        channel="line",
        purpose=Purpose.TRANSACTIONAL,
        content={"line_messages": ["ご注文の商品を発送しました。"]},
    )
    _queue(notice, customers)


DOORS = [
    pytest.param(door_link, "email", "unsubscribe", id="link"),
    pytest.param(door_one_click, "email", "unsubscribe", id="one-click"),
    pytest.param(door_line_unfollow, "line", "line", id="line-unfollow"),
    pytest.param(door_api, "email", "api", id="api-email"),
    pytest.param(door_api, "line", "api", id="api-line"),
    pytest.param(door_admin, "email", "staff", id="admin-email"),
    pytest.param(door_admin, "line", "staff", id="admin-line"),
]


@pytest.mark.parametrize(("door", "channel", "source"), DOORS)
def test_every_door_skips_queued_marketing_at_once_and_leaves_notices(
    door, channel, source, settings, colleague
):
    settings.LINE_CHANNEL_SECRET = LINE_SECRET
    hanako, other = subscriber(1), subscriber(2)
    queue_marketing_and_notices([hanako, other])

    door(hanako, channel, colleague)  # colleague: an agent
    event = ConsentEvent.objects.get(customer=hanako, action="opt_out")
    assert (event.channel, event.source) == (channel, source)
    assert not ConsentState.objects.get(customer=hanako, channel=channel).granted
    expected = {
        (ch, purpose, customer.pk): ("queued", "")
        for ch in ("email", "line")
        for purpose in ("marketing", "transactional")
        for customer in (hanako, other)
    }
    expected[(channel, "marketing", hanako.pk)] = ("skipped", SkipReason.UNSUBSCRIBED)
    assert statuses() == expected


# --- Refused -----------------------------------------------------------------------


def _tampered_tokens(customer: Customer) -> list[str]:
    token = services.unsubscribe_token(customer_id=customer.pk, channel="email")
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    payload = {"c": customer.pk, "ch": "email"}
    return [
        flipped,
        "not-a-token",
        signing.dumps(payload, compress=True),  # right key, wrong salt
        signing.dumps(payload, key="someone-elses-key", salt=django_settings.UNSUBSCRIBE_SALT),
        services.unsubscribe_token(customer_id=customer.pk + 1000, channel="email"),
        signing.dumps({"c": customer.pk, "ch": "sms"}, salt=django_settings.UNSUBSCRIBE_SALT),
    ]


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_token_shows_the_invalid_page_and_writes_nothing(hanako, method):
    client = Client(enforce_csrf_checks=True)
    before = counts()

    for token in _tampered_tokens(hanako):
        url = reverse("outreach:unsubscribe", args=[token])
        if method == "post":
            response = client.post(url, ONE_CLICK, content_type=FORM)
        else:
            response = client.get(url)
        assert response.status_code == 400, token
        assert "outreach/unsubscribe_invalid.html" in [t.name for t in response.templates]

    assert counts() == before
    assert ConsentState.objects.get(customer=hanako, channel="email").granted


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_other_methods_are_405_and_write_nothing(hanako, client, method):
    before = counts()

    response = getattr(client, method)(link(hanako), ONE_CLICK, content_type=FORM)

    assert response.status_code == 405
    assert counts() == before


@pytest.mark.parametrize("channel", ["email", "line"])
@pytest.mark.parametrize("customer_id", [1, 42, 10**12])
def test_the_link_is_the_one_reverse_gives(customer_id, channel):
    # The worker puts the token into a path resolved once; it must be the
    # URL reverse() gives, and it must open the page.
    # (a signed token carries the second it was made: read it back, do not re-sign)
    url = services.unsubscribe_url(customer_id=customer_id, channel=channel)
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert url == django_settings.SITE_URL + reverse("outreach:unsubscribe", args=[token])
    assert services.unsubscribe_token_read(token) == (
        customer_id,
        channel,
    )
