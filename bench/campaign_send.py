"""Benchmark: a 100,000-recipient campaign through the REAL worker.

Builds 100,000 customers with an email address, a LINE identity and an
opt-in on both channels, set-based in PostgreSQL (INSERT ... SELECT FROM
generate_series, no ORM per row), then measures:

  bare loop   one smtplib connection sending the same 100,000 messages
              (the worker's own output, rendered beforehand) to the sink
  email       campaign_launch, then `manage.py qcluster` (Q_WORKERS=2) until
              every row is sent: messages/s from launch to the last sent_at,
              and the cluster's peak memory (psutil, every 0.2 s: the
              biggest single process's RSS, and the PSS of the process tree,
              shared pages split among their sharers)
  LINE bare   line-bot-sdk on one connection posting the same 200
              multicasts of 500 user ids to the same fake, no database
              (texts rendered and ids read beforehand)
  LINE        the same 100,000 as LINE followers, one identical message
              (multicasts of 500) to the LINE fake: time from launch to the
              last sent_at, against the LINE bare loop, requests made
  LINE floor  what PostgreSQL alone costs for the campaign's writes, on a
              raw cursor after the campaign (see line_floor): the snapshot
              as a bare INSERT ... SELECT, 200 request INSERTs, 200 outcome
              UPDATEs of 500 rows, against the same bare loop

The SMTP sink is aiosmtpd in a separate process (it counts messages and
Message-IDs, nothing else), so it does not compete for this process's GIL.
The LINE fake too runs in a process of its own (in a thread of this one it
shared the GIL with the memory sampler and the progress poll); its record
is read over its control API afterwards.
It prints numbers; it is not a pass/fail test. Targets: email >= 80% of the
bare loop's rate; LINE within 2x the LINE bare loop's time; worker peak RSS
< 300 MB. On this shared machine an absolute time is no evidence: each
figure is printed against its bare loop measured in the same run.

Run (the figures in bench/README.md come from exactly this command):

    scripts/with-postgres.sh .venv/bin/python bench/campaign_send.py

`--customers 20000` gives a quick run; `--only line` (or `email`) runs one
phase (LINE alone needs no SMTP sink and no bare loop); `--profile 2000`
also runs one in-process send_dispatch of 2,000 mails under cProfile and
prints where the time goes. The details list each cluster process's RSS,
PSS and USS at the end, and the CPU seconds each group of processes (the
cluster, PostgreSQL, the sink, the fake, this script) used per phase.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import multiprocessing
import os
import pstats
import re
import signal
import smtplib
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Steal, django_setup, log, migrate, sql, table, time_once

FROM = "support@shop.example.jp"
LINE_TOKEN = "bench-line-token"
LINE_SECRET = "bench-line-secret"
STALL_SECONDS = 180  # a phase with no row sent for this long has failed
COUNT_EVERY_SECONDS = 5

# --- The SMTP sink (a separate process) ---------------------------------------------

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


def smtp_sink(port: int, received, unique, ready) -> None:
    """aiosmtpd on `port`, counting messages and distinct Message-IDs into
    shared integers, until the process is killed or its parent is gone."""
    from aiosmtpd.controller import Controller

    seen: set[bytes] = set()

    class Counter:
        async def handle_DATA(self, server, session, envelope):
            match = _MESSAGE_ID.search(envelope.content, 0, 8192)
            with received.get_lock():
                received.value += 1
            if match and match.group(1) not in seen:
                seen.add(match.group(1))
                with unique.get_lock():
                    unique.value += 1
            return "250 OK"

    parent = os.getppid()
    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while os.getppid() == parent:  # the bench is gone (even by SIGKILL): so is the sink
        time.sleep(1)


@dataclass
class Sink:
    port: int
    process: multiprocessing.Process
    received: object
    unique: object

    @classmethod
    def start(cls) -> Sink:
        from tests.smtp_server import free_port

        context = multiprocessing.get_context("spawn")
        port = free_port()
        received, unique, ready = context.Value("q", 0), context.Value("q", 0), context.Event()
        process = context.Process(
            target=smtp_sink, args=(port, received, unique, ready), daemon=True
        )
        process.start()
        if not ready.wait(30):
            process.kill()
            raise RuntimeError("the SMTP sink did not start")
        return cls(port, process, received, unique)

    def counts(self) -> tuple[int, int]:
        return self.received.value, self.unique.value

    def reset(self) -> None:
        with self.received.get_lock():
            self.received.value = 0
        with self.unique.get_lock():
            self.unique.value = 0

    def stop(self) -> None:
        self.process.kill()
        self.process.join(5)


# --- The LINE fake (a separate process) ---------------------------------------------


def line_fake_serve(port: int, ready) -> None:
    """The LINE fake's process: serve until killed."""
    from outreach.linefake import LineFake

    fake = LineFake(port=port, channel_access_token=LINE_TOKEN, channel_secret=LINE_SECRET)
    ready.set()
    fake.serve_forever()


