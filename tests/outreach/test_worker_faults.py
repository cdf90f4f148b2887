"""Faults through the REAL worker: `manage.py qcluster` in a subprocess
(tests/worker.py) against the test database, a real SMTP server and the LINE
fake in this process. The cluster is SIGKILLed mid-send and restarted, the
SMTP server refuses and goes away, LINE answers 429/500 and loses an answer:
the ledger must still deliver every message, LINE exactly once, and a kill
repeats at most one mail per SMTP connection the cluster had open (the
message whose DATA was in progress).

The every-minute schedule (`outreach.tasks.sends_tick`) is played by the
test whenever the queue is idle, instead of waiting a minute for it.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from email.parser import BytesHeaderParser

import pytest
from django.db import connection
from django.utils import timezone
from django_q.brokers import get_broker

from crm.models import Customer
from outreach import services
from outreach.ledger import PENDING
from outreach.linefake import LineFake
from outreach.models import (
    Campaign,
    Delivery,
    DeliveryStatus,
    MessageTemplate,
    MulticastRequest,
    Segment,
    SegmentKind,
    Send,
)
from outreach.tasks import sends_tick
from tests.outreach.audience import consented_customers, email_of, line_user
from tests.smtp_server import SmtpServer, _Handler
from tests.worker import Worker, WorkerClusters, database_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LINE_TOKEN = "fault-test-line-token"
LINE_SECRET = "fault-test-line-secret"


# --- Servers ----------------------------------------------------------------------


class SlowSmtpHandler(_Handler):
    """The test SMTP server's handler, taking `delay` seconds per message
    (an asyncio sleep: other connections go on meanwhile), so that a kill
    lands while messages are in flight."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


class CountingLineFake(LineFake):
    """The LINE fake, counting the API requests it is answering right now."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()

    def handle(self, method, raw_path, headers, raw_body):
        with self._in_flight_lock:
            self._in_flight += 1
        try:
            return super().handle(method, raw_path, headers, raw_body)
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    @property
    def in_flight(self) -> int:
        with self._in_flight_lock:
            return self._in_flight


@pytest.fixture
def smtp_server():
    server = SmtpServer()
    server.handler = SlowSmtpHandler()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def line():
    with CountingLineFake(channel_access_token=LINE_TOKEN, channel_secret=LINE_SECRET) as fake:
        yield fake


@pytest.fixture
def cluster(transactional_db, smtp_server, line, request, broker):
    """A qcluster (not started) for the test database and the servers above,
    or two sharing the queue on Redis (the `broker` fixture, tests/conftest.py).
    Always SIGKILLed at teardown, before the database is flushed."""
    worker = WorkerClusters(
        {
            **broker.worker_env,
            "DATABASE_URL": database_url(connection.settings_dict),
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_server.port),
            "EMAIL_TIMEOUT": "5",
            "EMAIL_RATE": "100000",
            "LINE_API_HOST": line.url,
            "LINE_CHANNEL_ACCESS_TOKEN": LINE_TOKEN,
            "LINE_CHANNEL_SECRET": LINE_SECRET,
            "LINE_READ_TIMEOUT": "5",
            # Short, yet longer than any batch here takes (a lease that runs
            # out mid-batch lets another worker send the batch again).
            "DELIVERY_LEASE_SECONDS": "5",
            "DELIVERY_BACKOFF_SECONDS": "1",
            "DELIVERY_BACKOFF_MAX_SECONDS": "2",
            "DELIVERY_MAX_ATTEMPTS": "20",
            "QUIET_HOURS_START": "0",
            "QUIET_HOURS_END": "0",
            "DISPATCH_TIME_BUDGET_SECONDS": "5",
            "Q_WORKERS": "2",
            "Q_TIMEOUT": "20",
            "Q_RETRY": "30",
        },
        count=broker.clusters,
    )
    failed_before = request.session.testsfailed
    yield worker
    worker.kill()
    if request.session.testsfailed > failed_before:
        print(f"--- qcluster log ({worker.log_path}) ---\n{worker.log_tail()}")
    elif broker.clusters > 1:
        broker.assert_shared_by(worker)
    worker.close()


# --- Data ---------------------------------------------------------------------------


def template(name: str, channel: str, **fields) -> MessageTemplate:
    return services.template_save(
        template=MessageTemplate(name=name, channel=channel, purpose="marketing", **fields)
    )


def email_template() -> MessageTemplate:
    return template(
        "冬のセール(メール)",
        "email",
        subject="{{ customer.name }}様、冬のセールのお知らせ",
        body_text="{{ customer.family_name }}様\n\nいつもご利用ありがとうございます。",
    )


def launch(tpl: MessageTemplate, *, consent: str) -> Send:
    """A campaign to everyone with consent on `consent`, launched (which
    enqueues its dispatch tasks on commit)."""
    segment = Segment.objects.create(
        name=f"opt-in {consent} {tpl.pk}",
        kind=SegmentKind.CUSTOM,
        rule={
            "match": "all",
            "conditions": [{"field": "consent", "op": "granted", "value": [consent]}],
        },
    )
    campaign = Campaign.objects.create(
        name=tpl.name, channel=tpl.channel, template=tpl, segment=segment
    )
    return services.campaign_launch(campaign=campaign).send


def send_to(tpl: MessageTemplate, customers: list[Customer]) -> Send:
    """A send to the given customers, snapshotted and enqueued."""
    send = services.send_create(
        kind="campaign", channel=tpl.channel, purpose="marketing", template=tpl
    )
    audience = Customer.objects.filter(pk__in=[c.pk for c in customers])
    services.deliveries_snapshot(send=send, audience=audience, now=timezone.now())
    services.send_enqueue(send)
    return send


# --- Observing -------------------------------------------------------------------------


def other_sessions() -> set[int]:
    """The backend pids of every other session of the test database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        return {pid for (pid,) in cursor.fetchall()}


