"""Automatic assignment (round robin per channel or category) and the
agents' presence: tickets.services.assignment, through every way an
inquiry is created."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.roles import AGENT, MARKETER
from tests.api_client import api_client
from tests.concurrency import at_once
from tests.conftest import make_api_key
from tests.tickets import factories
from tests.tickets.test_api import FORM
from tests.tickets.test_inbound_mail import customer_mail
from tickets.models import (
    AgentAvailability,
    AssignmentMode,
    AssignmentRule,
    Category,
    Inquiry,
    InquiryEventKind,
    InquiryStatus,
    NotificationKind,
    StaffNotification,
)
from tickets.services import agent_presence_set, inquiry_auto_assign, inquiry_status_set
from tickets.services.inbound import mail_ingest

pytestmark = pytest.mark.django_db

INBOX = "/admin/tickets/inquiry/"
PRESENCE = "/admin/tickets/agentavailability/presence/"


def agent(django_user_model, username: str, *, family: str, given_name: str = "", limit=20):
    user = django_user_model.objects.create_user(
        username, is_staff=True, last_name=family, first_name=given_name
    )
    user.groups.add(Group.objects.get(name=AGENT))
    agent_presence_set(user=user, is_present=True, actor=user)
    AgentAvailability.objects.filter(user=user).update(open_limit=limit)
    return user


def rule(**fields) -> AssignmentRule:
    return AssignmentRule.objects.create(mode=AssignmentMode.ROUND_ROBIN, **fields)


def assignees(count: int, channel: str = "email") -> list[str]:
    return [factories.inquiry(channel=channel).assignee.username for _ in range(count)]


def test_new_inquiries_go_in_turn_to_present_agents_least_recently_assigned_first(
    django_user_model,
):
    rule(channel="email")
    for name in ("a", "b", "c"):
        agent(django_user_model, name, family=name)

    assert assignees(6) == ["a", "b", "c", "a", "b", "c"]
    inquiry = Inquiry.objects.order_by("pk").first()
    assert inquiry.status == InquiryStatus.OPEN  # given to someone: no longer new


def test_round_robin_skips_absent_and_full_agents(django_user_model):
    rule(channel="email")
    a = agent(django_user_model, "a", family="a")
    agent(django_user_model, "b", family="b", limit=1)
    c = agent(django_user_model, "c", family="c")
    agent_presence_set(user=c, is_present=False, actor=c)

    # b is full after one; c is absent throughout
    assert assignees(4) == ["a", "b", "a", "a"]

    # b's inquiry resolved: b has room again and is the least recently assigned
    resolved = Inquiry.objects.get(assignee__username="b")
    inquiry_status_set(inquiry=resolved, status=InquiryStatus.RESOLVED, actor=a)
    assert assignees(1) == ["b"]


def test_nobody_available_leaves_the_inquiry_unassigned_and_the_inbox_says_so(
    client, django_user_model, owner
):
    rule(channel="email")
    absent = agent(django_user_model, "a", family="鈴木")
    agent_presence_set(user=absent, is_present=False, actor=absent)

    inquiry = factories.inquiry(channel="email")

    assert inquiry.assignee is None and inquiry.status == InquiryStatus.NEW
    assert inquiry.events.filter(kind=InquiryEventKind.ASSIGN_WAITING).count() == 1
    client.force_login(owner)
    page = client.get(INBOX).content.decode()
    assert "自動割り当て（メール）: 対応可能で上限に達していない担当者がいないため" in page


def test_a_category_rule_comes_before_the_channel_rule_and_manual_assigns_nobody(
    django_user_model,
):
    delay = Category.objects.get(code="delivery_delay")
    AssignmentRule.objects.create(channel="email", mode=AssignmentMode.MANUAL)
    group = Group.objects.create(name="配送チーム")
    agent(django_user_model, "other", family="other")
    shipping = agent(django_user_model, "ship", family="ship")
    shipping.groups.add(group)
    rule(category=delay, group=group)

    assert factories.inquiry(channel="email", category=delay).assignee == shipping
    assert factories.inquiry(channel="email").assignee is None  # the manual rule


def test_a_rule_is_for_a_channel_or_a_category_and_one_each(django_user_model):
    delay = Category.objects.get(code="delivery_delay")
    rule(channel="line")
    with pytest.raises(IntegrityError), transaction.atomic():
        rule(channel="line")
    with pytest.raises(IntegrityError), transaction.atomic():
        rule(channel="line", category=delay)


def test_automatic_assignment_writes_an_event_and_a_notice_to_the_agent(
    client, django_user_model, owner
):
    rule()  # every channel
    sato = agent(django_user_model, "misaki", family="佐藤", given_name="美咲")

    inquiry = factories.inquiry(channel="rakuten")

    event = inquiry.events.get(kind=InquiryEventKind.ASSIGNED)
    assert (event.actor, event.new, event.data) == (None, "misaki", {"auto": True})
    notice = StaffNotification.objects.get(user=sato, inquiry=inquiry)
    assert notice.kind == NotificationKind.ASSIGNED
    client.force_login(owner)
    page = client.get(reverse("admin:tickets_inquiry_change", args=[inquiry.pk]))
    text = page.content.decode()
    assert "佐藤 美咲 (自動割り当て)" in text
    assert "misaki" not in text


def test_every_way_of_creating_an_inquiry_is_assigned(client, django_user_model, owner):
    rule()
    agent(django_user_model, "a", family="a")

    # the store's contact form
    store = api_client(make_api_key(channels=["own_site"])[1])
    response = store.post("/api/v1/inquiries/", FORM, format="json")
    assert response.status_code == 201, response.content
    # a mail
    mail_ingest(customer_mail(), source="test")
    # a phone call entered by an agent
    client.force_login(owner)
    customer = factories.inquiry(channel="email").customer
    response = client.post(
        reverse("admin:tickets_inquiry_add"),
        {
            "customer": customer.pk,
            "channel": "phone",
            "subject": "電話: 返品について",
            "body_text": "返品の方法を知りたい",
            "priority": "normal",
        },
    )
    assert response.status_code == 302
    # LINE messages go through inquiry_create as well (tests/tickets/test_inbound.py)
    channels = Counter(Inquiry.objects.values_list("channel", "assignee__username"))
    assert channels == {("own_site", "a"): 1, ("email", "a"): 2, ("phone", "a"): 1}


@pytest.mark.django_db(transaction=True)
def test_inquiries_created_at_once_do_not_go_to_the_same_agent(django_user_model):
    rule(channel="email")
    for name in "abcd":
        agent(django_user_model, name, family=name, limit=1)
    customers = [factories.inquiry(channel="phone").customer for _ in range(4)]
    queue = list(customers)

    def create() -> None:
        factories.inquiry(channel="email", customer=queue.pop())

    assert at_once(create, 4) == []

    counts = Counter(
        Inquiry.objects.filter(channel="email").values_list("assignee__username", flat=True)
    )
    assert counts == {"a": 1, "b": 1, "c": 1, "d": 1}


@pytest.mark.django_db(transaction=True)
def test_two_workers_assigning_at_once_take_turns_on_the_rules_cursor(django_user_model):
    # inquiries that came in before the rule: each worker assigns one
    waiting = [factories.inquiry(channel="email") for _ in range(4)]
    rule(channel="email")
    for name in "abcd":
        agent(django_user_model, name, family=name, limit=1)
    queue = list(waiting)

    def assign() -> None:
        inquiry_auto_assign(inquiry=queue.pop())

    assert at_once(assign, 4) == []

    counts = Counter(
        Inquiry.objects.filter(channel="email").values_list("assignee__username", flat=True)
    )
    assert counts == {"a": 1, "b": 1, "c": 1, "d": 1}


# One step of a working day: an inquiry arrives, or one of the agents who
# come and go changes (present or not, a limit of 1–3), or one of their
# inquiries is resolved.
STEPS = st.lists(
    st.one_of(
        st.just(("inquiry",)),
        st.tuples(st.just("presence"), st.integers(0, 1), st.booleans()),
        st.tuples(st.just("limit"), st.integers(0, 1), st.integers(1, 3)),
        st.tuples(st.just("resolve"), st.integers(0, 1)),
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=STEPS)
def test_round_robin_stays_fair_among_agents_always_available(django_user_model, steps):
    with transaction.atomic():
        rule(channel="email")
        steady = [
            agent(django_user_model, f"steady{i}", family=f"s{i}", limit=1000) for i in range(3)
        ]
        coming = [agent(django_user_model, f"coming{i}", family=f"c{i}", limit=2) for i in range(2)]
        customer = factories.inquiry(channel="phone").customer
        for step in steps:
            if step[0] == "inquiry":
                factories.inquiry(channel="email", customer=customer)
            elif step[0] == "presence":
                agent_presence_set(user=coming[step[1]], is_present=step[2], actor=None)
            elif step[0] == "limit":
                AgentAvailability.objects.filter(user=coming[step[1]]).update(open_limit=step[2])
            else:
                held = Inquiry.objects.filter(
                    assignee=coming[step[1]], status=InquiryStatus.OPEN
                ).first()
                if held is not None:
                    inquiry_status_set(inquiry=held, status=InquiryStatus.RESOLVED, actor=None)
        counts = [Inquiry.objects.filter(assignee=user).count() for user in steady]
        assert max(counts) - min(counts) <= 1, counts
        # nobody got more open inquiries than their limit at the time
        for user in coming:
            assert Inquiry.objects.filter(assignee=user, status=InquiryStatus.OPEN).count() <= 3
        transaction.set_rollback(True)


def test_an_agent_marks_themselves_absent_and_present_from_the_inbox(client, colleague):
    client.force_login(colleague)
    page = client.get(INBOX).content.decode()
    assert "対応可能にする" in page and "不在にする" not in page

    response = client.post(PRESENCE, {"present": "1", "next": INBOX + "?q=x"})
    assert response.status_code == 302 and response["Location"] == INBOX + "?q=x"
    assert AgentAvailability.objects.get(user=colleague).is_present is True

    client.post(PRESENCE, {"present": "0", "next": "https://evil.example/"})
    assert AgentAvailability.objects.get(user=colleague).is_present is False
    assert (
        "evil"
        not in client.post(PRESENCE, {"present": "0", "next": "https://evil.example/"})["Location"]
    )


def test_presence_is_refused_to_outsiders_and_to_marketers(client, outsider, django_user_model):
    client.force_login(outsider)
    response = client.post(PRESENCE, {"present": "1"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    marketer = django_user_model.objects.create_user("m", is_staff=True)
    marketer.groups.add(Group.objects.get(name=MARKETER))
    client.force_login(marketer)
    client.post(PRESENCE, {"present": "1"})
    assert not AgentAvailability.objects.exists()


def test_only_the_agent_or_a_manager_sets_their_presence(colleague, owner, django_user_model):
    other = agent(django_user_model, "other", family="other")
    with pytest.raises(PermissionDenied):
        agent_presence_set(user=other, is_present=False, actor=colleague)
    agent_presence_set(user=other, is_present=False, actor=owner)
    assert AgentAvailability.objects.get(user=other).is_present is False


def test_a_manager_keeps_rules_and_limits_in_the_admin(client, owner, colleague):
    client.force_login(owner)
    response = client.post(
        reverse("admin:tickets_assignmentrule_add"),
        {"channel": "line", "mode": "round_robin", "is_active": "on"},
    )
    assert response.status_code == 302
    assert AssignmentRule.objects.get().channel == "line"
    client.force_login(colleague)
    response = client.post(
        reverse("admin:tickets_assignmentrule_add"), {"channel": "email", "mode": "manual"}
    )
    assert response.status_code == 403


def test_an_agents_availability_reads_as_the_agent(django_user_model):
    # The admin names the row by it (its change page, the delete confirmation).
    user = agent(django_user_model, "sato", family="佐藤")

    assert str(AgentAvailability.objects.get(user=user)) == "sato"
