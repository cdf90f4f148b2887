"""`manage.py demo_data` and `manage.py demo_banner`."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from collections import Counter
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from core.choices import Channel
from core.roles import AGENT, MANAGER, MARKETER
from crm import demo_people, demo_tables
from crm.management.commands import demo_data
from crm.models import (
    ChannelIdentity,
    ConsentAction,
    ConsentEvent,
    ConsentState,
    Customer,
    CustomerEvent,
    LifecycleSegment,
    Order,
    OrderLine,
    Tag,
)
from reports.models import Countermeasure, CountermeasureStatus
from tests.seeds import seed_data_restore
from tickets import demo_history, demo_history_lives
from tickets.models import (
    AgentAvailability,
    AssignmentMode,
    AssignmentRule,
    CsatSetting,
    CsatSurvey,
    Inquiry,
    InquiryEvent,
    InquiryMessage,
    ReferenceCounter,
    SlaState,
)

PEOPLE = 40  # enough for every segment and channel (see FIXED_PEOPLE)


def _load(people: int = PEOPLE) -> str:
    out = StringIO()
    call_command("demo_data", customers=people, stdout=out)
    return out.getvalue()


def _counts() -> dict[str, int]:
    models = (
        get_user_model(),
        Customer,
        ChannelIdentity,
        Order,
        OrderLine,
        ConsentEvent,
        ConsentState,
        CustomerEvent,
        Tag,
        Inquiry,
        InquiryMessage,
        InquiryEvent,
        Countermeasure,
        AssignmentRule,
        CsatSetting,
        CsatSurvey,
    )
    counts = {model.__name__: model.objects.count() for model in models}
    counts["references used"] = sum(ReferenceCounter.objects.values_list("last", flat=True))
    return counts


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    """The demo data, loaded once for the module inside a transaction that
    is rolled back at the end; each test runs in a savepoint within it."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            # the test before may have been transactional: its flush took the
            # seed rows (categories, SLA policies) the demo relies on
            seed_data_restore()
            yield _load()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.mark.django_db
def test_second_run_creates_nothing_new(demo):
    first = _counts()
    lines = set(OrderLine.objects.values_list("id", flat=True))

    output = _load()

    assert _counts() == first
    assert set(OrderLine.objects.values_list("id", flat=True)) == lines
    assert "created: nothing" in output
    assert f"already there: people {PEOPLE}, claimants 2" in output
    assert first["Customer"] == PEOPLE
    assert first["Order"] > PEOPLE


@pytest.mark.django_db
def test_demo_staff_have_their_roles_and_the_printed_password(demo):
    User = get_user_model()
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    for username, role in (("agent", AGENT), ("marketer", MARKETER), ("manager", MANAGER)):
        user = User.objects.get(username=username)
        assert user.is_staff and not user.is_superuser
        assert list(user.groups.values_list("name", flat=True)) == [role]
        assert user.last_name and user.first_name
    # One check is enough (each costs a second of PBKDF2): they share it.
    assert User.objects.get(username="agent").check_password(demo_data.DEMO_PASSWORD)


@pytest.mark.django_db
def test_customers_look_japanese_and_come_from_every_channel(demo):
    customers = Customer.objects.all()
    with_kana = customers.exclude(family_name_kana="").exclude(given_name_kana="")
    assert with_kana.count() >= PEOPLE // 2
    assert all(
        all("ァ" <= ch <= "ヶ" or ch == "ー" for ch in c.family_name_kana) for c in with_kana
    )
    assert customers.exclude(prefecture="").values("prefecture").distinct().count() >= 5
    assert all(c.postal_code[3] == "-" for c in customers.exclude(postal_code=""))
    channels = set(ChannelIdentity.objects.values_list("channel", flat=True))
    assert channels == set(Channel.values) - {Channel.PHONE}
    line_ids = ChannelIdentity.objects.filter(channel=Channel.LINE).values_list(
        "external_id", flat=True
    )
    assert all(len(i) == 33 and i.startswith("U") for i in line_ids)
    amazon = ChannelIdentity.objects.filter(channel=Channel.AMAZON).values_list(
        "external_id", flat=True
    )
    assert all(i.endswith("@marketplace.amazon.co.jp") for i in amazon)
    # Numbers are stored as typed (full-width, +81...) and still normalised.
    phones = customers.exclude(phone="")
    assert phones.exclude(phone__regex=r"^0\d{1,3}-\d{2,4}-\d{4}$").exists()
    assert not phones.filter(phone_normalized="").exists()


@pytest.mark.django_db
def test_a_person_known_on_several_channels_is_one_customer(demo):
    several = Customer.objects.annotate(n=Count("identities")).filter(n__gte=2)
    assert several.exists()
    # The Amazon buyer (masked address) is linked to Rakuten by phone alone.
    linked = Customer.objects.filter(identities__channel=Channel.AMAZON).filter(
        identities__channel=Channel.RAKUTEN
    )
    assert linked.exists()
    # No two customers left with the same email or phone.
    for key in ("email_normalized", "phone_normalized"):
        duplicates = (
            Customer.objects.exclude(**{key: ""})
            .values(key)
            .annotate(n=Count("id"))
            .filter(n__gt=1)
        )
        assert not duplicates.exists(), key


