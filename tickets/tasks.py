"""django-q2 entry points for inquiries: thin, safe to run twice."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from tickets.models import NotificationKind, StaffNotification
from tickets.services.sla import sla_watch

logger = logging.getLogger(__name__)
NOTIFY_BATCH = 200


def sla_watch_task() -> dict[str, int]:
    return sla_watch()


def notifications_email_enqueue() -> None:
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task("tickets.tasks.notifications_email_task"))


_SUBJECTS = {
    NotificationKind.AT_RISK: gettext_noop("[%(ref)s] First reply due soon: %(subject)s"),
    NotificationKind.BREACHED: gettext_noop("[%(ref)s] First reply overdue: %(subject)s"),
    NotificationKind.ASSIGNED: gettext_noop("[%(ref)s] Assigned to you: %(subject)s"),
    NotificationKind.APPROVAL: gettext_noop("[%(ref)s] A reply awaits your approval: %(subject)s"),
}


def notifications_email_task() -> int:
    """Mail staff their new notifications (each once). A notification for a
    user without an address stays in the admin only."""
    sent = 0
    with translation.override(settings.LANGUAGE_CODE), transaction.atomic():
        batch = list(
            StaffNotification.objects.filter(emailed_at__isnull=True)
            .select_related("user", "inquiry")
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("created_at")[:NOTIFY_BATCH]
        )
        if not batch:
            return 0
        messages = []
        for note in batch:
            if not note.user.email:
                continue
            inquiry = note.inquiry
            subject = _(_SUBJECTS[note.kind]) % {
                "ref": inquiry.reference,
                "subject": inquiry.subject,
            }
            url = settings.SITE_URL + reverse("admin:tickets_inquiry_change", args=[inquiry.pk])
            body = _("%(kind)s\n\n%(ref)s %(subject)s\nDue: %(due)s\n\n%(url)s\n") % {
                "kind": note.get_kind_display(),
                "ref": inquiry.reference,
                "subject": inquiry.subject,
                "due": timezone.localtime(inquiry.first_reply_due_at).strftime("%Y-%m-%d %H:%M")
                if inquiry.first_reply_due_at
                else "-",
                "url": url,
            }
            messages.append(EmailMessage(subject, body, to=[note.user.email]))
        if messages:
            sent = get_connection().send_messages(messages) or 0
        StaffNotification.objects.filter(pk__in=[n.pk for n in batch]).update(
            emailed_at=timezone.now()
        )
    logger.info("staff notifications mailed: %d", sent)
    return sent


def imap_poll_task() -> dict | None:
    from tickets.imap import ImapAccount, imap_poll

    account = ImapAccount.from_settings()
    if account is None:
        return None
    return imap_poll(account).__dict__


def line_messages_consume_task() -> int:
    from tickets.services.inbound import line_messages_consume

    return line_messages_consume()
