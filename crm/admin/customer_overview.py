"""What the customer page shows besides the profile: the overview in words
(inquiries, consent, timeline) and the rows of the change history."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from django.utils import timezone

from core.roles import staff_name
from crm.event_details import customer_event_details
from crm.models import Customer
from crm.selectors import customer_overview

HISTORY_ROWS = 200


class HistoryRow(NamedTuple):
    at: datetime
    who: str
    action: str
    details: str


def customer_page_overview(customer: Customer):
    """The customer's overview (crm.selectors.customer_overview) with what
    the page shows in words: each inquiry's first-reply state as it is now,
    each timeline event's details."""
    from tickets.models import SlaState
    from tickets.services.sla import sla_state_live

    overview = customer_overview(customer=customer)
    now = timezone.now()
    for inquiry in overview.inquiries.rows:
        state = sla_state_live(inquiry, now)
        inquiry.sla_label = SlaState(state).label if state else ""
    for line in overview.consent:
        if line.state is not None:
            line.state.event.recorded_by = staff_name(line.state.event.actor)  # type: ignore[attr-defined]  # set here for the template
    for event in overview.events.rows:
        event.details = customer_event_details(event)
        event.who = staff_name(event.actor)
    return overview
