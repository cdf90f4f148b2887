"""The delivery worker: claim a batch, check again, render, send, record.

`send_dispatch` works one send for at most DISPATCH_TIME_BUDGET_SECONDS,
batch by batch. Each claim takes rows only while the send is sending, so
pause and cancel hold at the next batch. Consent, claimant flag and address are
checked again for every row at send time; marketing waits out quiet hours.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape

from core.lookups import id_array
from crm.models import Customer, Order
from outreach import ledger, rate
from outreach.channels import Outcome, Result
from outreach.channels.email import (
    EmailAdapter,
    EmailMessage,
    bounce_address_for,
    message_id_for,
)
from outreach.channels.line import MULTICAST_MAX_RECIPIENTS, LineAdapter
from outreach.holdout import holdout_draw, holdout_mark
from outreach.ledger import Claimed
from outreach.line_texts import line_length_problem
from outreach.models import (
    Delivery,
    DeliveryChannel,
    DeliveryStatus,
    JourneyStep,
    MessageChannel,
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
    send_finish_if_done,
    unsubscribe_url,
)
from outreach.templating import (
    TEST_MARK,
    links_track,
    render_email,
    render_line,
    shop_context,
    template_context,
    template_links,
)

logger = logging.getLogger(__name__)


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


def quiet_hours_end(now: datetime) -> datetime | None:
    """If `now` is inside the marketing quiet hours (Asia/Tokyo), when they
    end; otherwise None. Default 21:00–09:00."""
    start, end = settings.QUIET_HOURS_START, settings.QUIET_HOURS_END
    if start == end:
        return None
    local = timezone.localtime(now)
    hour = local.hour
    quiet = (hour >= start or hour < end) if start > end else (start <= hour < end)
    if not quiet:
        return None
    ends = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return ends


def _defer_for_quiet_hours(send: Send, until: datetime) -> int:
    """Queued rows wait until `until`, while the send is sending: one
    UPDATE (the send's status tested in it, so a pause or cancel committed
    meanwhile is not overtaken)."""
    return (
        Delivery.objects.filter(ledger.while_sending(send), send=send, status=DeliveryStatus.QUEUED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=until))
        .update(next_attempt_at=until, updated_at=timezone.now())
    )


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


class EmailWorker(_Worker):
    # Where each recipient's unsubscribe link goes in the footer rendered
    # once per worker: HTML escaping leaves it as it is.
    UNSUBSCRIBE_MARK = "madoguchi-unsubscribe-url-3f9c2e"

    def __init__(self, send: Send) -> None:
        super().__init__(send)
        self.batch_size = settings.EMAIL_BATCH_SIZE
        self.adapter = EmailAdapter()
        self._footers: tuple[str, str] | None = None

    def close(self) -> None:
        self.adapter.close()

    def footers(self, unsubscribe_url: str) -> tuple[str, str]:
        """The legal footer of marketing mail (text, HTML) for one link. The
        templates are rendered once per worker (the same shop, language and
        wording for every recipient); the link, escaped as the template
        would have escaped it, is put in afterwards."""
        if self._footers is None:
            footer = {"shop": shop_context(), "unsubscribe_url": self.UNSUBSCRIBE_MARK}
            self._footers = (
                render_to_string("outreach/email_footer.txt", footer),
                render_to_string("outreach/email_footer.html", footer),
            )
        link = escape(unsubscribe_url)
        text, html = self._footers
        return text.replace(self.UNSUBSCRIBE_MARK, link), html.replace(self.UNSUBSCRIBE_MARK, link)

    def message(self, row: Delivery, customer: Customer, address: str) -> EmailMessage:
        context = self.context(customer, row.context_key)
        if self.template is not None:
            rendered = render_email(
                subject=self.template.subject,
                body_text=self.template.body_text,
                body_html=self.template.body_html,
                context=context,
            )
            subject = rendered.subject
            text = self.track(rendered.text, row.pk)
            html = self.track(rendered.html, row.pk, html=True)
            if self.send.kind == SendKind.TEST:
                subject = TEST_MARK + subject
        else:  # literal content (an agent's reply): sent as written
            subject = self.content.get("subject", "")
            text = self.content.get("body_text", "")
            html = self.content.get("body_html", "")
        headers = {"X-Madoguchi-Delivery": str(row.pk)}
        headers.update(self.content.get("headers") or {})
        if self.send.is_marketing:
            footer_text, footer_html = self.footers(context["unsubscribe_url"])
            text = text.rstrip() + "\n\n" + footer_text
            if html:
                html = html + footer_html
            headers["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            headers["Precedence"] = "bulk"
            headers["Auto-Submitted"] = "auto-generated"
        return EmailMessage(
            key=row.pk,
            to=address,
            subject=subject,
            text=text,
            html=html,
            message_id=message_id_for(send_id=self.send.pk, delivery_id=row.pk),
            headers=headers,
            reply_to=self.content.get("reply_to", ""),
            return_path=bounce_address_for(delivery_id=row.pk),
        )

    def process(
        self, rows: list[Claimed], *, now: datetime, report: DispatchReport, lease: ledger.Lease
    ) -> bool:
        ready = self.check(rows, now=now, report=report)
        if not ready:
            return True
        messages, outcomes = [], []
        for row, customer, address in ready:
            try:
                messages.append(self.message(row, customer, address))
            except Exception as exc:  # a template that fails for this customer
                logger.exception("delivery %s: rendering failed", row.pk)
                outcomes.append(([row], Outcome(Result.FAILED, error=f"Rendering failed: {exc}")))
        by_id = {row.pk: row for row, _customer, _address in ready}
        if messages:
            rate.rate_acquire("email", rate_per_second=settings.EMAIL_RATE, tokens=len(messages))
            try:
                with ledger.delivery_sent_writer() as mark_sent:
                    for key, outcome in self.adapter.send(messages, held=lease.held):
                        if outcome.result is Result.SENT:
                            # Recorded before the next message goes out: a crash
                            # repeats at most the one in progress on this connection.
                            mark_sent(key, now=timezone.now(), provider_id=outcome.provider_id)
                            report.sent += 1
                        else:
                            outcomes.append(([by_id[key]], outcome))
            except Exception:
                # What the server took is recorded already (never sent
                # again), the other outcomes now; the rest keeps its lease.
                _record(outcomes, now=timezone.now(), report=report, lease=lease)
                raise
        return _record(outcomes, now=timezone.now(), report=report, lease=lease)


REPLY_IN_DOUBT = "The reply may have reached the customer: it is not sent again."
REPLY_TAKEN_OVER = "The worker stopped while sending the reply. " + REPLY_IN_DOUBT


# The shared rate buckets of the LINE channel: a 429 pauses them all.
LINE_BUCKETS = ("line_push", "line_multicast")


class LineWorker(_Worker):
    def __init__(self, send: Send) -> None:
        super().__init__(send)
        # A template with links is personal too: each recipient's links
        # are their own (tracked clicks).
        personal = self.template is None or self.template.is_personal or bool(self.links)
        # Identical content goes by multicast (one retry key per request),
        # personal content by push (one key per recipient).
        self.retry_key_per = "row" if personal else "batch"
        self.renders_per_customer = personal
        self.batch_size = 50 if personal else MULTICAST_MAX_RECIPIENTS
        self._adapter: LineAdapter | None = None

    @property
    def adapter(self) -> LineAdapter:
        """Made on first use: rendering alone (a preview) needs no client."""
        if self._adapter is None:
            self._adapter = LineAdapter()
        return self._adapter

    def close(self) -> None:
        if self._adapter is not None:
            self._adapter.__exit__(None, None, None)

    def texts(
        self, customer: Customer | None, delivery_id: int | None = None, context_key: str = ""
    ) -> list[str]:
        if self.template is None:
            return list(self.content.get("line_messages") or [])
        texts = render_line(
            messages=self.template.line_messages, context=self.context(customer, context_key)
        )
        texts = [self.track(text, delivery_id) for text in texts]
        if self.send.kind == SendKind.TEST and texts:
            texts[0] = TEST_MARK + texts[0]
        return texts

    def _replies_taken_over(self, rows: list[Claimed]) -> set[int]:
        """Rows of a reply taken over from a worker that stopped during
        their first attempt, the reply (claimed again at their second
        attempt, in doubt)."""
        second = [row.pk for row in rows if row.attempts == 2]
        if not self.content.get("reply_token") or not second:
            return set()
        return set(
            Delivery.objects.filter(pk__any_of=second, in_doubt=True).values_list("pk", flat=True)
        )

    def _reply(self, row: Claimed, *, texts: list[str], taken_over: bool) -> Outcome | None:
        """An answer to a customer's LINE message (a send with the event's
        reply token) goes first by the free Reply API, alone in the row's
        first attempt. The Reply API takes no retry key: a reply whose
        outcome is not known (no answer, a 5xx, a worker that stopped
        during it) is never sent again, by reply or by push; it is unknown,
        for the agent to see. Only LINE's refusal of the token (invalid,
        used or expired: nothing went out) sends the message by push, at
        the next attempt, under the row's retry key. None: this attempt is
        a push."""
        token = self.content.get("reply_token")
        if not token or row.attempts > 2:
            return None
        if row.attempts == 2:
            return Outcome(Result.UNKNOWN, error=REPLY_TAKEN_OVER) if taken_over else None
        outcome = self.adapter.reply(reply_token=token, texts=texts)
        if outcome.reply_token_refused:
            return Outcome(
                Result.RETRY, error=f"{outcome.error}: sending by push", reply_token_refused=True
            )
        if outcome.result is Result.RETRY and outcome.in_doubt:
            return Outcome(Result.UNKNOWN, error=f"{outcome.error}. {REPLY_IN_DOUBT}")
        return outcome

    def process(
        self, rows: list[Claimed], *, now: datetime, report: DispatchReport, lease: ledger.Lease
    ) -> bool:
        # A row that already carried its retry key when claimed belongs to an
        # earlier request whose outcome is unknown: it is re-sent as it was,
        # with the same key and recipients, not checked again.
        in_doubt = [row for row in rows if row.attempts > 1 and row.retry_key is not None]
        fresh = [row for row in rows if row not in in_doubt]
        ready: list[Any] = self.check(fresh, now=now, report=report) if fresh else []
        if in_doubt:
            customers = self.recipients(in_doubt)
            ready += [
                (row, customers[row.customer_id], customers[row.customer_id].send_address)  # type: ignore[union-attr]  # annotated by RecipientCheck
                for row in in_doubt
                if row.customer_id in customers
            ]
        if not ready:
            return True
        if self.retry_key_per == "batch":
            group = [row for row, _customer, _address in ready]
            texts = self.texts(None)
            problem = line_length_problem(texts)
            if problem:  # LINE would refuse it: no request
                outcome = Outcome(Result.FAILED, error=problem)
            elif paused := rate.rate_acquire(
                "line_multicast", rate_per_second=settings.LINE_MULTICAST_RATE, now=lease.now_fn()
            ):
                outcome = _deferred_until(paused, lease)
            else:
                outcome = self.adapter.multicast(
                    to=[address for _row, _customer, address in ready],
                    texts=texts,
                    retry_key=group[0].retry_key,
                )
                self._pause_on_429(outcome, lease)
            return _record([(group, outcome)], now=timezone.now(), report=report, lease=lease)
        outcomes = []
        taken_over = self._replies_taken_over([row for row, _customer, _address in ready])
        paused = rate.rate_acquire(
            "line_push",
            rate_per_second=settings.LINE_PUSH_RATE,
            tokens=len(ready),
            now=lease.now_fn(),
        )
        for index, (row, customer, address) in enumerate(ready):
            if paused is not None:
                break
            if not lease.held(row.pk):
                continue  # another worker has it now
            texts = self.texts(customer, row.pk, row.context_key)
            problem = line_length_problem(texts)
            if problem:  # LINE would refuse it: no request
                outcomes.append(([row], Outcome(Result.FAILED, error=problem)))
                continue
            if index:  # asked before each request: another worker's 429 holds this one too
                paused = rate.rate_paused_until(LINE_BUCKETS, now=lease.now_fn())
                if paused is not None:
                    break
            outcome = self._reply(
                row, texts=texts, taken_over=row.pk in taken_over
            ) or self.adapter.push(
                to=address,
                texts=texts,
                retry_key=row.retry_key,
                quick_reply=self.content.get("line_quick_reply"),
            )
            outcomes.append(([row], outcome))
            paused = self._pause_on_429(outcome, lease)
            if paused is not None:
                break  # rate limited: the rest of the batch waits with the channel
        done = {row.pk for rows_, _outcome in outcomes for row in rows_}
        rest = [row for row, _customer, _address in ready if row.pk not in done]
        if rest:
            deferred = (
                _deferred_until(paused, lease)
                if paused is not None
                else Outcome(Result.DEFER, error=LINE_RATE_DEFERRED)
            )
            outcomes.append((rest, deferred))
        return _record(outcomes, now=timezone.now(), report=report, lease=lease)

    @staticmethod
    def _pause_on_429(outcome: Outcome, lease: ledger.Lease) -> datetime | None:
        """LINE answered 429: the whole channel waits (Retry-After, else the
        adapter's default), every worker, through its shared buckets."""
        if outcome.result is not Result.RETRY or outcome.retry_after is None:
            return None
        until = lease.now_fn() + timedelta(seconds=outcome.retry_after)
        rate.rate_pause(LINE_BUCKETS, until=until)
        return until


LINE_RATE_DEFERRED = "LINE rate limit: deferred"


def _deferred_until(until: datetime, lease: ledger.Lease) -> Outcome:
    """Not attempted: the channel is paused until `until`."""
    wait = max((until - lease.now_fn()).total_seconds(), 0.0)
    return Outcome(Result.DEFER, error=LINE_RATE_DEFERRED, retry_after=wait)


def _worker_for(send: Send) -> _Worker:
    return EmailWorker(send) if send.channel == MessageChannel.EMAIL else LineWorker(send)


def send_dispatch(
    *,
    send_id: int,
    now_fn: Callable[[], datetime] = timezone.now,
    time_budget: float | None = None,
) -> DispatchReport:
    """Work one send until it is done, paused, cancelled, deferred, its
    channel is down, or the time budget is used up."""
    report = DispatchReport()
    send = Send.objects.select_related("template").get(pk=send_id)
    if send.channel == DeliveryChannel.DM:
        # The export of its address list is the send (outreach.services.dm).
        logger.warning("send %s is a postal DM: the worker sends nothing", send.pk)
        return report
    deadline = time.monotonic() + (time_budget or settings.DISPATCH_TIME_BUDGET_SECONDS)
    with _worker_for(send) as worker:
        while True:
            if time.monotonic() >= deadline:
                report.out_of_time = True
                break
            now = now_fn()
            until = quiet_hours_end(now) if send.respect_quiet_hours else None
            if until is not None:
                _defer_for_quiet_hours(send, until)
                report.deferred_until = until
                break
            # Claims only while the send is sending: a pause or cancel holds
            # at the next batch (no claim, so the loop ends).
            rows = ledger.delivery_claim_batch(
                send=send, limit=worker.batch_size, now=now, retry_key_per=worker.retry_key_per
            )
            if not rows:
                break
            report.batches += 1
            lease = ledger.Lease(rows, now_fn=now_fn)
            try:
                healthy = worker.process(rows, now=now, report=report, lease=lease)
                lease.close(timezone.now())
            except Exception as exc:
                # One bad batch never kills the worker: its rows keep their
                # lease and come back when it expires, with the error noted.
                logger.exception("send %s: batch failed", send.pk)
                with lease.writing():
                    lease.rows(row.pk for row in rows).update(
                        last_error=f"Worker error: {type(exc).__name__}: {exc}"[:2000]
                    )
                healthy = False
            if not healthy:
                break
    send_finish_if_done(send)
    return report