def sessions_ended(pids: set[int], *, timeout: float = 10.0) -> None:
    """Wait until the sessions `pids` (those of a cluster just SIGKILLed)
    have ended. A statement the client wrote to its socket just before the
    kill (a COMMIT, an UPDATE in autocommit) is still read and executed by
    its server process, which only then finds the client gone: what the test
    reads as in flight at the kill must not change under it."""
    deadline = time.monotonic() + timeout
    while pids & other_sessions() and time.monotonic() < deadline:
        time.sleep(0.01)


def count(send: Send, *statuses: str) -> int:
    return Delivery.objects.filter(send=send, status__in=statuses).count()


def by_status(*sends: Send) -> dict[int, dict[str, int]]:
    return {
        send.pk: dict(Counter(Delivery.objects.filter(send=send).values_list("status", flat=True)))
        for send in sends
    }


def wait_until_done(*sends: Send, timeout: float, worker: Worker) -> float:
    """Poll the ledger until no row of `sends` is queued or sending. The
    test plays the every-minute schedule: sends_tick whenever no task waits
    in the queue (at most once a second). Returns the seconds it took."""
    broker = get_broker()
    began = time.monotonic()
    last_tick = began
    while Delivery.objects.filter(send__in=sends, status__in=PENDING).exists():
        now = time.monotonic()
        if now - began > timeout:
            raise AssertionError(
                f"not done after {timeout}s: {by_status(*sends)}\n{worker.log_tail()}"
            )
        if now - last_tick >= 1.0 and broker.queue_size() == 0:
            sends_tick()
            last_tick = now
        time.sleep(0.05)
    return time.monotonic() - began


def message_ids(server: SmtpServer) -> Counter[str]:
    parser = BytesHeaderParser()
    return Counter(parser.parsebytes(r.data)["Message-ID"] for r in server.received)


def smtp_recipients(server: SmtpServer) -> set[str]:
    return {rcpt for r in server.received for rcpt in r.rcpt_tos}


# --- Tests ------------------------------------------------------------------------------


ON_BOTH_BROKERS = pytest.mark.parametrize("broker", ["orm", "redis"], indirect=True)