@dataclass
class FakeProcess:
    url: str
    process: multiprocessing.Process

    @classmethod
    def start(cls) -> FakeProcess:
        from tests.smtp_server import free_port

        context = multiprocessing.get_context("spawn")
        port, ready = free_port(), context.Event()
        process = context.Process(target=line_fake_serve, args=(port, ready), daemon=True)
        process.start()
        if not ready.wait(60):
            process.kill()
            raise RuntimeError("the LINE fake did not start")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:  # ready is set just before it binds: wait until it answers
            try:
                cls._get(url, "requests")
                return cls(url, process)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @staticmethod
    def _get(url: str, what: str) -> list[dict]:
        import json
        import urllib.request

        with urllib.request.urlopen(f"{url}/__fake__/{what}", timeout=60) as response:
            return json.load(response)[what]

    def statuses(self, endpoint: str) -> dict[int, int]:
        from collections import Counter

        return dict(
            Counter(
                r["status"] for r in self._get(self.url, "requests") if r["endpoint"] == endpoint
            )
        )

    def reset(self) -> None:
        """Forget what the fake recorded (after the bare loop)."""
        import urllib.request

        request = urllib.request.Request(f"{self.url}/__fake__/reset", data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=60):
            pass

    def users(self) -> tuple[int, int]:
        """(deliveries, distinct users reached)."""
        deliveries = self._get(self.url, "deliveries")
        return len(deliveries), len({d["userId"] for d in deliveries})

    def stop(self) -> None:
        self.process.kill()
        self.process.join(5)


# --- Data --------------------------------------------------------------------------


def build(customers: int) -> None:
    """Customers with email, LINE identity and opt-ins on email and LINE,
    as the services would have written them (events + current states)."""
    from django.db import transaction
    from django.utils import timezone

    now = timezone.now()
    with transaction.atomic():
        sql("SET LOCAL session_replication_role = replica")  # fresh schema: no FK triggers
        sql(
            """
            INSERT INTO crm_customer (
                family_name, given_name, family_name_kana, given_name_kana,
                email, email_normalized, phone, phone_normalized, postal_code, prefecture,
                address, notes, is_claimant, claimant_reason, order_count, total_spent,
                lifecycle_segment, created_at, updated_at, nickname, nickname_channel,
                search_name, search_kana)
            SELECT
                (ARRAY['佐藤','鈴木','高橋','田中','伊藤','渡辺','山本','中村'])[1 + g %% 8],
                (ARRAY['花子','太郎','美咲','翔太','陽菜','大翔','結衣','蓮'])[1 + g %% 8],
                (ARRAY['サトウ','スズキ','タカハシ','タナカ','イトウ','ワタナベ','ヤマモト',
                       'ナカムラ'])[1 + g %% 8],
                (ARRAY['ハナコ','タロウ','ミサキ','ショウタ','ヒナ','ヒロト','ユイ','レン'])
                    [1 + g %% 8],
                'customer' || g || '@example.jp', 'customer' || g || '@example.jp',
                '', '', '150-0001', '東京都', '神宮前1-2-3', '', false, '', 1, 5000,
                'new', %(now)s, %(now)s, '', '', '', ''
            FROM generate_series(1, %(n)s) AS g
            """,
            {"n": customers, "now": now},
        )
        sql(
            """
            INSERT INTO crm_channelidentity (customer_id, channel, external_id, display_name,
                                             created_at, picture_url, profile_error)
            SELECT id, 'line', 'U' || lpad(to_hex(id), 32, '0'), '', %(now)s, '', ''
            FROM crm_customer
            """,
            {"now": now},
        )
        sql(
            """
            INSERT INTO crm_consentevent (customer_id, channel, action, source, wording_version,
                                          occurred_at, recorded_at, note)
            SELECT c.id, ch, 'opt_in', 'import', '', %(now)s, %(now)s, ''
            FROM crm_customer AS c CROSS JOIN unnest(ARRAY['email', 'line']) AS ch
            """,
            {"now": now},
        )
        sql(
            """
            INSERT INTO crm_consentstate (customer_id, channel, granted, changed_at, event_id)
            SELECT customer_id, channel, true, occurred_at, id FROM crm_consentevent
            """
        )
    for name in ("crm_customer", "crm_channelidentity", "crm_consentevent", "crm_consentstate"):
        sql(f"VACUUM ANALYZE {name}")