@pytest.mark.django_db
def test_every_lifecycle_segment_is_there(demo):
    segments = set(Customer.objects.values_list("lifecycle_segment", flat=True))
    assert segments == set(LifecycleSegment.values)
    sleeping = Customer.objects.filter(lifecycle_segment=LifecycleSegment.SLEEPING)
    assert all(
        (demo_data.timezone.now() - c.last_order_at).days > settings.LIFECYCLE_SLEEPING_DAYS
        for c in sleeping
    )
    vip = Customer.objects.filter(lifecycle_segment=LifecycleSegment.VIP)
    assert all(c.total_spent >= settings.LIFECYCLE_VIP_MIN_SPENT for c in vip)


@pytest.mark.django_db
def test_orders_have_lines_and_mostly_delivered(demo):
    orders = Order.objects.annotate(n=Count("lines"))
    assert not orders.filter(n=0).exists()
    statuses = dict(Order.objects.values_list("status").annotate(n=Count("id")))
    assert statuses["delivered"] > sum(statuses.values()) / 2
    for order in Order.objects.prefetch_related("lines")[:20]:
        lines_total = sum(line.quantity * line.unit_price for line in order.lines.all())
        assert 0 <= order.total - lines_total <= demo_tables.SHIPPING_FEE


@pytest.mark.django_db
def test_consent_is_in_the_ledger_with_its_wording(demo):
    events = ConsentEvent.objects.all()
    assert events.filter(action=ConsentAction.OPT_IN).exists()
    assert events.filter(action=ConsentAction.OPT_OUT).exists()
    assert not events.filter(wording_version="").exists()
    assert ConsentState.objects.filter(granted=True).exists()
    # Masked Amazon addresses never opt in to mail.
    assert not ConsentState.objects.filter(
        customer__email__endswith="@marketplace.amazon.co.jp", channel="email"
    ).exists()


@pytest.mark.django_db
def test_claimants_are_flagged_by_the_manager_with_a_reason(demo):
    claimants = Customer.objects.filter(is_claimant=True)
    assert claimants.count() == 2  # people 5 and 17 of 40
    for customer in claimants:
        assert customer.claimant_reason
        assert customer.claimant_set_by.username == "manager"
        assert customer.lifecycle_segment == LifecycleSegment.CLAIMANT


def _people(count: int, seed: int = 1) -> list[demo_people.DemoPerson]:
    today = demo_data.timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    taken: set[str] = set()
    return [
        demo_people.person_generate(index=i, seed=seed, today=today, taken=taken)
        for i in range(count)
    ]


def test_people_are_generated_the_same_every_time():
    assert _people(30) == _people(30)
    assert _people(30, seed=2) != _people(30)


def test_first_people_are_the_same_whatever_the_number_asked_for():
    # so that `--customers 300` after `--customers 40` only adds people
    assert _people(60)[:15] == _people(15)


@pytest.mark.django_db
def test_banner_shows_where_to_go_and_how_to_log_in(demo):
    out = StringIO()
    call_command("demo_banner", stdout=out)
    text = out.getvalue()
    assert f"{settings.SITE_URL}/admin/" in text
    assert f"{settings.SITE_URL}/api/docs/" in text
    assert "mail/" in text
    for user in demo_data.DEMO_USERS:
        assert user.username in text and user.role_ja in text
    assert demo_data.DEMO_PASSWORD in text
    assert "missing" not in text


@pytest.mark.django_db
def test_an_app_adds_its_demo_steps_in_its_demo_module(demo, monkeypatch):
    # Given an app with a `demo` module (as tickets/demo.py would be)
    seen = []

    def tickets_demo(ctx: demo_data.DemoContext) -> None:
        seen.append((sorted(ctx.users), len(ctx.customers)))
        ctx.created["tickets"] += 3

    module = types.ModuleType("tickets.demo")
    module.__spec__ = importlib.machinery.ModuleSpec("tickets.demo", loader=None)
    module.DEMO_STEPS = [tickets_demo]
    monkeypatch.setitem(sys.modules, "tickets.demo", module)

    # When the demo data is loaded
    steps = demo_data.demo_steps()
    output = _load()

    # Then its step runs after crm's, before the final lifecycle recompute,
    # with the demo staff and customers at hand.
    assert steps.index(tickets_demo) > steps.index(demo_data.claimants_step)
    assert steps[-1] is demo_data.lifecycle_step
    assert seen == [(sorted(u.username for u in demo_data.DEMO_USERS), PEOPLE)]
    assert "created: tickets 3" in output


# --- Thirteen months of inquiries and the improvement cycle (tickets, reports) ---


def _months(times) -> set:
    return {timezone.localtime(at).date().replace(day=1) for at in times}


