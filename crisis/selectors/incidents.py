"""Reads about incidents: the open ones (the banner), their impact and
checklist progress (the list and the page), the timeline, and the
inquiries suggested for linking.

Impact, counted by the database in one aggregate statement per figure:
- inquiries: the inquiries linked to the incident;
- customers: the distinct customers of the linked inquiries, together with
  the customers the incident's sends reached (the Delivery rows of each
  IncidentSend's send that were not skipped: queued, sending, sent, failed
  or unknown all mean the customer was on the way to being told), each
  customer counted once;
- orders: the distinct orders the linked inquiries are about, together
  with the open orders (pending, paid, shipped) a notice to customers with
  affected orders was about: those of the customers it reached (not
  skipped), placed before the notice went out, on the incident's channel
  when it has one. The broadcast (marketing) is about no order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from crisis.models import (
    ChecklistItem,
    Incident,
    IncidentEvent,
    IncidentInquiry,
    IncidentSend,
    IncidentSendKind,
    IncidentStatus,
    PlaybookStep,
)
from crm.models import Order, OrderStatus
from outreach.models import Delivery, DeliveryStatus
from tickets.models import OPEN_STATUSES, Inquiry, ReplyTemplate

# The orders a notice about affected orders was about.
OPEN_ORDER_STATUSES = (OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.SHIPPED)


def _impact_sql() -> tuple[str, str, str]:
    incident = Incident._meta.db_table
    link = IncidentInquiry._meta.db_table
    inquiry = Inquiry._meta.db_table
    send = IncidentSend._meta.db_table
    delivery = Delivery._meta.db_table
    order = Order._meta.db_table
    inquiries = f"SELECT COUNT(*) FROM {link} li WHERE li.incident_id = {incident}.id"
    customers = f"""SELECT COUNT(*) FROM (
            SELECT q.customer_id FROM {link} li JOIN {inquiry} q ON q.id = li.inquiry_id
            WHERE li.incident_id = {incident}.id
            UNION
            SELECT d.customer_id FROM {send} s JOIN {delivery} d ON d.send_id = s.send_id
            WHERE s.incident_id = {incident}.id AND d.status <> %s
        ) reached"""
    orders = f"""SELECT COUNT(*) FROM (
            SELECT q.order_id FROM {link} li JOIN {inquiry} q ON q.id = li.inquiry_id
            WHERE li.incident_id = {incident}.id AND q.order_id IS NOT NULL
            UNION
            SELECT o.id FROM {send} s JOIN {delivery} d ON d.send_id = s.send_id
            JOIN {order} o ON o.customer_id = d.customer_id
            WHERE s.incident_id = {incident}.id AND s.kind = %s AND d.status <> %s
              AND o.status IN (%s, %s, %s) AND o.ordered_at <= s.created_at
              AND ({incident}.channel = '' OR o.channel = {incident}.channel)
        ) affected"""
    return inquiries, customers, orders


def incidents_with_impact(queryset: QuerySet[Incident] | None = None) -> QuerySet[Incident]:
    """Incidents annotated with impact_inquiries, impact_customers,
    impact_orders (see the module's docstring), steps_total, steps_done and
    steps_overdue_count (not done, past due), and the one who opened it."""
    queryset = Incident.objects.all() if queryset is None else queryset
    inquiries, customers, orders = _impact_sql()
    skipped = DeliveryStatus.SKIPPED
    now = timezone.now()
    steps = ChecklistItem.objects.filter(incident=OuterRef("pk")).order_by().values("incident")
    return queryset.select_related("opened_by").annotate(
        impact_inquiries=RawSQL(inquiries, ()),
        impact_customers=RawSQL(customers, (skipped,)),
        impact_orders=RawSQL(orders, (IncidentSendKind.NOTICE, skipped, *OPEN_ORDER_STATUSES)),
        steps_total=_count(steps),
        steps_done=_count(steps.filter(done_at__isnull=False)),
        steps_overdue_count=_count(steps.filter(done_at__isnull=True, due_at__lte=now)),
    )


def _count(steps: QuerySet[ChecklistItem, Any]) -> Coalesce:
    return Coalesce(
        Subquery(steps.annotate(n=Count("pk")).values("n")[:1], output_field=IntegerField()), 0
    )


def incidents_open() -> QuerySet[Incident]:
    """The ongoing incidents, the latest first (crisis_incident_open)."""
    return Incident.objects.filter(status=IncidentStatus.OPEN).order_by("-started_at", "-id")


def incident_banner() -> list[Incident]:
    """What the banner on every admin page says: the ongoing incidents, in
    one query."""
    return list(
        incidents_open().only("pk", "title", "channel", "system", "expected_recovery_at")[:5]
    )


def incident_timeline(incident: Incident) -> QuerySet[IncidentEvent]:
    return incident.events.select_related("actor").order_by("created_at", "id")


def incident_checklist(incident: Incident) -> QuerySet[ChecklistItem]:
    return incident.checklist.select_related("done_by").order_by("position", "id")


def incident_inquiries(incident: Incident) -> QuerySet[Inquiry]:
    """The inquiries linked to the incident, with their customers."""
    return (
        Inquiry.objects.filter(
            Exists(IncidentInquiry.objects.filter(incident=incident, inquiry=OuterRef("pk")))
        )
        .select_related("customer")
        .order_by("-created_at", "-id")
    )


def incident_suggested_inquiries(incident: Incident) -> QuerySet[Inquiry]:
    """Inquiries that came in from the affected channel since the incident
    started, still open, not linked to it yet: what the incident page and
    the inbox offer for linking. None for an incident on no channel, or one
    that is not ongoing."""
    if not incident.channel or incident.status != IncidentStatus.OPEN:
        return Inquiry.objects.none()
    return (
        Inquiry.objects.filter(
            channel=incident.channel,
            created_at__gte=incident.started_at,
            status__in=OPEN_STATUSES,
        )
        .exclude(Exists(IncidentInquiry.objects.filter(incident=incident, inquiry=OuterRef("pk"))))
        .select_related("customer")
        .order_by("-created_at", "-id")
    )


def incidents_for_inquiry(inquiry: Inquiry) -> list[tuple[Incident, bool]]:
    """The ongoing incidents an inquiry belongs to or may belong to, in one
    query: (incident, linked) for those it is linked to, and those on its
    channel that started before it came in (suggested)."""
    linked = IncidentInquiry.objects.filter(incident=OuterRef("pk"), inquiry=inquiry)
    rows = (
        incidents_open()
        .annotate(linked=Exists(linked))
        .filter(Q(linked=True) | Q(channel=inquiry.channel, started_at__lte=inquiry.created_at))
    )
    return [(incident, incident.linked) for incident in rows]


def incident_playbook_templates(incident_kinds: Iterable[str]) -> QuerySet[ReplyTemplate]:
    """The reply templates the playbooks of these incident kinds name: what
    the reply box offers first for an inquiry of an ongoing incident."""
    return ReplyTemplate.objects.filter(
        Exists(
            PlaybookStep.objects.filter(
                reply_template=OuterRef("pk"), playbook__kind__in=list(incident_kinds)
            )
        ),
        is_active=True,
    )