def campaign(channel: str):
    """A draft campaign to everyone with an opt-in on `channel`."""
    from outreach import services
    from outreach.models import Campaign, MessageTemplate, Segment, SegmentKind

    if channel == "email":
        template = MessageTemplate(
            name="冬のセール(メール)",
            channel="email",
            purpose="marketing",
            subject="{{ customer.name }}様、冬のセールのお知らせ",
            body_text=(
                "{{ customer.family_name }}様\n\nいつも{{ shop.name }}をご利用いただき"
                "ありがとうございます。\n冬のセールを本日から開催します。\n{{ shop.url }}"
            ),
            body_html=(
                "<p>{{ customer.family_name }}様</p><p>いつも{{ shop.name }}をご利用いただき"
                "ありがとうございます。</p><p>冬のセールを本日から開催します。</p>"
                '<p><a href="{{ shop.url }}">{{ shop.url }}</a></p>'
            ),
        )
    else:
        template = MessageTemplate(
            name="冬のセール(LINE)",
            channel="line",
            purpose="marketing",
            line_messages=["{{ shop.name }}の冬のセールが始まりました🎉", "本日23:59まで"],
        )
    template = services.template_save(template=template)
    segment = Segment.objects.create(
        name=f"opt-in {channel}",
        kind=SegmentKind.CUSTOM,
        rule={
            "match": "all",
            "conditions": [{"field": "consent", "op": "granted", "value": [channel]}],
        },
    )
    return Campaign.objects.create(
        name=template.name, channel=channel, template=template, segment=segment
    )


def first_ids(count: int) -> list[int]:
    from crm.models import Customer

    return list(Customer.objects.order_by("id").values_list("id", flat=True)[:count])


# --- The bare loop ----------------------------------------------------------------------


def worker_output(draft, count: int) -> list[tuple[str, bytes]]:
    """(recipient, message bytes) for `count` recipients: the worker's own
    rendering (EmailWorker.message and the adapter's bytes, as they go on
    the wire) for 100 customers; the rest are those messages with the
    recipient's address and Message-ID."""
    from django.utils import timezone

    from crm.models import Customer
    from outreach import services
    from outreach.channels.email import message_bytes, message_id_for
    from outreach.dispatch import EmailWorker
    from outreach.models import Delivery, Send

    send = services.send_create(
        kind="test", channel="email", purpose="marketing", template=draft.template
    )
    sample = Customer.objects.filter(pk__in=first_ids(100))
    services.deliveries_snapshot(send=send, audience=sample, now=timezone.now())
    rows = list(Delivery.objects.filter(send=send).order_by("id"))
    worker = EmailWorker(send)
    customers = worker.recipients(rows)
    rendered = []
    for row in rows:
        customer = customers[row.customer_id]
        message = worker.message(row, customer, customer.email)
        data = message_bytes(message) or worker.adapter._build(message).message().as_bytes(
            linesep="\r\n"
        )
        rendered.append((customer.email, message.message_id.encode(), data))
    Send.objects.filter(pk=send.pk).delete()

    out = []
    for index in range(count):
        email, message_id, data = rendered[index % len(rendered)]
        to = f"customer{index + 1}@example.jp"
        fresh_id = message_id_for(send_id=0, delivery_id=index + 1).encode()
        out.append((to, data.replace(email.encode(), to.encode()).replace(message_id, fresh_id)))
    return out


def bare_loop(messages: list[tuple[str, bytes]], port: int) -> float:
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
    start = time.perf_counter()
    for to, data in messages:
        smtp.sendmail(FROM, [to], data)
    elapsed = time.perf_counter() - start
    smtp.quit()
    return elapsed


def line_bare_input(draft) -> tuple[list[str], list[str]]:
    """(user ids, texts) of the LINE campaign `draft`: every LINE follower's
    id, in the order of the worker's claims (customer id), and the message
    as the worker renders it for a multicast."""
    from crm.models import ChannelIdentity
    from outreach.templating import render_line, template_context

    ids = ChannelIdentity.objects.filter(channel="line").order_by("customer_id")
    texts = render_line(
        messages=draft.template.line_messages, context=template_context(customer=None)
    )
    return list(ids.values_list("external_id", flat=True)), texts


