"""django-q2 entry points of the crisis app: thin, safe to run twice."""

from __future__ import annotations


def checklist_overdue_warn_task() -> int:
    """Warn the managers of overdue checklist steps, once each (see
    crisis.services.playbooks.checklist_overdue_warn); the SLA tick mails
    the notifications."""
    from crisis.services.playbooks import checklist_overdue_warn

    return checklist_overdue_warn()
