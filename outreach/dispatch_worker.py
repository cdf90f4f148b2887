"""What every channel's worker shares: the dispatch report, the per-row check again at send time
(consent, claimant flag, address), the recording of outcomes in the ledger and the `_Worker` base
class that renders and sends one claimed batch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import NamedTuple

from django.db import connection
from django.db.models import Q

from core.lookups import id_array
from crm.models import Customer, Order
from outreach import ledger
from outreach.channels import Outcome, Result
from outreach.holdout import holdout_draw, holdout_mark
from outreach.ledger import Claimed
from outreach.models import (
    JourneyStep,
    Send,
    SendKind,
    SkipReason,
)
from outreach.selectors import journey_rows_withdrawn, order_id_of, recipients_checked
from outreach.services import (
    CHANNEL_SKIP_REASONS,
    click_url,
    journey_rows_next_channel,
    send_eligibility_purpose,
    unsubscribe_url,
)
from outreach.templating import (
    links_track,
    template_context,
    template_links,
)


@dataclass
class DispatchReport:
    batches: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    unknown: int = 0
    deferred_until: datetime | None = None
    out_of_time: bool = False


class Recipient(NamedTuple):
    """A recipient as the send-time check sees it, when the message does
    not depend on who gets it (a multicast): no Customer to build."""

    pk: int
    skip_reason: str
    send_address: str | None


class RecipientCheck:
    """The send-time check (outreach.services.recipients_checked) for one
    send, compiled once. Building and compiling the eligibility expression
    (five subqueries) took as long as running it; on PostgreSQL each batch
    runs the same SQL, its customer ids being one array parameter (see
    core.lookups.AnyOf) put in place of a placeholder."""

    PLACEHOLDER = (-1,)  # no customer has this id: where a batch's ids go

    def __init__(self, send: Send, *, customers: bool = True) -> None:
        self.send = send
        self.customers = customers
        self._sql: tuple[str, list, list[int]] | None = None

    def _queryset(self, customer_ids):
        checked = recipients_checked(
            customer_ids=customer_ids,
            channel=self.send.channel,
            purpose=send_eligibility_purpose(self.send),
        )
        return (
            checked if self.customers else checked.values_list("pk", "skip_reason", "send_address")
        )

    def _compiled(self) -> tuple[str, list, list[int]] | None:
        if self._sql is None and connection.vendor == "postgresql":
            sql, params = self._queryset(self.PLACEHOLDER).query.sql_with_params()
            params = list(params)
            slots = [i for i, p in enumerate(params) if p == id_array(self.PLACEHOLDER)]
            self._sql = (sql, params, slots)
        return self._sql if self._sql and self._sql[2] else None

    def __call__(self, customer_ids) -> dict[int, Customer | Recipient]:
        ids = list(set(customer_ids))
        compiled = self._compiled()
        if compiled is None:
            found = self._queryset(ids)
            if self.customers:
                return {customer.pk: customer for customer in found}
            return {pk: Recipient(pk, reason, address) for pk, reason, address in found}
        sql, params, slots = compiled
        params, array = list(params), id_array(ids)
        for slot in slots:
            params[slot] = array
        if self.customers:
            return {customer.pk: customer for customer in Customer.objects.raw(sql, params)}
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return {row[0]: Recipient(*row) for row in cursor.fetchall()}


def _record(
    outcomes: list[tuple[list[Claimed], Outcome]],
    *,
    now: datetime,
    report: DispatchReport,
    lease: ledger.Lease,
) -> bool:
    """Write outcomes to the ledger (a row another worker took meanwhile is
    left to it, unless it was sent). Returns False when the channel is down
    (nothing more should be tried in this dispatch)."""
    sent: list[Claimed] = []
    provider_ids: dict[int, str] = {}
    channel_down = False
    for rows, outcome in outcomes:
        if outcome.result is Result.SENT:
            sent += rows
            for row in rows:
                provider_ids[row.pk] = outcome.provider_id
        elif outcome.result is Result.FAILED:
            ledger.delivery_mark_failed(rows, error=outcome.error, now=now, lease=lease)
            report.failed += len(rows)
        elif outcome.result is Result.RETRY:
            ledger.delivery_mark_retry(
                rows,
                error=outcome.error,
                now=now,
                # A refused reply token: the push follows at once.
                delay=0.0 if outcome.reply_token_refused else outcome.retry_after,
                in_doubt=outcome.in_doubt,
                lease=lease,
            )
            report.retried += len(rows)
            channel_down = channel_down or outcome.retry_after is not None
        elif outcome.result is Result.UNKNOWN:
            ledger.delivery_mark_unknown(rows, error=outcome.error, now=now, lease=lease)
            report.unknown += len(rows)
        else:  # DEFER: never attempted, the attempt is given back
            ledger.delivery_mark_deferred(
                rows, error=outcome.error, now=now, lease=lease, delay=outcome.retry_after
            )
            report.retried += len(rows)
            channel_down = True
    if sent:
        ledger.delivery_mark_sent(sent, now=now, provider_id=provider_ids)
        report.sent += len(sent)
    return not channel_down


class _Worker:
    """What both channels share: the send-time check and the context."""

    batch_size = 100
    retry_key_per: str | None = None
    # False when the message is the same for everyone (a LINE multicast):
    # the check then reads three values per recipient, not a Customer.
    renders_per_customer = True

    def __init__(self, send: Send) -> None:
        self.send = send
        self.content = send.content or {}
        # The template as it was when the send was created (see
        # outreach.services.template_snapshot); older sends read the row.
        snapshot = self.content.get("template")
        self.template = SimpleNamespace(**snapshot) if snapshot else send.template
        self._order_cache: dict[int, Order | None] = {}
        self._check: RecipientCheck | None = None
        self._journey_step: JourneyStep | None = None
        # The template's own links, tracked per delivery (outreach.services.clicks).
        self.links = template_links(snapshot) if snapshot else []

    def track(self, text: str, delivery_id: int | None, *, html: bool = False) -> str:
        """`text` with the template's links turned into this delivery's
        tracked links (none for a preview, which has no delivery)."""
        if not delivery_id or not self.links:
            return text
        return links_track(
            text,
            links=self.links,
            url_for=lambda index: click_url(delivery_id=delivery_id, index=index),
            html=html,
        )

    def recipients(self, rows: list[Claimed]) -> dict[int, Customer | Recipient]:
        if self._check is None:
            self._check = RecipientCheck(self.send, customers=self.renders_per_customer)
        return self._check(row.customer_id for row in rows)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        pass

    def check(self, rows: list[Claimed], *, now: datetime, report: DispatchReport):
        """Skip rows that may no longer be sent; return (row, customer,
        address) for the rest."""
        if self.send.kind == SendKind.JOURNEY:
            rows = self._journey_check(rows, now=now, report=report)
            if not rows:
                return []
        customers = self.recipients(rows)
        ready, skips = [], defaultdict(list)
        for row in rows:
            customer = customers.get(row.customer_id)
            reason = customer.skip_reason if customer else SkipReason.GONE  # type: ignore[union-attr]  # annotated by RecipientCheck
            if reason:
                skips[reason].append(row.pk)
            else:
                ready.append((row, customer, customer.send_address))  # type: ignore[union-attr]  # annotated by RecipientCheck; a row with a customer
        if self._journey_step is not None and self._moves_to_next_channel():
            moved = [pk for reason in CHANNEL_SKIP_REASONS for pk in skips.pop(reason, [])]
            report.skipped += journey_rows_next_channel(step=self._journey_step, ids=moved, now=now)
        for reason, ids in skips.items():
            report.skipped += ledger.delivery_mark_skipped(ids, reason=reason, now=now)
        if self._journey_step is not None and self._journey_step.holdout_percent:
            ready = self._journey_holdout(ready, now=now, report=report)
        return ready

    def _moves_to_next_channel(self) -> bool:
        """A journey step's first channel, in a journey with a next one: a
        person it cannot reach gets the step there instead."""
        step = self._journey_step
        return (
            step is not None
            and step.send_id == self.send.pk
            and bool(step.next_send_id and step.journey.next_channel)
        )

    def _journey_holdout(self, ready: list, *, now: datetime, report: DispatchReport) -> list:
        """A journey step with a holdout keeps a random share of the people
        it could reach now out (skipped, reason holdout: never sent, kept
        for the lift)."""
        assert self._journey_step is not None  # called for a journey step
        held = set(holdout_draw([row.pk for row, *_ in ready], self._journey_step.holdout_percent))
        report.skipped += holdout_mark(list(held), now=now)
        return [item for item in ready if item[0].pk not in held]

    def _journey_check(self, rows: list[Claimed], *, now: datetime, report: DispatchReport):
        """A journey step's rows, when due: withdrawn if their order was
        cancelled or the step's condition no longer holds; the orders of
        the rest read at once for rendering."""
        if self._journey_step is None:
            self._journey_step = JourneyStep.objects.select_related("journey").get(
                Q(send=self.send) | Q(next_send=self.send)
            )
        withdrawn = journey_rows_withdrawn(step=self._journey_step, rows=rows)
        for reason, ids in withdrawn.items():
            report.skipped += ledger.delivery_mark_skipped(ids, reason=reason, now=now)
        gone = {pk for ids in withdrawn.values() for pk in ids}
        rows = [row for row in rows if row.pk not in gone]
        order_ids: set[int] = {order_id_of(row.context_key) for row in rows} - {None}  # type: ignore[assignment]  # mypy keeps None in the set minus None
        order_ids -= set(self._order_cache)
        if order_ids:
            found = {order.pk: order for order in Order.objects.filter(pk__in=order_ids)}
            self._order_cache.update({pk: found.get(pk) for pk in order_ids})
        return rows

    def context(self, customer: Customer | None, context_key: str = "") -> dict:
        order = None
        order_id = self.content.get("order_id") or order_id_of(context_key)
        if order_id:
            if order_id not in self._order_cache:
                self._order_cache[order_id] = Order.objects.filter(pk=order_id).first()
            order = self._order_cache[order_id]
        unsubscribe = ""
        if customer is not None and self.send.is_marketing:
            unsubscribe = unsubscribe_url(customer_id=customer.pk, channel=self.send.channel)
        return template_context(
            customer=customer,
            order=order,
            unsubscribe_url=unsubscribe,
            extra=self.content.get("extra"),
            links=self.content.get("links"),
            incident=self.content.get("incident"),
        )