def line_bare_loop(url: str, user_ids: list[str], texts: list[str]) -> tuple[float, int]:
    """line-bot-sdk on one connection: one multicast per 500 ids, each with
    a retry key, as the worker's adapter sends them; no database. Returns
    (seconds, requests)."""
    from uuid import uuid4

    from linebot.v3 import messaging as sdk

    from outreach.channels.line import MULTICAST_MAX_RECIPIENTS

    configuration = sdk.Configuration(host=url, access_token=LINE_TOKEN)
    requests = 0
    with sdk.ApiClient(configuration) as client:
        api = sdk.MessagingApi(client)
        start = time.perf_counter()
        for index in range(0, len(user_ids), MULTICAST_MAX_RECIPIENTS):
            request = sdk.MulticastRequest(
                to=user_ids[index : index + MULTICAST_MAX_RECIPIENTS],
                messages=[sdk.TextMessage(text=text) for text in texts],
            )
            api.multicast_with_http_info(
                request, x_line_retry_key=str(uuid4()), _request_timeout=(5, 20)
            )
            requests += 1
        return time.perf_counter() - start, requests


# --- The floor: what PostgreSQL alone costs for the LINE campaign's writes -----------


@dataclass
class Floor:
    snapshot: float  # the bare INSERT ... SELECT of the ledger rows
    requests: float  # the bare multicast-request INSERTs
    outcomes: float  # the bare outcome UPDATEs
    batches: int
    server_cpu: float | None  # PostgreSQL's CPU seconds meanwhile (None: unreadable)
    steal: str

    @property
    def total(self) -> float:
        return self.snapshot + self.requests + self.outcomes


def line_floor(draft) -> Floor:
    """The database's share of a LINE campaign, without the worker's Python:
    on a raw cursor, each statement its own committed transaction (as the
    worker's are), into a scratch send of `draft`'s template that no worker
    claims (never launched): one INSERT ... SELECT of a ledger row per LINE
    follower into outreach_delivery (every index and constraint of the
    real table; no eligibility test), then per 500 rows one multicast
    request INSERT and one outcome UPDATE of its 500 rows (sent, the
    request's key and attempts), as the worker writes them. The scratch
    rows are deleted afterwards (not timed)."""
    from uuid import uuid4

    from django.db import connection
    from django.utils import timezone

    from bench.common import ServerCpu
    from core.lookups import id_array
    from outreach import services
    from outreach.channels.line import MULTICAST_MAX_RECIPIENTS

    send = services.send_create(
        kind="campaign", channel="line", purpose="marketing", template=draft.template
    )
    stamp = connection.ops.adapt_datetimefield_value(timezone.now())
    steal = Steal()
    with connection.cursor() as cursor:
        server = ServerCpu(cursor.connection.info.backend_pid)
        cpu_before = server.total() if server.available else None
        start = time.perf_counter()
        cursor.execute(
            """
            INSERT INTO outreach_delivery (
                send_id, customer_id, channel, context_key, status, skip_reason, attempts,
                next_attempt_at, provider_message_id, address, last_error, created_at,
                updated_at)
            SELECT %s, customer_id, 'line', '', 'queued', '', 0, NULL, '', '', '', %s, %s
            FROM crm_channelidentity WHERE channel = 'line'
            """,
            [send.pk, stamp, stamp],
        )
        snapshot = time.perf_counter() - start
        cpu_snapshot = server.total() if server.available else None
        cursor.execute("SELECT id FROM outreach_delivery WHERE send_id = %s ORDER BY id", [send.pk])
        ids = [row[0] for row in cursor.fetchall()]
        batches = [
            ids[index : index + MULTICAST_MAX_RECIPIENTS]
            for index in range(0, len(ids), MULTICAST_MAX_RECIPIENTS)
        ]
        keys = [str(uuid4()) for _ in batches]
        cpu_untimed = (server.total() - cpu_snapshot) if server.available else None
        start = time.perf_counter()
        for key, batch in zip(keys, batches, strict=True):
            cursor.execute(
                """
                INSERT INTO outreach_multicastrequest (
                    send_id, retry_key, delivery_ids, last_delivery_id, attempts,
                    next_attempt_at, lease_expires_at, created_at)
                VALUES (%s, %s, %s::jsonb, %s, 1, %s, %s, %s)
                """,
                [
                    send.pk,
                    key,
                    "[" + ",".join(map(str, batch)) + "]",
                    batch[-1],
                    stamp,
                    stamp,
                    stamp,
                ],
            )
        requests = time.perf_counter() - start
        start = time.perf_counter()
        for key, batch in zip(keys, batches, strict=True):
            cursor.execute(
                """
                UPDATE outreach_delivery
                SET status = 'sent', sent_at = %s, lease_expires_at = NULL,
                    provider_message_id = %s, last_error = '', updated_at = %s,
                    attempts = 1, retry_key = %s
                WHERE id = ANY(%s::bigint[])
                """,
                [stamp, key, stamp, key, id_array(batch)],
            )
        outcomes = time.perf_counter() - start
        server_cpu = server.total() - cpu_before - cpu_untimed if server.available else None
        steal_text = steal.text()
        cursor.execute("DELETE FROM outreach_multicastrequest WHERE send_id = %s", [send.pk])
        cursor.execute("DELETE FROM outreach_delivery WHERE send_id = %s", [send.pk])
        cursor.execute("DELETE FROM outreach_send WHERE id = %s", [send.pk])
    return Floor(snapshot, requests, outcomes, len(batches), server_cpu, steal_text)


