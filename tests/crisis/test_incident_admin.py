"""The incident and playbook screens, the banner on every admin page, and
the suggestions and bulk link on the inquiry page and in the inbox."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.db.models import Case, When
from django.urls import reverse
from django.utils import timezone

from core.roles import MARKETER
from crisis.models import (
    ChecklistItem,
    Incident,
    IncidentEventKind,
    IncidentInquiry,
    IncidentKind,
    Playbook,
)
from crisis.services.incidents import incident_inquiries_link, incident_update
from crisis.services.playbooks import checklist_step_tick
from tests.crisis.incident_factories import incident as make_incident
from tests.tickets import factories
from tickets.models import ReplyTemplate
from tickets.reply_templates import reply_templates_ensure

pytestmark = pytest.mark.django_db


def text_of(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def template_options(page: str) -> list[str]:
    """The names in the reply-template picker, in order."""
    select = page.split('name="pick-template"')[1].split("</select>")[0]
    return re.findall(r'<option value="\d+"[^>]*>([^<]+)</option>', select)


def test_the_banner_tells_an_agent_on_any_admin_page_with_the_expected_recovery(
    owner, colleague, client
):
    expected = timezone.now().replace(second=0, microsecond=0) + timedelta(hours=2)
    incident = make_incident(actor=owner, expected_recovery_at=expected)
    client.force_login(colleague)
    for url in (reverse("admin:index"), reverse("admin:tickets_inquiry_changelist")):
        page = text_of(client.get(url))
        assert "対応中の障害" in page and incident.title in page
        assert "楽天市場" in page
        assert timezone.localtime(expected).strftime("%-m/%-d %H:%M") in page
        assert reverse("admin:crisis_incident_change", args=[incident.pk]) in page


def test_no_banner_once_the_incident_has_recovered(owner, colleague, client):
    from crisis.services.incidents import incident_recover

    incident = make_incident(actor=owner)
    incident_recover(incident=incident, actor=owner)
    client.force_login(colleague)
    assert incident.title not in text_of(client.get(reverse("admin:index")))


def test_a_manager_opens_an_incident_from_the_add_form_and_gets_its_checklist(owner, client):
    client.force_login(owner)
    started = timezone.localtime().replace(second=0, microsecond=0)
    response = client.post(
        reverse("admin:crisis_incident_add"),
        {
            "kind": IncidentKind.MALL_OUTAGE,
            "title": "Amazon 注文取り込み停止",
            "channel": "amazon",
            "system": "",
            "started_at_0": started.strftime("%Y-%m-%d"),
            "started_at_1": started.strftime("%H:%M:%S"),
            "expected_recovery_at_0": "",
            "expected_recovery_at_1": "",
        },
    )
    assert response.status_code == 302, text_of(response)[:3000]
    incident = Incident.objects.get(title="Amazon 注文取り込み停止")
    assert incident.checklist.count() == Playbook.objects.get(kind="mall_outage").steps.count()
    assert incident.events.get().kind == IncidentEventKind.OPENED


def test_an_agent_cannot_open_an_incident(colleague, client):
    client.force_login(colleague)
    assert client.get(reverse("admin:crisis_incident_add")).status_code == 403


def test_an_agent_ticks_their_step_on_the_page_but_not_a_managers(owner, colleague, client):
    incident = make_incident(actor=owner)
    mine = incident.checklist.filter(role="agent").first()
    managers = incident.checklist.filter(role="manager").first()
    client.force_login(colleague)
    for step in (mine, managers):
        client.post(
            reverse("admin:crisis_incident_step", args=[incident.pk, step.pk, "tick"]),
        )
    mine.refresh_from_db()
    managers.refresh_from_db()
    assert mine.done_by == colleague and mine.done_at is not None
    assert managers.done_at is None


def test_the_page_shows_overdue_steps_in_red_the_timeline_and_the_impact(owner, client):
    incident = make_incident(actor=owner, started_at=timezone.now() - timedelta(hours=1))
    incident_update(incident=incident, text="モール側の告知を確認", actor=owner)
    client.force_login(owner)
    page = text_of(client.get(reverse("admin:crisis_incident_change", args=[incident.pk])))
    triage = incident.checklist.get(position=1)
    assert re.search(r'<tr class="step-overdue"> <td><strong>1\. ' + re.escape(triage.title), page)
    assert "モール側の告知を確認" in page and "店長" in page


def test_the_page_offers_the_new_inquiries_and_links_them_all_in_one_action(owner, client):
    incident = make_incident(actor=owner, started_at=timezone.now())
    new = [factories.inquiry(channel="rakuten") for _ in range(3)]
    client.force_login(owner)
    page = text_of(client.get(reverse("admin:crisis_incident_change", args=[incident.pk])))
    assert all(inquiry.reference in page for inquiry in new)
    assert "まとめて関連付ける" in page
    client.post(
        reverse("admin:crisis_incident_link", args=[incident.pk]),
        {"inquiry": [inquiry.pk for inquiry in new]},
    )
    assert IncidentInquiry.objects.filter(incident=incident).count() == 3
    assert incident.events.filter(kind=IncidentEventKind.INQUIRIES_LINKED).count() == 1


def test_the_inbox_lists_the_suggestions_and_links_the_chosen_ones_in_one_action(
    owner, colleague, client
):
    incident = make_incident(actor=owner, started_at=timezone.now())
    new = [factories.inquiry(channel="rakuten") for _ in range(3)]
    other = factories.inquiry(channel="amazon")
    client.force_login(colleague)
    url = reverse("admin:tickets_inquiry_changelist") + f"?incident_suggest={incident.pk}"
    page = text_of(client.get(url))
    assert all(inquiry.reference in page for inquiry in new)
    assert other.reference not in page
    response = client.post(
        url,
        {"action": "link_to_incident", ACTION_CHECKBOX_NAME: [inquiry.pk for inquiry in new]},
    )
    assert response.status_code == 302
    assert set(IncidentInquiry.objects.values_list("inquiry_id", flat=True)) == {
        inquiry.pk for inquiry in new
    }
    assert incident.events.filter(kind=IncidentEventKind.INQUIRIES_LINKED).count() == 1


def test_the_inquiry_page_suggests_the_incident_and_offers_its_template_first(
    owner, colleague, client
):
    reply_templates_ensure()  # the other seeded templates, some before it by name
    expected = timezone.now().replace(second=0, microsecond=0) + timedelta(hours=3)
    incident = make_incident(actor=owner, started_at=timezone.now(), expected_recovery_at=expected)
    inquiry = factories.inquiry(channel="rakuten", subject="カートに入りません")
    client.force_login(colleague)
    url = reverse("admin:tickets_inquiry_change", args=[inquiry.pk])
    page = text_of(client.get(url))
    assert incident.title in page and "この障害に関連付ける" in page
    assert template_options(page)[0] == "システム障害のお詫び（復旧見込み）"
    local = timezone.localtime(expected)
    assert f'value="{local:%Y-%m-%d}"' in page and f'value="{local:%H:%M}' in page
    # linking from the page
    client.post(
        reverse("admin:crisis_incident_link", args=[incident.pk]),
        {"inquiry": inquiry.pk, "next": url},
    )
    assert IncidentInquiry.objects.filter(incident=incident, inquiry=inquiry).exists()
    assert "に関連付けられています" in text_of(client.get(url))


def test_without_an_incident_the_template_picker_keeps_its_order(colleague, client):
    reply_templates_ensure()
    inquiry = factories.inquiry(channel="rakuten")
    client.force_login(colleague)
    page = text_of(client.get(reverse("admin:tickets_inquiry_change", args=[inquiry.pk])))
    # the category's templates first (the inquiry has none), then by name
    names = ReplyTemplate.objects.filter(is_active=True).order_by(
        Case(When(category__isnull=True, then=0), default=1), "name"
    )
    assert template_options(page) == list(names.values_list("name", flat=True))


def _busy_incident(owner, n: int) -> Incident:
    incident = make_incident(actor=owner, started_at=timezone.now() - timedelta(hours=1))
    inquiries = [factories.inquiry(channel="rakuten") for _ in range(n)]
    incident_inquiries_link(incident=incident, inquiries=inquiries[: n // 2], actor=owner)
    for step in ChecklistItem.objects.filter(incident=incident)[:n]:
        checklist_step_tick(item=step, actor=owner)
    for number in range(n):
        incident_update(incident=incident, text=f"経過 {number}", actor=owner)
    return incident


def test_incident_list_query_count(owner, client, django_assert_num_queries):
    for _ in range(4):
        _busy_incident(owner, 3)
    client.force_login(owner)
    url = reverse("admin:crisis_incident_changelist")
    client.get(url)
    with django_assert_num_queries(7):
        response = client.get(url)
    assert response.status_code == 200


def test_incident_page_query_count(owner, client, django_assert_num_queries):
    small, large = _busy_incident(owner, 2), _busy_incident(owner, 6)
    client.force_login(owner)
    client.get(reverse("admin:crisis_incident_change", args=[small.pk]))
    # session, user, the banner, the incident, its checklist, timeline,
    # linked and suggested inquiries, impact, permissions, and the broadcast
    # panel (its sends with their progress, the templates to choose from)
    for incident in (small, large):
        url = reverse("admin:crisis_incident_change", args=[incident.pk])
        with django_assert_num_queries(15):
            response = client.get(url)
        assert response.status_code == 200


def test_playbook_list_and_page_query_counts(owner, client, django_assert_num_queries):
    client.force_login(owner)
    playbook = Playbook.objects.get(kind=IncidentKind.DATA_BREACH)
    list_url = reverse("admin:crisis_playbook_changelist")
    page_url = reverse("admin:crisis_playbook_change", args=[playbook.pk])
    client.get(list_url)
    with django_assert_num_queries(7):
        assert client.get(list_url).status_code == 200
    with django_assert_num_queries(9):
        assert client.get(page_url).status_code == 200


@pytest.fixture
def marketer(django_user_model):
    user = django_user_model.objects.create_user("marketer", is_staff=True, last_name="高橋")
    user.groups.add(Group.objects.get(name=MARKETER))
    return user


def test_an_outsider_and_a_marketer_cannot_update_tick_or_link(owner, marketer, outsider, client):
    incident = make_incident(actor=owner, started_at=timezone.now())
    inquiry = factories.inquiry(channel="rakuten")
    step = incident.checklist.filter(role="marketer").first()
    posts = [
        (reverse("admin:crisis_incident_update", args=[incident.pk]), {"text": "書き込み"}),
        (reverse("admin:crisis_incident_step", args=[incident.pk, step.pk, "tick"]), {}),
        (reverse("admin:crisis_incident_link", args=[incident.pk]), {"inquiry": inquiry.pk}),
    ]
    client.force_login(outsider)
    for url, data in posts:
        assert client.post(url, data).url.startswith(reverse("admin:login"))
    client.force_login(marketer)
    for url, data in posts:
        assert client.post(url, data).status_code == 403
    page = text_of(client.get(reverse("admin:crisis_incident_change", args=[incident.pk])))
    assert incident.title in page and "経過に追加" not in page
    assert incident.events.count() == 1  # OPENED only
    assert not IncidentInquiry.objects.exists()
    step.refresh_from_db()
    assert step.done_at is None


def test_a_manager_corrects_the_expected_recovery_on_the_change_form(owner, client):
    incident = make_incident(actor=owner)
    later = timezone.localtime(incident.expected_recovery_at + timedelta(hours=1))
    client.force_login(owner)
    response = client.post(
        reverse("admin:crisis_incident_change", args=[incident.pk]),
        {
            "title": incident.title,
            "channel": incident.channel,
            "system": "",
            "expected_recovery_at_0": later.strftime("%Y-%m-%d"),
            "expected_recovery_at_1": later.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302, text_of(response)[:2000]
    incident.refresh_from_db()
    assert incident.expected_recovery_at == later.replace(microsecond=0)
    edited = incident.events.get(kind=IncidentEventKind.EDITED)
    assert list(edited.data) == ["expected_recovery_at"] and edited.actor == owner
