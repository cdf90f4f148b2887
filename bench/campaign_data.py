"""The campaign benchmark's data and its yardsticks: the customers built
set-based in PostgreSQL, the campaign, the worker's own output, the bare
send loops (smtplib, line-bot-sdk) and the LINE floor (what PostgreSQL
alone costs for a LINE campaign's writes, on a raw cursor).
"""

from __future__ import annotations

import smtplib
import time
from dataclasses import dataclass

from bench.campaign_peers import LINE_TOKEN
from bench.common import Steal, sql
from bench.customers_sql import FAMILY, FAMILY_KANA, GIVEN, GIVEN_KANA, insert_select, pick

FROM = "support@shop.example.jp"


# --- Data --------------------------------------------------------------------------


def build(customers: int) -> None:
    """Customers with email, LINE identity and opt-ins on email and LINE,
    as the services would have written them (events + current states)."""
    from django.db import transaction
    from django.utils import timezone

    from crm.models import ChannelIdentity, Customer

    now = timezone.now()
    with transaction.atomic():
        sql("SET LOCAL session_replication_role = replica")  # fresh schema: no FK triggers
        sql(
            insert_select(
                Customer,
                {
                    "family_name": pick(FAMILY),
                    "given_name": pick(GIVEN),
                    "family_name_kana": pick(FAMILY_KANA),
                    "given_name_kana": pick(GIVEN_KANA),
                    "email": "'customer' || g || '@example.jp'",
                    "email_normalized": "'customer' || g || '@example.jp'",
                    "postal_code": "'150-0001'",
                    "prefecture": "'東京都'",
                    "address": "'神宮前1-2-3'",
                    "order_count": "1",
                    "total_spent": "5000",
                    "lifecycle_segment": "'new'",
                    "created_at": "%(now)s",
                    "updated_at": "%(now)s",
                },
                "FROM generate_series(1, %(n)s) AS g",
            ),
            {"n": customers, "now": now},
        )
        sql(
            insert_select(
                ChannelIdentity,
                {
                    "customer_id": "id",
                    "channel": "'line'",
                    "external_id": "'U' || lpad(to_hex(id), 32, '0')",
                    "created_at": "%(now)s",
                },
                "FROM crm_customer",
            ),
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