# --- The worker --------------------------------------------------------------------------


def memory(worker, *, pss: bool = True) -> tuple[int, int, int]:
    """(sum of RSS, biggest RSS, sum of PSS) over the cluster's processes.
    RSS counts the pages a forked child shares with its parent once per
    process; PSS splits shared pages among their sharers. PSS makes the
    kernel walk every page of every process (~30 ms for the cluster), so
    `pss=False` reads RSS alone (PSS is then 0)."""
    import psutil

    rss, pss_sizes = [], []
    for process in worker.processes():
        with contextlib.suppress(psutil.Error):
            info = process.memory_full_info() if pss else process.memory_info()
            rss.append(info.rss)
            pss_sizes.append(getattr(info, "pss", 0))
    return sum(rss), max(rss, default=0), sum(pss_sizes)


def process_memory(worker) -> str:
    """Each cluster process's RSS / PSS / USS in MB, biggest RSS first."""
    import psutil

    out = []
    for process in worker.processes():
        with contextlib.suppress(psutil.Error):
            info = process.memory_full_info()
            out.append((info.rss, getattr(info, "pss", 0), getattr(info, "uss", 0)))
    mb = 1024 * 1024
    return ", ".join(f"{r / mb:.0f}/{p / mb:.0f}/{u / mb:.0f}" for r, p, u in sorted(out)[::-1])


def settle(worker, *, quiet: float = 0.05, timeout: float = 60) -> float:
    """Wait until the cluster is idle, as a long-running one is when a
    campaign starts (its workers import the dispatch code and line-bot-sdk
    as they spawn): its processes used under `quiet` s of CPU in 0.5 s.
    Returns the seconds waited."""
    import psutil

    def cpu() -> float:
        total = 0.0
        for process in worker.processes():
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    began = time.monotonic()
    before = cpu()
    while time.monotonic() - began < timeout:
        time.sleep(0.5)
        now = cpu()
        if now - before < quiet:
            break
        before = now
    return time.monotonic() - began


@dataclass
class RssSampler:
    """Every 0.2 s: the RSS of the cluster's processes, and every second
    their PSS too (see memory())."""

    worker: object
    peak_total: int = 0
    peak_single: int = 0
    peak_pss: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(0.2):
            total, single, pss = memory(self.worker, pss=tick % 5 == 0)
            tick += 1
            if total:
                self.samples += 1
                self.peak_total = max(self.peak_total, total)
                self.peak_single = max(self.peak_single, single)
                self.peak_pss = max(self.peak_pss, pss)


