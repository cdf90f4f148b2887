"""The emergency broadcast and the affected-orders notice (crisis.services.
broadcasts): who the ledger queues and skips, once per incident and
channel, quiet hours, and the links to the channels that work."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone, translation
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from crisis.models import IncidentEvent, IncidentEventKind, IncidentKind, IncidentSend
from crisis.services.broadcasts import (
    broadcast_cancel,
    broadcast_pause,
    broadcast_resume,
    broadcast_send,
    incident_notice_send,
)
from crm import services as crm
from crm.models import ChannelIdentity, ConsentState, Customer, Order
from outreach.dispatch import send_dispatch
from outreach.models import Delivery, DeliveryStatus, SendStatus, SkipReason
from outreach.templating import links_context
from tests.concurrency import at_once
from tests.crisis.broadcasting import (
    broadcast_template,
    incident,
    notice_template,
    opt_in,
    person,
)
from tests.crm import factories as crm_factories

pytestmark = pytest.mark.django_db

TOKYO = ZoneInfo("Asia/Tokyo")
NIGHT = datetime(2026, 12, 5, 23, 30, tzinfo=TOKYO)  # inside the default 21:00–09:00
DAY = datetime(2026, 12, 5, 14, 0, tzinfo=TOKYO)


def ledger(send) -> dict[int, tuple[str, str]]:
    return {
        row.customer_id: (row.status, row.skip_reason) for row in Delivery.objects.filter(send=send)
    }


# --- The audience: a property against a Python oracle ------------------------------------

MALLS = ["rakuten", "amazon", "yahoo", "own_site"]
_n = itertools.count(1)

customer_specs = st.fixed_dictionaries(
    {
        "identities": st.lists(
            st.sampled_from([*MALLS, "line"]), min_size=1, max_size=3, unique=True
        ),
        "email": st.booleans(),
        "orders": st.lists(st.sampled_from(MALLS), max_size=2),
        "consent": st.fixed_dictionaries(
            {
                channel: st.sampled_from([None, "opt_in", "opt_out", "in_then_out", "out_then_in"])
                for channel in ("email", "line")
            }
        ),
        "claimant": st.sampled_from([False, False, False, True]),
        "merge": st.sampled_from([False, False, False, True]),
    }
)


def external_id(channel: str, n: int) -> str:
    return f"U{n:032x}" if channel == "line" else f"{channel}-{n}"


def population_build(specs: list[dict]) -> None:
    live: list[Customer] = []
    for spec in specs:
        n = next(_n)
        first, *more = spec["identities"]
        profile = {"family_name": "生成", "given_name": f"{n}"}
        if spec["email"]:
            profile["email"] = f"gen{n}@example.jp"
        customer, _created = crm.customer_upsert(
            channel=first, external_id=external_id(first, n), **profile
        )
        for channel in more:
            ChannelIdentity.objects.create(
                customer=customer, channel=channel, external_id=external_id(channel, n)
            )
        for channel in spec["orders"]:
            crm_factories.order(customer=customer, channel=channel)
        for channel, history in spec["consent"].items():
            actions = {
                None: [],
                "opt_in": ["opt_in"],
                "opt_out": ["opt_out"],
                "in_then_out": ["opt_in", "opt_out"],
                "out_then_in": ["opt_out", "opt_in"],
            }[history]
            for minutes, action in enumerate(actions):
                crm.consent_record(
                    customer=customer,
                    channel=channel,
                    action=action,
                    source="api",
                    occurred_at=timezone.now() - timedelta(minutes=10 - minutes),
                )
        if spec["claimant"]:
            crm.customer_claimant_set(customer=customer, reason="苦情多数", actor=None)
        if spec["merge"] and live:
            crm.customer_merge(winner=live[-1], loser=customer, actor=None)
        else:
            live.append(customer)


def oracle(*, incident_channel: str, channel: str) -> dict[int, str]:
    """Who the broadcast must reach, from plain reads of the rows: every
    customer known on (an identity) or who ordered on the affected channel,
    with why they get nothing ("" if they get it)."""
    identities: dict[int, set[str]] = {}
    for customer_id, on in ChannelIdentity.objects.values_list("customer_id", "channel"):
        identities.setdefault(customer_id, set()).add(on)
    ordered: dict[int, set[str]] = {}
    for customer_id, on in Order.objects.values_list("customer_id", "channel"):
        ordered.setdefault(customer_id, set()).add(on)
    consent = {
        customer_id: granted
        for customer_id, granted in ConsentState.objects.filter(channel=channel).values_list(
            "customer_id", "granted"
        )
    }
    expected = {}
    for customer in Customer.objects.all():
        known = identities.get(customer.pk, set())
        if incident_channel not in known | ordered.get(customer.pk, set()):
            continue
        if customer.merged_into_id:
            reason = SkipReason.MERGED
        elif customer.is_claimant:
            reason = SkipReason.CLAIMANT
        elif known == {"amazon"}:
            reason = SkipReason.AMAZON_ONLY
        elif consent.get(customer.pk) is False:
            reason = SkipReason.UNSUBSCRIBED
        elif consent.get(customer.pk) is not True:
            reason = SkipReason.NO_CONSENT
        elif (channel == "email" and not customer.email_normalized) or (
            channel == "line" and "line" not in known
        ):
            reason = SkipReason.NO_ADDRESS
        else:
            reason = ""
        expected[customer.pk] = reason
    return expected


class BroadcastAudienceProperties(TestCase):
    """Each example builds its own customers (rolled back afterwards)."""

    @settings(max_examples=40)
    @given(
        specs=st.lists(customer_specs, min_size=1, max_size=6),
        incident_channel=st.sampled_from(MALLS),
        channel=st.sampled_from(["email", "line"]),
    )
    def test_broadcast_queues_exactly_the_consented_non_claimant_customers_of_the_channel(
        self, specs, incident_channel, channel
    ):
        manager = manager_user()
        population_build(specs)
        outage = incident(actor=manager, channel=incident_channel)
        sent = broadcast_send(
            incident=outage,
            channel=channel,
            template=broadcast_template(channel),
            actor=manager,
            now=DAY,
        )
        expected = oracle(incident_channel=incident_channel, channel=channel)
        assert ledger(sent.send) == {
            customer_id: (DeliveryStatus.SKIPPED, reason) if reason else (DeliveryStatus.QUEUED, "")
            for customer_id, reason in expected.items()
        }


def manager_user():
    from django.contrib.auth.models import Group, User

    from core.roles import MANAGER

    user = User.objects.create_user(f"manager{next(_n)}", is_staff=True, last_name="店長")
    user.groups.add(Group.objects.get(name=MANAGER))
    return user


# --- The rules around it -----------------------------------------------------------------


@pytest.fixture
def outage(owner):
    return incident(actor=owner, channel="rakuten")


@pytest.fixture
def audience():
    """Two consented Rakuten customers, a claimant, an Amazon-only buyer, an
    unsubscribed one, and a consented Yahoo customer (not of the channel)."""
    reachable = [opt_in(person("rakuten")), opt_in(person("rakuten"))]
    claimant = opt_in(person("rakuten"))
    crm.customer_claimant_set(customer=claimant, reason="暴言が続く", actor=None)
    amazon = opt_in(person("amazon"))
    crm_factories.order(customer=amazon, channel="rakuten")
    gone = opt_in(person("rakuten"))
    crm.consent_record(customer=gone, channel="email", action="opt_out", source="unsubscribe")
    other = opt_in(person("yahoo"))
    return {
        "reachable": reachable,
        "claimant": claimant,
        "amazon": amazon,
        "gone": gone,
        "other": other,
    }


def test_the_ledger_says_why_each_customer_of_the_channel_was_skipped(owner, outage, audience):
    sent = broadcast_send(
        incident=outage, channel="email", template=broadcast_template(), actor=owner, now=DAY
    )
    rows = ledger(sent.send)
    assert rows == {
        audience["reachable"][0].pk: ("queued", ""),
        audience["reachable"][1].pk: ("queued", ""),
        audience["claimant"].pk: ("skipped", SkipReason.CLAIMANT),
        audience["amazon"].pk: ("skipped", SkipReason.AMAZON_ONLY),
        audience["gone"].pk: ("skipped", SkipReason.UNSUBSCRIBED),
    }
    assert sent.send.kind == "broadcast" and sent.send.purpose == "marketing"


def test_a_second_click_returns_the_first_broadcast_and_sends_nothing_more(
    owner, outage, audience, django_capture_on_commit_callbacks
):
    template = broadcast_template()
    with django_capture_on_commit_callbacks() as first_tasks:
        first = broadcast_send(incident=outage, channel="email", template=template, actor=owner)
    with django_capture_on_commit_callbacks() as second_tasks:
        second = broadcast_send(incident=outage, channel="email", template=template, actor=owner)
    assert second.pk == first.pk
    assert IncidentSend.objects.count() == 1
    assert Delivery.objects.count() == 5
    assert len(first_tasks) == 1 and second_tasks == []  # nothing enqueued again
    assert IncidentEvent.objects.filter(kind=IncidentEventKind.BROADCAST).count() == 1


def test_a_deliberate_update_is_the_next_round_and_a_double_submit_of_it_is_one(
    owner, outage, audience
):
    template = broadcast_template()
    first = broadcast_send(incident=outage, channel="email", template=template, actor=owner)
    update = broadcast_send(
        incident=outage,
        channel="email",
        template=template,
        actor=owner,
        update=True,
        after_round=first.round,
    )
    again = broadcast_send(
        incident=outage,
        channel="email",
        template=template,
        actor=owner,
        update=True,
        after_round=first.round,
    )
    assert (first.round, update.round) == (1, 2)
    assert again.pk == update.pk
    assert Delivery.objects.filter(send=update.send, status="queued").count() == 2
    event = IncidentEvent.objects.filter(kind=IncidentEventKind.BROADCAST).last()
    assert event.data["round"] == 2


def test_each_message_channel_has_its_own_broadcast(owner, outage, audience):
    email = broadcast_send(
        incident=outage, channel="email", template=broadcast_template("email"), actor=owner
    )
    line = broadcast_send(
        incident=outage, channel="line", template=broadcast_template("line"), actor=owner
    )
    assert email.pk != line.pk
    # nobody of the audience is a LINE friend who opted in there
    assert set(ledger(line.send).values()) <= {
        ("skipped", SkipReason.NO_CONSENT),
        ("skipped", SkipReason.CLAIMANT),
        ("skipped", SkipReason.AMAZON_ONLY),
    }


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submits_send_one_broadcast(owner, audience):
    outage = incident(actor=owner, channel="rakuten")
    template = broadcast_template()

    def submit():
        broadcast_send(incident=outage, channel="email", template=template, actor=owner)

    assert at_once(submit, 2) == []
    assert IncidentSend.objects.count() == 1
    assert Delivery.objects.count() == 5
    connection.close()


def test_an_incident_without_a_channel_is_refused_in_japanese(owner):
    breach = incident(actor=owner, channel="", kind=IncidentKind.SYSTEM_FAILURE, system="決済代行")
    with translation.override("ja"), pytest.raises(ValidationError) as refused:
        broadcast_send(incident=breach, channel="email", template=broadcast_template(), actor=owner)
    assert "販売チャネル" in " ".join(refused.value.messages)
    assert not IncidentSend.objects.exists()


def test_only_a_marketing_template_of_the_channel_is_accepted(owner, outage):
    with pytest.raises(ValidationError) as refused:
        broadcast_send(
            incident=outage,
            channel="email",
            template=broadcast_template(purpose="transactional"),
            actor=owner,
        )
    assert "template" in refused.value.message_dict
    with pytest.raises(ValidationError):
        broadcast_send(
            incident=outage, channel="email", template=broadcast_template("line"), actor=owner
        )
    assert not IncidentSend.objects.exists()


def test_an_agent_cannot_send_the_broadcast(colleague, outage):
    with pytest.raises(PermissionDenied):
        broadcast_send(
            incident=outage, channel="email", template=broadcast_template(), actor=colleague
        )


# --- Quiet hours -------------------------------------------------------------------------


def test_quiet_hours_hold_the_broadcast_until_they_end(owner, outage, audience, smtp):
    sent = broadcast_send(
        incident=outage, channel="email", template=broadcast_template(), actor=owner, now=NIGHT
    )
    report = send_dispatch(send_id=sent.send_id, now_fn=lambda: NIGHT)
    assert report.sent == 0
    assert report.deferred_until == datetime(2026, 12, 6, 9, 0, tzinfo=TOKYO)
    assert smtp.received == []
    event = IncidentEvent.objects.get(kind=IncidentEventKind.BROADCAST)
    assert "quiet_hours_override_reason" not in event.data


def test_a_manager_may_send_in_quiet_hours_with_a_reason_that_is_recorded(
    owner, outage, audience, smtp
):
    reason = "楽天スーパーSALE中の障害で、朝まで待つと注文を失うため"
    sent = broadcast_send(
        incident=outage,
        channel="email",
        template=broadcast_template(),
        actor=owner,
        quiet_hours_override_reason=f"  {reason} ",
        now=NIGHT,
    )
    report = send_dispatch(send_id=sent.send_id, now_fn=lambda: NIGHT)
    assert report.sent == 2
    assert len(smtp.received) == 2
    assert sent.quiet_hours_override_reason == reason
    event = IncidentEvent.objects.get(kind=IncidentEventKind.BROADCAST)
    assert event.data["quiet_hours_override_reason"] == reason
    assert reason in event.text


def test_a_blank_reason_for_quiet_hours_is_refused(owner, outage, audience):
    with pytest.raises(ValidationError) as refused:
        broadcast_send(
            incident=outage,
            channel="email",
            template=broadcast_template(),
            actor=owner,
            quiet_hours_override_reason="   ",
            now=NIGHT,
        )
    assert "quiet_hours_override_reason" in refused.value.message_dict
    assert not IncidentSend.objects.exists()


# --- What the message says -----------------------------------------------------------------


def test_the_mail_points_to_the_channels_that_work_not_the_affected_one(
    owner, outage, audience, smtp, settings
):
    settings.SHOP_YAHOO_URL = "https://store.shopping.yahoo.co.jp/madoguchi-test/"
    settings.SHOP_AMAZON_URL = ""  # not offered
    sent = broadcast_send(
        incident=outage, channel="email", template=broadcast_template(), actor=owner, now=DAY
    )
    send_dispatch(send_id=sent.send_id, now_fn=lambda: DAY)
    mail = smtp.received[0].message
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "https://store.shopping.yahoo.co.jp/madoguchi-test/" in text
    assert settings.SHOP_URL in text and settings.SHOP_LINE_URL in text
    assert settings.SHOP_RAKUTEN_URL not in text  # the mall that is down
    assert "amazon" not in text.lower()
    assert "楽天市場" in mail["Subject"]
    assert "List-Unsubscribe" in mail  # marketing: the sender block and unsubscribe apply
    assert "{{" not in text


def test_links_others_lists_the_set_links_without_the_excluded_channel(settings):
    settings.SHOP_AMAZON_URL = ""
    links = links_context(exclude="yahoo")
    assert [link["channel"] for link in links["others"]] == ["own_site", "line", "rakuten"]
    assert links["yahoo"] == settings.SHOP_YAHOO_URL


# --- The notice to customers whose orders are held up ----------------------------------


def test_a_system_failure_notice_goes_to_unshipped_orders_on_the_channel_once(owner, smtp):
    failure = incident(actor=owner, channel="rakuten", kind=IncidentKind.SYSTEM_FAILURE)
    unpaid, paid, shipped, elsewhere = (person("rakuten") for _ in range(4))
    crm_factories.order(customer=unpaid, channel="rakuten", status="pending")
    crm_factories.order(customer=paid, channel="rakuten", status="paid")
    crm_factories.order(customer=paid, channel="rakuten", status="pending")  # two: one notice
    crm_factories.order(customer=shipped, channel="rakuten", status="shipped")
    crm_factories.order(customer=elsewhere, channel="yahoo", status="paid")
    template = notice_template()
    notice = incident_notice_send(incident=failure, channel="email", template=template, actor=owner)
    again = incident_notice_send(incident=failure, channel="email", template=template, actor=owner)
    assert again.pk == notice.pk
    assert notice.kind == "notice" and notice.send.purpose == "transactional"
    assert ledger(notice.send) == {unpaid.pk: ("queued", ""), paid.pk: ("queued", "")}
    send_dispatch(send_id=notice.send_id, now_fn=lambda: NIGHT)  # not marketing: no quiet hours
    assert {r.rcpt_tos[0] for r in smtp.received} == {unpaid.email, paid.email}
    text = smtp.received[0].message.get_body(preferencelist=("plain",)).get_content()
    assert "復旧見込み: " in text and "頃" in text
    assert IncidentEvent.objects.filter(kind=IncidentEventKind.NOTICE).count() == 1


def test_a_carrier_delay_notice_goes_to_shipped_not_delivered_orders(owner):
    delay = incident(actor=owner, channel="", kind=IncidentKind.CARRIER_DELAY, system="ヤマト運輸")
    shipped, delivered = person("own_site"), person("yahoo")
    crm_factories.order(customer=shipped, channel="own_site", status="shipped")
    crm_factories.order(customer=delivered, channel="yahoo", status="delivered")
    notice = incident_notice_send(
        incident=delay, channel="email", template=notice_template(), actor=owner
    )
    assert ledger(notice.send) == {shipped.pk: ("queued", "")}


def test_a_notice_needs_a_transactional_template(owner):
    failure = incident(actor=owner, channel="rakuten", kind=IncidentKind.SYSTEM_FAILURE)
    with pytest.raises(ValidationError):
        incident_notice_send(
            incident=failure, channel="email", template=broadcast_template(), actor=owner
        )


# --- Pause, resume, cancel -----------------------------------------------------------------


def test_pause_resume_and_cancel_change_the_send_and_are_on_the_timeline(owner, outage, audience):
    sent = broadcast_send(
        incident=outage, channel="email", template=broadcast_template(), actor=owner
    )
    broadcast_pause(incident_send=sent, actor=owner)
    assert sent.send.status == SendStatus.PAUSED
    with pytest.raises(ValidationError):
        broadcast_pause(incident_send=sent, actor=owner)
    broadcast_resume(incident_send=sent, actor=owner)
    assert sent.send.status == SendStatus.SENDING
    broadcast_cancel(incident_send=sent, actor=owner)
    assert sent.send.status == SendStatus.CANCELLED
    assert set(ledger(sent.send).values()) >= {("skipped", SkipReason.CANCELLED)}
    assert not Delivery.objects.filter(send=sent.send, status="queued").exists()
    actions = list(
        IncidentEvent.objects.filter(kind=IncidentEventKind.BROADCAST)
        .order_by("id")
        .values_list("data__action", flat=True)
    )
    assert actions == [None, "send_pause", "send_resume", "send_cancel"]


def test_an_agent_cannot_pause_a_broadcast(owner, colleague, outage):
    sent = broadcast_send(
        incident=outage, channel="email", template=broadcast_template(), actor=owner
    )
    with pytest.raises(PermissionDenied):
        broadcast_pause(incident_send=sent, actor=colleague)


def broadcast_and_dispatch(outage, actor, template):
    """The broadcast with `template` on its channel, sent by the worker's
    dispatch at DAY (outside quiet hours)."""
    sent = broadcast_send(
        incident=outage, channel=template.channel, template=template, actor=actor, now=DAY
    )
    return send_dispatch(send_id=sent.send_id, now_fn=lambda: DAY)


# --- Demo data ---------------------------------------------------------------------------


def test_the_demo_templates_are_valid_safe_to_run_twice_and_render_the_links(
    owner, outage, audience, smtp
):
    from collections import Counter
    from types import SimpleNamespace

    from crisis.demo_broadcasts import BROADCAST_EMAIL, BROADCAST_LINE, STEPS
    from outreach.models import MessageTemplate

    ctx = SimpleNamespace(users={"manager": owner}, created=Counter())
    for step in STEPS * 2:
        step(ctx)
    assert ctx.created["message templates"] == 3
    line = MessageTemplate.objects.get(name=BROADCAST_LINE)
    assert line.is_personal is False  # the same for everyone: LINE multicast
    broadcast_and_dispatch(outage, owner, MessageTemplate.objects.get(name=BROADCAST_EMAIL))
    text = smtp.received[0].message.get_body(preferencelist=("plain",)).get_content()
    assert "楽天市場で障害が発生しており" in text
    assert "公式" in text or "shop.example.jp" in text
    assert "{{" not in text and "{%" not in text


@pytest.fixture
def line_api(settings):
    from outreach.linefake import LineFake

    with LineFake(channel_access_token="test-token", channel_secret="test-secret") as fake:
        settings.LINE_API_HOST = fake.url
        settings.LINE_CHANNEL_ACCESS_TOKEN = "test-token"
        settings.LINE_CHANNEL_SECRET = "test-secret"
        yield fake


def test_the_line_broadcast_goes_by_multicast_with_the_working_channels(owner, outage, line_api):
    from collections import Counter
    from types import SimpleNamespace

    from crisis.demo_broadcasts import BROADCAST_LINE, STEPS
    from outreach.models import MessageTemplate

    for step in STEPS:
        step(SimpleNamespace(users={"manager": owner}, created=Counter()))
    friends = []
    for n in range(3):
        friend = person("rakuten")
        ChannelIdentity.objects.create(customer=friend, channel="line", external_id=f"U{n:032x}")
        friends.append(opt_in(friend, "line"))
    report = broadcast_and_dispatch(outage, owner, MessageTemplate.objects.get(name=BROADCAST_LINE))
    assert report.sent == 3
    [request] = line_api.accepted_requests
    assert request.endpoint == "multicast"
    assert len(request.recipients) == 3
    texts = [message["text"] for message in request.messages]
    assert "楽天市場で障害が発生しており" in texts[0]
    assert "https://shop.example.jp" in texts[1]
    assert "rakuten.co.jp" not in texts[1] and "line.me" not in texts[1]
