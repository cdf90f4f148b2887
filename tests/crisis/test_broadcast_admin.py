"""The broadcast panel of the incident page (crisis.admin.broadcasts): what
a manager, an agent and an outsider get, the buttons, the progress JSON,
the announcement for X and Instagram, and its queries."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from crisis.models import IncidentSend
from crisis.selectors.broadcasts import X_MAX_WEIGHT, incident_announcements, x_weight
from crisis.services.broadcasts import broadcast_send
from outreach.models import Delivery, SendStatus
from tests.crisis.broadcasting import broadcast_template, incident, notice_template, opt_in, person

pytestmark = pytest.mark.django_db

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def outage(owner):
    return incident(actor=owner, channel="rakuten")


@pytest.fixture
def customers():
    return [opt_in(person("rakuten")) for _ in range(3)]


def change_url(incident_) -> str:
    return reverse("admin:crisis_incident_change", args=[incident_.pk])


def url(name: str, *args) -> str:
    return reverse(f"admin:crisis_incident_broadcast_{name}", args=args)


@pytest.fixture(autouse=True)
def daytime(settings):
    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0  # never quiet unless a test says


def post_broadcast(client, incident_, template, **extra):
    data = {
        "broadcast-channel": template.channel,
        "broadcast-template": template.pk,
        "broadcast-seen": "",
        **extra,
    }
    return client.post(url("send", incident_.pk), data, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_a_manager_sends_the_broadcast_from_the_incident_page_once(
    client, owner, outage, customers
):
    template = broadcast_template()
    client.force_login(owner)
    page = client.get(change_url(outage))
    assert page.status_code == 200
    assert 'id="broadcast-form"' in page.content.decode()
    first = post_broadcast(client, outage, template)
    second = post_broadcast(client, outage, template)
    assert IncidentSend.objects.count() == 1
    assert Delivery.objects.filter(status="queued").count() == 3
    assert first.redirect_chain[-1][0].startswith(change_url(outage))
    assert second.status_code == 200
    with translation.override("ja"):
        assert any("送信済み" in m for m in messages_of(second)), messages_of(second)
    page = client.get(change_url(outage)).content.decode()
    assert f'id="send-progress-{IncidentSend.objects.get().send_id}"' in page


def test_an_update_checked_on_the_page_sends_the_next_round_once(client, owner, outage, customers):
    template = broadcast_template()
    client.force_login(owner)
    post_broadcast(client, outage, template)
    update = {"broadcast-update": "on", "broadcast-seen": "email=1"}
    post_broadcast(client, outage, template, **update)
    post_broadcast(client, outage, template, **update)  # a double submit of the same page
    assert sorted(IncidentSend.objects.values_list("round", flat=True)) == [1, 2]


def test_inside_quiet_hours_the_page_warns_and_a_blank_reason_sends_nothing(
    client, owner, outage, customers, settings
):
    settings.QUIET_HOURS_START, settings.QUIET_HOURS_END = 1, 0  # quiet all day but midnight
    client.force_login(owner)
    page = client.get(change_url(outage)).content.decode()
    if 'class="broadcast-quiet' not in page:  # run exactly at midnight: not quiet
        pytest.skip("not quiet hours at this minute")
    assert 'name="broadcast-quiet_hours_override_reason"' in page
    template = broadcast_template()
    refused = post_broadcast(
        client,
        outage,
        template,
        **{"broadcast-override_quiet_hours": "on", "broadcast-quiet_hours_override_reason": " "},
    )
    assert not IncidentSend.objects.exists()
    assert any(m for m in messages_of(refused))
    post_broadcast(
        client,
        outage,
        template,
        **{
            "broadcast-override_quiet_hours": "on",
            "broadcast-quiet_hours_override_reason": "セール中のため",
        },
    )
    sent = IncidentSend.objects.get()
    assert sent.quiet_hours_override_reason == "セール中のため"
    assert sent.send.respect_quiet_hours is False


def test_pause_resume_cancel_and_the_progress_json(client, owner, outage, customers):
    sent = broadcast_send(
        incident=outage, channel="email", template=broadcast_template(), actor=owner
    )
    client.force_login(owner)
    progress = client.get(url("progress", outage.pk, sent.send_id))
    data = json.loads(progress.content)
    assert (data["total"], data["pending"], data["percent"], data["status"]) == (3, 3, 0, "sending")
    client.post(url("action", outage.pk, sent.send_id, "pause"))
    sent.send.refresh_from_db()
    assert sent.send.status == SendStatus.PAUSED
    client.post(url("action", outage.pk, sent.send_id, "resume"))
    sent.send.refresh_from_db()
    assert sent.send.status == SendStatus.SENDING
    client.post(url("action", outage.pk, sent.send_id, "cancel"))
    sent.send.refresh_from_db()
    assert sent.send.status == SendStatus.CANCELLED
    data = json.loads(client.get(url("progress", outage.pk, sent.send_id)).content)
    assert data["percent"] == 100
    assert [r["reason"] for r in data["by_reason"]] == ["cancelled"]
    assert client.get(url("action", outage.pk, sent.send_id, "pause")).status_code == 405


def test_an_agent_sees_the_progress_but_no_send_buttons_and_cannot_send(
    client, owner, colleague, outage, customers
):
    sent = broadcast_send(
        incident=outage, channel="email", template=broadcast_template(), actor=owner
    )
    client.force_login(colleague)
    page = client.get(change_url(outage)).content.decode()
    assert f'id="send-progress-{sent.send_id}"' in page
    assert 'id="broadcast-form"' not in page
    assert url("action", outage.pk, sent.send_id, "pause") not in page
    response = client.post(url("action", outage.pk, sent.send_id, "pause"), follow=True)
    sent.send.refresh_from_db()
    assert sent.send.status == SendStatus.SENDING
    assert messages_of(response)
    post_broadcast(client, outage, broadcast_template("line"))
    assert IncidentSend.objects.count() == 1


def test_an_outsider_is_refused_everywhere(client, owner, outsider, outage, customers):
    sent = broadcast_send(
        incident=outage, channel="email", template=broadcast_template(), actor=owner
    )
    client.force_login(outsider)
    for address in (
        url("progress", outage.pk, sent.send_id),
        change_url(outage),
    ):
        assert client.get(address).status_code in (302, 403)
    client.post(url("action", outage.pk, sent.send_id, "cancel"))
    sent.send.refresh_from_db()
    assert sent.send.status == SendStatus.SENDING


def test_the_notice_form_sends_to_affected_orders(client, owner):
    from tests.crm import factories as crm_factories

    failure = incident(actor=owner, channel="yahoo", kind="system_failure")
    buyer = person("yahoo")
    crm_factories.order(customer=buyer, channel="yahoo", status="paid")
    template = notice_template()
    client.force_login(owner)
    client.post(
        url("notice", failure.pk),
        {"notice-channel": "email", "notice-template": template.pk},
    )
    sent = IncidentSend.objects.get()
    assert sent.kind == "notice"
    assert list(Delivery.objects.filter(send=sent.send).values_list("customer_id", flat=True)) == [
        buyer.pk
    ]


def test_the_page_runs_the_same_queries_for_one_send_or_several(
    client, owner, outage, customers, django_assert_max_num_queries
):
    client.force_login(owner)
    broadcast_send(incident=outage, channel="email", template=broadcast_template(), actor=owner)
    client.get(change_url(outage))  # warm caches (content types, session)
    with CaptureQueriesContext(connection) as one:
        assert client.get(change_url(outage)).status_code == 200
    broadcast_send(
        incident=outage, channel="line", template=broadcast_template("line"), actor=owner
    )
    broadcast_send(
        incident=outage,
        channel="email",
        template=broadcast_template(),
        actor=owner,
        update=True,
    )
    with django_assert_max_num_queries(len(one.captured_queries)):
        page = client.get(change_url(outage))
    assert page.content.decode().count('class="broadcast-send"') == 3


# --- The announcement ------------------------------------------------------------------


def test_the_x_announcement_fits_140_full_width_characters_with_the_working_links(owner):
    outage = incident(
        actor=owner,
        channel="rakuten",
        title="楽天市場で大規模なシステム障害が発生し、注文・決済・お問い合わせの受付がすべて停止",
        expected_recovery_at=datetime(2026, 12, 5, 18, 0, tzinfo=TOKYO),
    )
    with translation.override("ja"):
        x, instagram = incident_announcements(outage)
    assert x.weight == x_weight(x.text) <= X_MAX_WEIGHT
    assert "18時頃" in x.text and "2026年12月5日" in x.text
    assert "https://www.rakuten.co.jp" not in x.text + instagram.text
    assert "https://shop.example.jp" in instagram.text
    assert "https://line.me" in instagram.text


def test_x_counts_a_full_width_character_twice_and_a_link_as_23():
    assert x_weight("あ") == 2
    assert x_weight("a") == 1
    assert x_weight("見る https://example.jp/a/very/long/path/that/is/long") == 2 * 2 + 1 + 23
    assert x_weight("あ" * 140) == X_MAX_WEIGHT


def test_the_page_offers_the_announcement_in_read_only_textareas_with_copy_buttons(
    client, colleague, outage
):
    client.force_login(colleague)
    page = client.get(change_url(outage)).content.decode()
    assert 'id="announcement-x" readonly' in page
    assert 'id="announcement-instagram" readonly' in page
    assert page.count('class="button broadcast-copy"') == 2
