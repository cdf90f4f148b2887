"""django-q2 entry points for inquiries: thin, safe to run twice."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from tickets.selectors import staff_notifications_unsent
from tickets.services.notices import staff_notifications_email
from tickets.services.reply_outcomes import reply_outcomes_settle
from tickets.services.sla import sla_watch
from tickets.services.triage import triage_watch


def sla_watch_task() -> dict[str, int]:
    # First what became of the replies in flight: a first reply that did
    # not reach the customer re-opens the clock the watch then moves on.
    reply_outcomes_settle()
    moved = sla_watch()
    # The triage target (状況確認): each inquiry past it warned of once.
    moved["triage_late"] = triage_watch()
    # Every tick, not only when the watch moved something: assignment and
    # approval notices, and retries after a temporary mail failure.
    if staff_notifications_unsent(now=timezone.now()).exists():
        notifications_email_enqueue()
    return moved


def notifications_email_enqueue() -> None:
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task("tickets.tasks.notifications_email_task"))


def notifications_email_task() -> int:
    """Mail staff their new notifications, each once (see
    tickets.services.notices)."""
    return staff_notifications_email()


def imap_poll_task() -> dict | None:
    from tickets.imap import ImapAccount, imap_poll

    account = ImapAccount.from_settings()
    if account is None:
        return None
    return imap_poll(account).__dict__


def line_messages_consume_task() -> int:
    from tickets.services.inbound import line_messages_consume

    return line_messages_consume()