@ON_BOTH_BROKERS
def test_sigkill_of_the_whole_cluster_mid_send_loses_nothing_and_never_repeats_line(
    cluster, smtp_server, line, settings
):
    # given 2,000 customers with email and LINE consent; a slightly slow
    # SMTP server and LINE platform, so that requests are in flight
    customers = consented_customers(2000)
    pushed = customers[:300]
    smtp_server.handler.delay = 0.002
    line.latency = 0.01
    # one dispatch task per send: with two workers, mail goes out while LINE does
    settings.DISPATCH_PARALLELISM = 1
    startup = cluster.start()

    # when an email campaign, a LINE multicast campaign (identical content)
    # and a personalised LINE push run...
    began = time.monotonic()
    mail = launch(email_template(), consent="email")
    multicast = launch(
        template("冬のセール(LINE)", "line", line_messages=["{{ shop.name }}の冬のセール開催中"]),
        consent="line",
    )
    push = send_to(
        template("個別のお知らせ", "line", line_messages=["{{ customer.family_name }}様へ"]),
        pushed,
    )
    sends = (mail, multicast, push)
    assert [Delivery.objects.filter(send=send).count() for send in sends] == [2000, 2000, 300]

    # ...and the whole cluster is SIGKILLed mid-send: some mail recorded as
    # sent, an SMTP connection open, and a request at LINE (after 20 s
    # without that moment: the mail alone); stopped first, so that its open
    # SMTP connections are counted as they are at the kill
    def mid_flight(*, need_line: bool) -> bool:
        if need_line and not line.in_flight:
            return False
        sent = count(mail, "sent")
        return 0 < sent < 1800 and cluster.tcp_connections_to(smtp_server.port) > 0

    deadline = time.monotonic() + 30
    while not mid_flight(need_line=time.monotonic() < deadline - 10):
        assert time.monotonic() < deadline, f"no moment to kill: {by_status(*sends)}"
        time.sleep(0.005)
    cluster.freeze()
    smtp_open = cluster.tcp_connections_to(smtp_server.port)
    cluster_sessions = other_sessions()
    cluster.kill()
    sessions_ended(cluster_sessions)
    killed_after = time.monotonic() - began
    at_kill = by_status(*sends)
    in_flight = {
        send.pk: list(
            Delivery.objects.filter(send=send, status=DeliveryStatus.SENDING).values_list(
                "retry_key", flat=True
            )
        )
        for send in sends
    }
    # a multicast in flight is an open request held under a lease
    multicasts_in_flight = MulticastRequest.objects.filter(
        send=multicast, settled_at__isnull=True, lease_expires_at__isnull=False
    ).values_list("retry_key", "delivery_ids")
    mail_in_flight = len(in_flight[mail.pk])
    line_keys_in_flight = {k for pk in (multicast.pk, push.pk) for k in in_flight[pk]}
    line_keys_in_flight |= {key for key, _ids in multicasts_in_flight}
    line_rows_in_flight = len(in_flight[push.pk]) + sum(
        len(ids) for _k, ids in multicasts_in_flight
    )
    time.sleep(0.5)  # LINE answers requests whose sender has died
    keys_accepted_by_then = {r.retry_key for r in line.accepted_requests}

    # then a fresh cluster finishes the work
    restart = cluster.start()
    finished = wait_until_done(*sends, timeout=120, worker=cluster)

    # nothing lost: every recipient has a sent row and got the mail
    assert by_status(*sends) == {
        mail.pk: {"sent": 2000},
        multicast.pk: {"sent": 2000},
        push.pk: {"sent": 300},
    }
    assert smtp_recipients(smtp_server) == {email_of(i) for i in range(2000)}
    # LINE never twice: each user once per send (multicast vs push)
    per_user = Counter((d.endpoint, d.user_id) for d in line.deliveries)
    assert set(per_user.values()) == {1}
    assert {u for (e, u) in per_user if e == "multicast"} == {line_user(i) for i in range(2000)}
    assert {u for (e, u) in per_user if e == "push"} == {line_user(i) for i in range(300)}
    # a request LINE accepted while the cluster died was replayed with its key
    # (LINE answered 409), or its outcome was written by the dying worker (a
    # statement already on its socket still runs): either way LINE delivered
    # it once (above) and its rows carry the id of the request LINE accepted
    replayed = {str(k) for k in line_keys_in_flight} & keys_accepted_by_then
    conflicts = {r.retry_key for r in line.requests if r.status == 409}
    accepted_id = {r.retry_key: r.request_id for r in line.accepted_requests}
    for key in replayed:
        ids = Delivery.objects.filter(retry_key=key).values_list("provider_message_id", flat=True)
        assert set(ids) == {accepted_id[key]}
    # email: at most the message in progress on each open connection went
    # out twice (not the rest of the batches in flight)
    duplicates = sum(n - 1 for n in message_ids(smtp_server).values())
    assert duplicates <= smtp_open
    print(
        f"\nqcluster startup: {startup:.2f}s, restart: {restart:.2f}s; "
        f"killed {killed_after:.1f}s after launch; state at kill: {at_kill}"
        f"\nemail duplicates after SIGKILL: {duplicates} (SMTP connections open at kill:"
        f" {smtp_open}; rows in flight: {mail_in_flight})"
        f"\nLINE rows in flight at kill: {line_rows_in_flight} "
        f"({len(line_keys_in_flight)} retry keys), requests replayed with 409: "
        f"{line.statuses()[409]} (of them for keys in flight at kill:"
        f" {len(replayed & conflicts)} of {len(replayed)}); "
        f"LINE duplicates: 0; finished {finished:.1f}s after restart"
    )