def cpu_times(worker, others: dict[str, int]) -> dict[tuple[str, int], float]:
    """CPU seconds (user + system) so far of each process that takes part,
    keyed by (group, pid): the cluster's; PostgreSQL's (its server
    processes and the backends of the workers and of this script: the
    launch and the progress polls); this script; `others` (name: pid)."""
    import psutil

    processes = [("worker", p) for p in worker.processes()]
    processes += [("bench", psutil.Process())]
    for name, pid in others.items():
        with contextlib.suppress(psutil.Error):  # it may have ended
            processes.append((name, psutil.Process(pid)))
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres":
            processes.append(("postgres", process))
    out = {}
    for group, process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            out[(group, process.pid)] = times.user + times.system
    return out


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds used between two cpu_times() by group (processes that
    ended meanwhile are not counted)."""
    used: dict[str, float] = {}
    for (group, pid), seconds in after.items():
        used[group] = used.get(group, 0.0) + seconds - before.get((group, pid), 0.0)
    return used


@dataclass
class Run:
    recipients: int
    seconds: float
    launch_seconds: float
    rss: RssSampler
    first_sent_seconds: float  # from the launch call to the first row's sent_at
    cpu: dict[str, float]  # CPU seconds by process group, launch to done
    steal: str  # the CPU time the host gave other guests meanwhile (Steal)


def run_campaign(draft, worker, *, timeout: float, others: dict[str, int]) -> Run:
    """Launch, then poll until no row is queued or sending; the time is from
    the launch call to the last row's sent_at. `others`: processes whose
    CPU time is reported beside the cluster's and PostgreSQL's."""
    from django.db.models import Max, Min

    from outreach import services
    from outreach.ledger import PENDING
    from outreach.models import Delivery

    cpu_before = cpu_times(worker, others)
    steal = Steal()
    with RssSampler(worker) as rss:
        wall = time.time()
        start = time.perf_counter()
        launched = services.campaign_launch(campaign=draft)
        launch_seconds = time.perf_counter() - start
        rows = Delivery.objects.filter(send=launched.send)
        pending_rows = rows.filter(status__in=PENDING)
        deadline = start + timeout
        pending, progress_at, counted_at = None, time.perf_counter(), 0.0
        # Polling is cheap (is any row pending?): counting 100,000 pending
        # rows every half second took a few percent of the server's CPU from
        # the workers being measured. The count, for the stall check, is
        # taken every few seconds.
        while pending_rows.exists():
            now = time.perf_counter()
            if now - counted_at >= COUNT_EVERY_SECONDS:
                left, counted_at = pending_rows.count(), now
                if left != pending:
                    pending, progress_at = left, now
            if now > deadline:
                raise TimeoutError(f"not done after {timeout}s:\n{worker.log_tail()}")
            if not worker.running or now - progress_at > STALL_SECONDS:
                raise RuntimeError(
                    f"no progress for {now - progress_at:.0f}s ({left:,} rows pending);"
                    f" cluster processes: {len(worker.processes())}\n{worker.log_tail()}"
                )
            time.sleep(0.25)
    steal_text = steal.text()
    cpu = cpu_used(cpu_before, cpu_times(worker, others))
    sent = rows.filter(status="sent").count()
    if sent != rows.count():
        raise RuntimeError(f"{rows.count() - sent} rows not sent:\n{worker.log_tail()}")
    times = rows.aggregate(first=Min("sent_at"), last=Max("sent_at"))
    first, last = times["first"].timestamp(), times["last"].timestamp()
    return Run(sent, last - wall, launch_seconds, rss, first - wall, cpu, steal_text)


def profile_dispatch(count: int, port: int) -> str:
    """One in-process send_dispatch of `count` mails under cProfile."""
    from django.conf import settings

    from crm.models import Customer
    from outreach import services
    from outreach.dispatch import send_dispatch
    from outreach.models import Send

    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_RATE = 10**6
    settings.QUIET_HOURS_START = settings.QUIET_HOURS_END = 0
    template = Send.objects.filter(channel="email").exclude(template=None).first().template
    send = services.send_create(
        kind="campaign", channel="email", purpose="marketing", template=template
    )
    from django.utils import timezone

    audience = Customer.objects.filter(pk__in=first_ids(count))
    services.deliveries_snapshot(send=send, audience=audience, now=timezone.now())
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    report = send_dispatch(send_id=send.pk, time_budget=3600)
    profiler.disable()
    elapsed = time.perf_counter() - start
    out = io.StringIO()
    out.write(f"{report.sent} mails in {elapsed:.2f}s in-process ({report.sent / elapsed:.0f}/s)\n")
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
    return out.getvalue()


# --- Main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=3600, help="per phase, seconds")
    parser.add_argument("--profile", type=int, default=0, help="also profile N mails in-process")
    parser.add_argument(
        "--only", choices=("email", "line"), help="run one phase (email: with the bare loop)"
    )
    args = parser.parse_args()
    n = args.customers
    with_email, with_line = args.only in (None, "email"), args.only in (None, "line")
    # SIGTERM (timeout, kill) unwinds like Ctrl-C, so the finally below kills
    # the cluster and the sink.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    django_setup()
    from django.db import connection

    from tests.worker import Worker, database_url

    migrate()
    log(f"building {n:,} customers (email + LINE, opted in)")
    elapsed, _ = time_once(lambda: build(n))
    log(f"  built in {elapsed:.1f}s")
    email_draft, line_draft = campaign("email"), campaign("line")

    load_before = os.getloadavg()
    sink = Sink.start() if with_email else None
    line = FakeProcess.start()
    worker = Worker(
        {
            "DATABASE_URL": database_url(connection.settings_dict),
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink.port if sink else 25),
            "EMAIL_RATE": "1000000",
            "LINE_API_HOST": line.url,
            "LINE_CHANNEL_ACCESS_TOKEN": LINE_TOKEN,
            "LINE_CHANNEL_SECRET": LINE_SECRET,
            "QUIET_HOURS_START": "0",
            "QUIET_HOURS_END": "0",
            "Q_WORKERS": "2",
        }
    )
    email = line_run = bare = bare_counts = email_counts = bare_steal = None
    line_bare = line_bare_requests = line_bare_steal = floor = None
    try:
        if with_email:
            log("rendering the worker's output for the bare loop")
            messages = worker_output(email_draft, n)
            size = sum(len(data) for _to, data in messages) / len(messages)
            log(f"bare smtplib loop: {n:,} messages of {size:,.0f} bytes on one connection")
            bare_steal = Steal()
            bare = bare_loop(messages, sink.port)
            bare_steal = bare_steal.text()
            bare_counts = sink.counts()
            del messages
            sink.reset()

        others = {"LINE fake": line.process.pid}
        if sink:
            others["SMTP sink"] = sink.process.pid
        startup = worker.start(timeout=120)
        settled = settle(worker)
        idle = memory(worker)
        log(f"qcluster started in {startup:.1f}s")
        if with_email:
            log("email campaign")
            email = run_campaign(email_draft, worker, timeout=args.timeout, others=others)
            email_counts = sink.counts()
        if with_line:
            user_ids, texts = line_bare_input(line_draft)
            log(f"bare line-bot-sdk loop: {len(user_ids):,} ids in multicasts of 500")
            line_bare_steal = Steal()
            line_bare, line_bare_requests = line_bare_loop(line.url, user_ids, texts)
            line_bare_steal = line_bare_steal.text()
            line_bare_users = line.users()
            line.reset()
            del user_ids
            log("LINE campaign")
            line_run = run_campaign(line_draft, worker, timeout=args.timeout, others=others)
            statuses = line.statuses("multicast")
            line_deliveries, line_users = line.users()
        per_process = process_memory(worker)
        worker.kill()
        load_after = os.getloadavg()
        if with_line:
            log("floor: the LINE campaign's writes on a raw cursor, no worker")
            floor = line_floor(line_draft)

        profile = profile_dispatch(args.profile, sink.port) if args.profile and sink else ""
    finally:
        worker.close()
        line.stop()
        if sink:
            sink.stop()

    mb = 1024 * 1024
    runs = [r.rss for r in (email, line_run) if r is not None]
    peak_total = max(r.peak_total for r in runs) / mb
    peak_single = max(r.peak_single for r in runs) / mb
    peak_pss = max(r.peak_pss for r in runs) / mb
    rows = []
    if email is not None:
        bare_rate = n / bare
        email_rate = email.recipients / email.seconds
        rows += [
            ["bare smtplib loop, 1 connection", f"{bare_rate:,.0f} msg/s", "", f"{bare:.1f}s"],
            [
                "email campaign, worker (2 procs)",
                f"{email_rate:,.0f} msg/s",
                ">= 80% of bare",
                f"{email_rate / bare_rate:.0%} of bare ({email.seconds:.1f}s)",
            ],
        ]
    if line_run is not None:
        after_launch = line_run.seconds - line_run.launch_seconds
        rows += [
            [
                f"bare line-bot-sdk loop, {line_bare_requests} multicasts",
                f"{line_bare:.1f}s",
                "",
                "1 connection",
            ],
            [
                "floor: PostgreSQL alone, same writes",
                f"{floor.total:.1f}s",
                "",
                f"{floor.total / line_bare:.2f}x bare",
            ],
            [
                f"LINE campaign, {n:,} (multicast)",
                f"{line_run.seconds:.1f}s",
                "<= 2x bare",
                f"{line_run.seconds / line_bare:.2f}x bare,"
                f" {line_run.seconds / floor.total:.2f}x floor",
            ],
            [
                "  of which after campaign_launch",
                f"{after_launch:.1f}s",
                "",
                f"{after_launch / line_bare:.2f}x bare",
            ],
        ]
    # The target is a worker's RSS. The whole cluster (six django-q2
    # processes) is held to it too, by PSS: shared pages split among their
    # sharers. The plain sum of RSS counts the ~65 MB every forked process
    # shares (Django, psycopg, the apps) six times: shown, no target.
    rows += [
        [
            "worker peak RSS, biggest process",
            f"{peak_single:.0f} MB",
            "< 300 MB",
            f"{peak_single / 300:.0%} of target",
        ],
        [
            "worker peak PSS, whole cluster",
            f"{peak_pss:.0f} MB",
            "< 300 MB",
            f"{peak_pss / 300:.0%} of target",
        ],
        ["  (RSS summed over the cluster's 6)", f"{peak_total:.0f} MB", "", "shared pages 6x"],
    ]
    print(f"\ncampaign send, {n:,} recipients (PostgreSQL {connection.pg_version // 10000})")
    print(table(["figure", "value", "target", "ratio"], rows))
    details = [
        f"load average (1/5/15 min) before {fmt_load(load_before)},"
        f" after {fmt_load(load_after)}, on {os.cpu_count()} CPUs",
        f"qcluster start-up {startup:.1f}s, idle {settled:.1f}s later;"
        f" idle cluster: RSS sum {idle[0] / mb:.0f} MB,"
        f" biggest {idle[1] / mb:.0f} MB, PSS sum {idle[2] / mb:.0f} MB",
        "cluster processes at the end (RSS / PSS / USS MB): " + per_process,
    ]
    if email is not None:
        details += [
            f"campaign_launch (snapshot of {n:,} rows), email: {email.launch_seconds:.1f}s;"
            f" first message sent {email.first_sent_seconds:.1f}s after the launch call",
            f"email: CPU seconds from launch to done ({email.steal} of the host's): "
            + fmt_cpu(email.cpu),
            f"bare smtplib loop: {bare_steal} of the host's CPU time meanwhile",
            f"sink: bare loop {bare_counts[0]:,} received / {bare_counts[1]:,} distinct;"
            f" worker {email_counts[0]:,} received / {email_counts[1]:,} distinct Message-IDs",
            f"email: {email.rss.samples} memory samples; peak RSS"
            f" {email.rss.peak_total / mb:.0f} MB (biggest {email.rss.peak_single / mb:.0f},"
            f" PSS {email.rss.peak_pss / mb:.0f})",
        ]
    if line_run is not None:
        details += [
            f"campaign_launch (snapshot of {n:,} rows), LINE: {line_run.launch_seconds:.1f}s;"
            f" first message sent {line_run.first_sent_seconds:.1f}s after the launch call",
            f"LINE: CPU seconds from launch to done ({line_run.steal} of the host's): "
            + fmt_cpu(line_run.cpu),
            f"bare line-bot-sdk loop: {line_bare_steal} of the host's CPU time meanwhile;"
            f" the fake recorded {line_bare_users[0]:,} deliveries to {line_bare_users[1]:,}"
            " users (then reset)",
            f"floor ({floor.steal} of the host's): snapshot INSERT ... SELECT"
            f" {floor.snapshot:.2f}s + {floor.batches} request INSERTs {floor.requests:.2f}s"
            f" + {floor.batches} outcome UPDATEs {floor.outcomes:.2f}s"
            f" = {floor.total:.2f}s; PostgreSQL CPU "
            + (f"{floor.server_cpu:.1f}s" if floor.server_cpu is not None else "unreadable")
            + f"; 2x the bare loop is {2 * line_bare:.2f}s",
            f"LINE: {sum(statuses.values())} multicast requests {dict(statuses)},"
            f" {line_users:,} users reached, {line_deliveries:,} deliveries",
            f"LINE: {line_run.rss.samples} memory samples; peak RSS"
            f" {line_run.rss.peak_total / mb:.0f} MB (biggest {line_run.rss.peak_single / mb:.0f},"
            f" PSS {line_run.rss.peak_pss / mb:.0f})",
        ]
    print("\ndetails:\n  " + "\n  ".join(details))
    if profile:
        print("\nin-process send_dispatch under cProfile:\n" + profile)


def fmt_cpu(cpu: dict[str, float]) -> str:
    ranked = sorted(cpu.items(), key=lambda item: -item[1])
    parts = [f"{group} {seconds:.1f}" for group, seconds in ranked]
    return ", ".join(parts) + f" (sum {sum(cpu.values()):.1f})"


def fmt_load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.1f}" for x in load)


if __name__ == "__main__":
    main()
