"""Staff notifications by email, each mailed once, row by row.

A batch is claimed under a lease (one short transaction), then each mail
goes out on one SMTP connection through outreach's email adapter (the
code that talks to SMTP and classifies its answers) and its row is settled
right after its own answer: sent, refused for good (the reason is kept on
the row, never retried), or retried later with a back-off, and given up
after NOTICE_MAX_ATTEMPTS. One refused address holds up no one else, and
a crash mid-batch leaves the rows already settled settled.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from crm.normalize import email_normalize
from outreach.channels import Outcome, Result
from outreach.channels.email import EmailAdapter, EmailMessage, own_addresses
from tickets.models import NotificationKind, StaffNotification
from tickets.selectors import staff_notifications_unsent

logger = logging.getLogger(__name__)

NOTICE_BATCH = 200
# Longer than a batch takes: a lease that runs out lets another run mail it.
NOTICE_LEASE = timedelta(minutes=10)
NOTICE_MAX_ATTEMPTS = 5
NOTICE_BACKOFF = timedelta(minutes=5)  # doubled after each temporary failure
# Recorded on a notice not mailed because its address is one of our own.
NOT_MAILED_OWN_ADDRESS = "Not mailed: the address is one of our own (mail loop guard)."

_SUBJECTS: dict[str, str] = {
    NotificationKind.AT_RISK: gettext_noop("[%(ref)s] First reply due soon: %(subject)s"),
    NotificationKind.BREACHED: gettext_noop("[%(ref)s] First reply overdue: %(subject)s"),
    NotificationKind.ASSIGNED: gettext_noop("[%(ref)s] Assigned to you: %(subject)s"),
    NotificationKind.TRIAGE_LATE: gettext_noop(
        "[%(ref)s] Not triaged within the target: %(subject)s"
    ),
    NotificationKind.APPROVAL: gettext_noop("[%(ref)s] A reply awaits your approval: %(subject)s"),
    NotificationKind.REPLY_FAILED: gettext_noop(
        "[%(ref)s] Your reply did not reach the customer: %(subject)s"
    ),
    NotificationKind.REPLY_IN_DOUBT: gettext_noop(
        "[%(ref)s] Unknown whether your reply reached the customer: %(subject)s"
    ),
    NotificationKind.NEXT_AT_RISK: gettext_noop("[%(ref)s] Next reply due soon: %(subject)s"),
    NotificationKind.NEXT_BREACHED: gettext_noop("[%(ref)s] Next reply overdue: %(subject)s"),
    NotificationKind.RESOLUTION_AT_RISK: gettext_noop("[%(ref)s] Resolution due soon: %(subject)s"),
    NotificationKind.RESOLUTION_BREACHED: gettext_noop("[%(ref)s] Resolution overdue: %(subject)s"),
}
# The deadline a notice's mail names, by kind (the first reply's otherwise).
_NOTICE_DUE: dict[str, str] = {
    NotificationKind.TRIAGE_LATE: "triage_due_at",
    NotificationKind.NEXT_AT_RISK: "next_reply_due_at",
    NotificationKind.NEXT_BREACHED: "next_reply_due_at",
    NotificationKind.RESOLUTION_AT_RISK: "resolution_due_at",
    NotificationKind.RESOLUTION_BREACHED: "resolution_due_at",
}
INCIDENT_SUBJECTS: dict[str, str] = {
    NotificationKind.STEP_OVERDUE: gettext_noop(
        "[Incident] A checklist step is overdue: %(title)s"
    ),
}


def _incident_notice_message(note: StaffNotification) -> EmailMessage:
    """A notice about an incident (an overdue checklist step): its title and
    page; the page shows the overdue steps in red."""
    incident = note.incident
    assert incident is not None  # a notice about an incident
    subject = _(INCIDENT_SUBJECTS[note.kind]) % {"title": incident.title}
    url = settings.SITE_URL + reverse("admin:crisis_incident_change", args=[incident.pk])
    body = _("%(kind)s\n\n%(title)s\n\n%(url)s\n") % {
        "kind": note.get_kind_display(),
        "title": incident.title,
        "url": url,
    }
    return EmailMessage(
        key=note.pk,
        to=note.user.email,
        subject=subject,
        text=body,
        headers={"Auto-Submitted": "auto-generated"},
    )


def _notice_message(note: StaffNotification) -> EmailMessage:
    if note.inquiry_id is None:
        return _incident_notice_message(note)
    inquiry = note.inquiry
    assert inquiry is not None  # inquiry_id is set
    subject = _(_SUBJECTS[note.kind]) % {"ref": inquiry.reference, "subject": inquiry.subject}
    url = settings.SITE_URL + reverse("admin:tickets_inquiry_change", args=[inquiry.pk])
    due = getattr(inquiry, _NOTICE_DUE.get(note.kind, "first_reply_due_at"))
    body = _("%(kind)s\n\n%(ref)s %(subject)s\nDue: %(due)s\n\n%(url)s\n") % {
        "kind": note.get_kind_display(),
        "ref": inquiry.reference,
        "subject": inquiry.subject,
        "due": timezone.localtime(due).strftime("%Y-%m-%d %H:%M") if due else "-",
        "url": url,
    }
    # RFC 3834: an automatic message, which no auto-responder answers
    headers = {"Auto-Submitted": "auto-generated"}
    return EmailMessage(
        key=note.pk, to=note.user.email, subject=subject, text=body, headers=headers
    )


def _claim(now: datetime) -> tuple[list[StaffNotification], datetime]:
    """The next batch of unsent notifications, held until the lease ends."""
    lease = now + NOTICE_LEASE
    with transaction.atomic():
        ids = list(
            staff_notifications_unsent(now=now)
            .select_for_update(skip_locked=True)
            .order_by("created_at")
            .values_list("pk", flat=True)[:NOTICE_BATCH]
        )
        StaffNotification.objects.filter(pk__in=ids).update(email_next_attempt_at=lease)
    notes = StaffNotification.objects.filter(pk__in=ids).select_related(
        "user", "inquiry", "incident"
    )
    return list(notes.order_by("created_at", "pk")), lease


def _settle(note: StaffNotification, outcome: Outcome, *, lease: datetime, now: datetime) -> None:
    """Write one mail's outcome on its row (if this run still holds it)."""
    attempts = note.email_attempts
    if outcome.result is Result.SENT:
        fields: dict[str, Any] = {
            "emailed_at": now,
            "email_next_attempt_at": None,
            "email_error": "",
        }
    elif outcome.result is Result.DEFER:  # never attempted: no attempt used
        fields = {"email_next_attempt_at": now + NOTICE_BACKOFF, "email_error": outcome.error}
    else:
        attempts += 1
        fields = {"email_attempts": attempts, "email_error": outcome.error[:2000]}
        if outcome.result is Result.RETRY and attempts < NOTICE_MAX_ATTEMPTS:
            fields["email_next_attempt_at"] = now + NOTICE_BACKOFF * 2 ** (attempts - 1)
        else:
            logger.warning("staff notification %s not mailed: %s", note.pk, outcome.error)
            fields.update(email_failed_at=now, email_next_attempt_at=None)
    StaffNotification.objects.filter(pk=note.pk, email_next_attempt_at=lease).update(**fields)