def test_repeated_sigkills_repeat_at_most_one_mail_per_open_smtp_connection(
    cluster, smtp_server, settings
):
    # given 2,000 customers with email consent, a slightly slow SMTP server
    # and both workers of the cluster on the one send
    consented_customers(2000, line=False)
    smtp_server.handler.delay = 0.002
    settings.DISPATCH_PARALLELISM = 2
    cluster.env["LINE_CHANNEL_ACCESS_TOKEN"] = ""  # no LINE: workers start without line-bot-sdk
    mail = launch(email_template(), consent="email")
    moments = random.Random(15)

    # when the whole cluster is SIGKILLed again and again mid-send (up to 20
    # times in 30 s), each time a moment after it sent mail; the cluster is
    # stopped first, and its open SMTP connections counted as they are at
    # the kill
    open_at_kill: list[int] = []
    began = time.monotonic()
    while len(open_at_kill) < 20 and time.monotonic() - began < 30:
        if count(mail, *PENDING) < 500:
            break
        cluster.start()
        services.send_enqueue(mail)  # as the every-minute tick would
        sent_before = count(mail, "sent")
        deadline = time.monotonic() + 20
        while count(mail, "sent") < sent_before + 10:
            assert time.monotonic() < deadline, f"nothing sent: {by_status(mail)}"
            time.sleep(0.01)
        time.sleep(moments.uniform(0, 0.3))
        cluster.freeze()
        open_at_kill.append(cluster.tcp_connections_to(smtp_server.port))
        cluster.kill()
    killing = time.monotonic() - began

    # then a fresh cluster finishes the work, nothing lost...
    cluster.start()
    services.send_enqueue(mail)
    finished = wait_until_done(mail, timeout=60, worker=cluster)
    assert by_status(mail) == {mail.pk: {"sent": 2000}}
    assert smtp_recipients(smtp_server) == {email_of(i) for i in range(2000)}
    # ...and each kill repeated at most the message in progress on each
    # connection the cluster had open (before, a kill repeated the rest of
    # every batch in flight: about 59 mails a kill)
    duplicates = sum(n - 1 for n in message_ids(smtp_server).values())
    kills, bound = len(open_at_kill), sum(open_at_kill)
    print(
        f"\n{kills} SIGKILLs in {killing:.1f}s; SMTP connections"
        f" open at each kill: {open_at_kill} (sum {bound}); email duplicates: {duplicates};"
        f" finished {finished:.1f}s after the last restart"
    )
    assert kills >= 5 and bound > 0
    assert duplicates <= bound


@ON_BOTH_BROKERS
def test_a_worker_slower_than_its_lease_keeps_its_rows_and_nothing_goes_twice(
    cluster, smtp_server, settings
):
    # given 240 consented customers, a lease of 1 s and an SMTP server so
    # slow that a batch of 100 takes about 3 s: three leases
    consented_customers(240, line=False)
    smtp_server.handler.delay = 0.03
    cluster.env["DELIVERY_LEASE_SECONDS"] = "1"
    cluster.env["DISPATCH_TIME_BUDGET_SECONDS"] = "2"
    settings.DISPATCH_PARALLELISM = 2  # two workers on the one send
    cluster.start()

    # when the campaign goes out with both workers claiming batches of it
    mail = launch(email_template(), consent="email")
    took = wait_until_done(mail, timeout=60, worker=cluster)

    # then every message arrives once: a worker renews the lease of the
    # batch it is sending, so the other never takes those rows (without the
    # renewal, a lapsed batch went out twice)
    assert by_status(mail) == {mail.pk: {"sent": 240}}
    ids = message_ids(smtp_server)
    assert len(ids) == 240
    assert sorted(n for n in ids.values() if n > 1) == []
    assert smtp_recipients(smtp_server) == {email_of(i) for i in range(240)}
    print(f"\nbatches of 3 leases: 240 sent once each in {took:.1f}s")