@pytest.mark.django_db
def test_thirteen_months_of_past_inquiries_each_month_with_some(demo):
    past = demo_history.history_inquiries()
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    expected = demo_history_lives.month_starts(today)
    assert len(expected) == 13
    assert _months(past.values_list("created_at", flat=True)) == set(expected)
    per_month = Counter(_months([at]).pop() for at in past.values_list("created_at", flat=True))
    assert min(per_month.values()) >= demo_history_lives.MIN_PER_MONTH
    # the live scenarios of the last two days come after the past, not among it
    assert past.filter(created_at__gte=demo_history_lives.history_end(today)).count() == 0
    # a real spread: most channels and every category
    assert past.values("channel").distinct().count() >= 6
    assert past.values("category").distinct().count() == 7
    # each reference is numbered in the month it was received
    for reference, at in past.values_list("reference", "created_at"):
        assert reference.startswith(f"Q-{timezone.localtime(at):%y%m}-")


@pytest.mark.django_db
def test_past_inquiries_were_triaged_answered_and_resolved_in_order_with_some_breaches(demo):
    past = demo_history.history_inquiries()
    assert not past.filter(triaged_at__isnull=True).exists()
    assert not past.filter(first_replied_at__isnull=True).exists()
    for inquiry in past:
        stages = [
            inquiry.created_at,
            inquiry.triaged_at,
            inquiry.first_replied_at,
            inquiry.resolved_at,
            inquiry.closed_at,
        ]
        reached = [at for at in stages if at is not None]
        assert reached == sorted(reached), inquiry.reference
        assert inquiry.triage_due_at is not None and inquiry.first_reply_due_at is not None
        late = inquiry.first_replied_at > inquiry.first_reply_due_at
        assert inquiry.sla_state == (SlaState.BREACHED if late else SlaState.MET)
    count = past.count()
    breached = past.filter(sla_state=SlaState.BREACHED).count()
    triage_late = past.filter(triaged_at__gt=F("triage_due_at")).count()
    assert 0 < breached < count / 3
    assert 0 < triage_late < count / 2
    assert past.filter(closed_at__isnull=False).count() > count / 2


@pytest.mark.django_db
def test_a_past_inquiry_has_its_messages_and_timeline_at_their_own_times(demo):
    inquiry = demo_history.history_inquiries().filter(closed_at__isnull=False).first()
    inbound, reply = inquiry.messages.order_by("created_at")
    assert (inbound.kind, inbound.created_at) == ("inbound", inquiry.created_at)
    assert (reply.kind, reply.outbound_state) == ("outbound", "sent")
    assert reply.created_at == inquiry.first_replied_at and reply.author == inquiry.assignee
    events = list(inquiry.events.values_list("kind", "new", "created_at"))
    assert events[0] == ("created", inquiry.channel, inquiry.created_at)
    assert ("stage", "triaged", inquiry.triaged_at) in events
    assert ("stage", "first_contact", inquiry.first_replied_at) in events
    assert ("status", "closed", inquiry.closed_at) in events
    assert inquiry.updated_at == inquiry.closed_at


@pytest.mark.django_db
def test_the_demo_countermeasure_reviews_the_delivery_delay_spike(demo):
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    (countermeasure,) = Countermeasure.objects.all()
    assert countermeasure.month == demo_history_lives.delay_spike_month(today)
    assert countermeasure.category.code == "delivery_delay"
    assert "出荷前の在庫確認を徹底" in countermeasure.action
    assert countermeasure.owner.username == "manager"
    assert countermeasure.status == CountermeasureStatus.IN_PROGRESS
    assert countermeasure.due_date > countermeasure.month


@pytest.mark.django_db
def test_the_helpdesk_rules_are_there_to_click_through(demo):
    # assignment: round robin for LINE and a category rule, agents present
    rules = AssignmentRule.objects.filter(is_active=True, mode=AssignmentMode.ROUND_ROBIN)
    assert rules.filter(channel=Channel.LINE).exists()
    assert rules.filter(category__isnull=False).exists()
    assert AgentAvailability.objects.filter(is_present=True).count() >= 2
    # satisfaction: asked on every channel but Amazon, some answered
    assert not CsatSetting.objects.get(channel=Channel.AMAZON).is_active
    assert CsatSetting.objects.filter(is_active=True).count() == len(Channel.values) - 1
    assert CsatSurvey.objects.filter(score__isnull=False).count() >= 2
    assert CsatSurvey.objects.exclude(comment="").exists()
    # clocks: a next reply owed and running, a resolution clock paused
    assert Inquiry.objects.filter(
        next_reply_since__isnull=False, next_replied_at__isnull=True, status="open"
    ).exists()
    assert Inquiry.objects.filter(status="waiting_customer").exists()
    # a merged pair and a split
    assert Inquiry.objects.filter(merged_into__isnull=False).exists()
    assert Inquiry.objects.filter(split_from__isnull=False).exists()
