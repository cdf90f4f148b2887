"""Playbooks and checklists: the seeded playbooks, ticks (who, when, an
event), and the overdue warning to the managers, once, mailed."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from core.roles import MANAGER
from core.schedules import RECURRING_JOBS
from crisis.models import IncidentEventKind, IncidentKind, Playbook
from crisis.services.incidents import incident_close
from crisis.services.playbooks import checklist_step_tick, checklist_step_untick
from crisis.tasks import checklist_overdue_warn_task
from tests.crisis.incident_factories import incident as make_incident
from tests.outreach.conftest import smtp  # noqa: F401
from tickets.models import NotificationKind, StaffNotification
from tickets.reply_templates import template_variables_check
from tickets.tasks import notifications_email_task

pytestmark = pytest.mark.django_db


def test_every_incident_kind_has_a_seeded_japanese_playbook_with_a_30_minute_triage():
    playbooks = {p.kind: p for p in Playbook.objects.prefetch_related("steps")}
    assert set(playbooks) == set(IncidentKind.values)
    for playbook in playbooks.values():
        steps = list(playbook.steps.all())
        assert steps[0].target_minutes == 30
        assert playbook.signs and playbook.contact_flow
    outage = playbooks[IncidentKind.MALL_OUTAGE]
    assert "LINE" in " ".join(step.description for step in outage.steps.all())


def test_the_seeded_outage_reply_template_uses_only_known_variables():
    step = (
        Playbook.objects.get(kind=IncidentKind.MALL_OUTAGE)
        .steps.filter(reply_template__isnull=False)
        .get()
    )
    assert step.reply_template.name == "システム障害のお詫び（復旧見込み）"
    assert "extra.recovery_eta" in template_variables_check(step.reply_template.body)


def test_a_tick_records_who_and_when_with_an_event_and_untick_reopens(owner, colleague):
    incident = make_incident(actor=owner)
    step = incident.checklist.filter(role="agent").first()
    before = timezone.now()
    checklist_step_tick(item=step, actor=colleague)
    step.refresh_from_db()
    assert step.done_by == colleague and step.done_at >= before
    checklist_step_tick(item=step, actor=colleague)  # a second click changes nothing
    checklist_step_untick(item=step, actor=owner)
    step.refresh_from_db()
    assert step.done_at is None and step.done_by is None
    events = list(incident.events.exclude(kind=IncidentEventKind.OPENED))
    assert [(e.kind, e.actor, e.text) for e in events] == [
        (IncidentEventKind.STEP_DONE, colleague, step.title),
        (IncidentEventKind.STEP_UNDONE, owner, step.title),
    ]


def test_an_agent_cannot_tick_a_managers_step(owner, colleague):
    incident = make_incident(actor=owner)
    step = incident.checklist.filter(role="manager").first()
    with pytest.raises(PermissionDenied):
        checklist_step_tick(item=step, actor=colleague)


def test_an_overdue_breach_step_warns_every_manager_once_and_the_mail_goes_out(
    smtp,  # noqa: F811
    owner,
    django_user_model,
):
    # given: two managers with addresses, a breach that started 4 days ago
    owner.email = "tencho@shop.example"
    owner.save()
    deputy = django_user_model.objects.create_user(
        "deputy", email="fuku@shop.example", is_staff=True, last_name="副店長"
    )
    deputy.groups.add(Group.objects.get(name=MANAGER))
    started = timezone.now() - timedelta(days=4)
    breach = make_incident(
        actor=owner, kind=IncidentKind.DATA_BREACH, started_at=started, title="顧客情報の誤送信"
    )
    done = breach.checklist.get(title="被害拡大の防止")
    checklist_step_tick(item=done, actor=owner)
    overdue = list(breach.checklist.filter(done_at__isnull=True, due_at__lte=timezone.now()))
    assert "個人情報保護委員会への速報" in [step.title for step in overdue]
    # when: the job runs twice
    assert checklist_overdue_warn_task() == len(overdue)
    assert checklist_overdue_warn_task() == 0
    # then: one notification per manager per overdue step, none for the done one
    notes = StaffNotification.objects.filter(kind=NotificationKind.STEP_OVERDUE)
    assert notes.count() == 2 * len(overdue)
    assert set(notes.values_list("user", flat=True)) == {owner.pk, deputy.pk}
    assert not notes.filter(key=f"step-{done.pk}").exists()
    assert all(
        step.overdue_warned_at for step in breach.checklist.filter(pk__in=[s.pk for s in overdue])
    )
    # and the mailing path takes incident notices: each manager gets them by mail
    assert notifications_email_task() == 2 * len(overdue)
    subjects = {mail.message["Subject"] for mail in smtp.received}
    assert any("顧客情報の誤送信" in subject for subject in subjects)


def test_a_closed_incidents_steps_warn_no_one(owner):
    incident = make_incident(
        actor=owner, kind=IncidentKind.DATA_BREACH, started_at=timezone.now() - timedelta(days=4)
    )
    incident_close(incident=incident, root_cause="原因", countermeasure="対策", actor=owner)
    assert checklist_overdue_warn_task() == 0


def test_the_overdue_warning_is_a_recurring_job():
    jobs = {job.name: job for job in RECURRING_JOBS}
    assert jobs["crisis.checklist_overdue_warn"].func == "crisis.tasks.checklist_overdue_warn_task"


def test_a_managers_notification_list_names_the_incident_of_an_overdue_step(
    owner, client, django_assert_num_queries
):
    incident = make_incident(
        actor=owner, kind=IncidentKind.DATA_BREACH, started_at=timezone.now() - timedelta(days=4)
    )
    assert checklist_overdue_warn_task() > 1
    client.force_login(owner)
    url = reverse("admin:tickets_staffnotification_changelist")
    client.get(url)
    # session, user, permissions (2), manager?, count, rows with their incident, the banner
    with django_assert_num_queries(8):
        page = client.get(url).content.decode()
    rows = page.split('id="result_list"')[1].split("</table>")[0]  # not the banner
    assert reverse("admin:crisis_incident_change", args=[incident.pk]) in rows
    assert "障害のチェックリストの手順が期限切れ" in rows and incident.title in rows