def test_smtp_4xx_then_refused_connections_then_recovery_through_the_worker(cluster, smtp_server):
    # given 40 consented customers and one address the server refuses (550)
    consented_customers(40, line=False)
    [refused] = consented_customers(1, line=False)
    smtp_server.refuse(refused.email)
    # the server answers 451 to the first 25 messages
    smtp_server.fail_temporarily(25)
    cluster.env["DELIVERY_BACKOFF_SECONDS"] = "4"  # the 451s wait while the server goes down
    cluster.start()

    # when the campaign goes out: 15 sent, 25 wait for their backoff
    mail = launch(email_template(), consent="email")
    deadline = time.monotonic() + 20
    while (count(mail, "sent"), count(mail, "queued"), count(mail, "failed")) != (15, 25, 1):
        assert time.monotonic() < deadline, by_status(mail)
        time.sleep(0.05)
    waiting = Delivery.objects.filter(send=mail, status="queued")
    assert all("451" in row.last_error for row in waiting)

    # then the server goes away: connections are refused, the rows wait
    smtp_server.stop()
    due = max(row.next_attempt_at for row in waiting)
    time.sleep(max((due - timezone.now()).total_seconds(), 0) + 0.1)
    sends_tick()
    deferred = waiting.filter(last_error__contains="connection failed", attempts=1)
    deadline = time.monotonic() + 15
    while deferred.count() != 25:  # nothing lost, nothing failed, no attempt used
        assert time.monotonic() < deadline, by_status(mail)
        time.sleep(0.05)

    # and comes back: every message arrives exactly once
    smtp_server.start()
    wait_until_done(mail, timeout=30, worker=cluster)
    assert by_status(mail) == {mail.pk: {"sent": 40, "failed": 1}}
    ids = message_ids(smtp_server)
    assert len(ids) == 40 and set(ids.values()) == {1}
    assert smtp_recipients(smtp_server) == {email_of(i) for i in range(40)}
    failed = Delivery.objects.get(send=mail, status="failed")
    assert failed.customer_id == refused.pk
    assert "550" in failed.last_error and "User unknown" in failed.last_error
    print("\nSMTP outage: 25 answered 451, then 25 deferred while refused; 40 sent once each")


def test_line_429_500_and_a_lost_answer_through_the_worker_deliver_once(cluster, line):
    # given 1,200 LINE followers (three multicasts) and 20 personal pushes
    followers = consented_customers(1200, email=False)
    # LINE answers the multicasts 500, then 429, then loses an answer; a
    # push gets a 500 and another loses its answer
    line.fail_next(1, status=500, endpoint="multicast")
    line.fail_next(1, status=429, endpoint="multicast")
    line.drop_next_responses(1, endpoint="multicast")
    line.fail_next(1, status=500, endpoint="push")
    line.drop_next_responses(1, endpoint="push")
    cluster.start()

    multicast = launch(
        template("LINE障害テスト", "line", line_messages=["{{ shop.name }}からのお知らせ"]),
        consent="line",
    )
    push = send_to(
        template("LINE個別障害", "line", line_messages=["{{ customer.given_name }}さんへ"]),
        followers[:20],
    )
    # a 429 waits RATE_LIMITED_BACKOFF_SECONDS (30 s) before its retry
    took = wait_until_done(multicast, push, timeout=55, worker=cluster)

    assert by_status(multicast, push) == {multicast.pk: {"sent": 1200}, push.pk: {"sent": 20}}
    per_user = Counter((d.endpoint, d.user_id) for d in line.deliveries)
    assert set(per_user.values()) == {1}
    assert len(per_user) == 1220
    mc, pu = line.statuses("multicast"), line.statuses("push")
    assert (mc[500], mc[429], mc[409]) == (1, 1, 1)
    assert (pu[500], pu[409]) == (1, 1)
    # the rows of each lost answer carry the id of the request LINE accepted
    for request in line.accepted_requests:
        ids = Delivery.objects.filter(retry_key=request.retry_key).values_list(
            "provider_message_id", flat=True
        )
        assert set(ids) == {request.request_id}
    print(
        f"\nLINE faults: multicast {dict(mc)}, push {dict(pu)}; "
        f"1,220 delivered once each in {took:.1f}s"
    )
