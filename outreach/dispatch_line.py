"""The LINE worker: push or multicast (identical messages grouped up to the API's limit), the
shared LINE rate buckets a 429 pauses, and replies whose outcome is in doubt.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from crm.models import Customer
from outreach import ledger, rate
from outreach.channels import Outcome, Result
from outreach.channels.line import MULTICAST_MAX_RECIPIENTS, LineAdapter
from outreach.dispatch_worker import DispatchReport, _record, _Worker
from outreach.ledger import Claimed
from outreach.line_texts import line_length_problem
from outreach.models import (
    Delivery,
    Send,
    SendKind,
)
from outreach.templating import (
    TEST_MARK,
    render_line,
)

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