def staff_notifications_email(*, now: datetime | None = None) -> int:
    """Mail a batch of unsent staff notifications; returns how many went
    out. A notification for a user without an address stays in the admin
    only (it is settled without a mail); one for an address of our own is
    not mailed either, and its row says so."""
    now = now or timezone.now()
    notes, lease = _claim(now)
    addresses = {note.pk: email_normalize(note.user.email) for note in notes}
    without_address = [pk for pk, address in addresses.items() if not address]
    StaffNotification.objects.filter(pk__in=without_address, email_next_attempt_at=lease).update(
        emailed_at=now, email_next_attempt_at=None
    )
    # Nothing automatic goes to one of our own addresses (it could loop).
    ours = own_addresses()
    to_ours = [pk for pk, address in addresses.items() if address in ours]
    StaffNotification.objects.filter(pk__in=to_ours, email_next_attempt_at=lease).update(
        email_failed_at=now, email_next_attempt_at=None, email_error=NOT_MAILED_OWN_ADDRESS
    )
    by_id = {note.pk: note for note in notes if note.pk not in {*without_address, *to_ours}}
    messages = []
    with translation.override(settings.LANGUAGE_CODE):
        for note in by_id.values():
            try:
                messages.append(_notice_message(note))
            except Exception as exc:  # one notice that cannot be written holds up no other
                logger.exception("staff notification %s: writing the mail failed", note.pk)
                failed = Outcome(Result.FAILED, error=f"Writing the mail failed: {exc}")
                _settle(note, failed, lease=lease, now=now)
    sent = 0
    with EmailAdapter() as adapter:
        for key, outcome in adapter.send(messages):
            _settle(by_id[key], outcome, lease=lease, now=now)
            sent += outcome.result is Result.SENT
    logger.info("staff notifications mailed: %d of %d", sent, len(messages))
    return sent
