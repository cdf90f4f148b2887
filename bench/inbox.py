"""Benchmark: the agent's reads at scale: the inquiry API list, the admin
inbox changelist and the SLA watch, each next to its bare SQL.

Builds 1,000,000 inquiries (50,000 open) for 200,000 customers and 20
agents in PostgreSQL with server-side INSERT ... SELECT FROM generate_series
(no ORM per row), VACUUM ANALYZE, then measures in the same run:

  api        GET /api/v1/inquiries/ with an API key (all channels),
             unfiltered and ?status=open&sla_state=at_risk
  inbox      GET /admin/tickets/inquiry/ as a logged-in agent: the default
             view (open, next deadline first), mine, at risk, one channel
             (the agent has opened half of the open inquiries: unread
             marks and 「未読 N件」 read their read states); the news poll
             the inbox's script makes (GET inquiry/inbox-news/?since=...)
  sla watch  tickets.services.sla_watch(now=...) in process, its three
             clocks (first reply, next reply, resolution: a third of the
             answered open inquiries owe a next reply, the open ones have a
             72-hour resolution target, paused while waiting): a run where
             several hundred clocks cross the at-risk / breach thresholds,
             and a run where nothing changes
  search     the inbox's and the customer list's search box: a name typed
             without the space, its kana, two characters, the last digits of
             an order number and of a phone, the number part of a
             reference, words of the customer's messages, an email in upper
             case (customers with common Japanese names, 400,000 Amazon
             orders, subjects and messages in a shop's words)

HTTP figures come from real HTTP: gunicorn (2 gthread workers, DEBUG false,
bench settings) on 127.0.0.1, one keep-alive client, requests one at a
time after a warm-up; the server runs the bench settings module (production
settings, DEBUG false, Django's cached template loader), which the output
names. Each page's bare SQL is the page's own row query (captured from one
in-process request through django.test.Client) executed with a raw cursor
and fully fetched, in this process, against the same server; "all SQL" is
every query of the page replayed the same way, one after the other. The SLA
watch's bare SQL is its select of the due rows of each clock, and for a
crossing run the UPDATE of those rows (rolled back): no events,
notifications or task.
"app CPU" and "db CPU" are the CPU time gunicorn's processes and
PostgreSQL's used per request while a page was measured: on a shared
machine they move far less than wall-clock times.

It prints median and p95 in milliseconds, the targets and pass/miss, the
1-minute load average after each figure, the SQL queries of each page with
their own times, and EXPLAIN ANALYZE of every page's slowest query. It
prints numbers; it is not a pass/fail test.

Run (the figures in bench/README.md come from exactly this command):

    scripts/with-postgres.sh .venv/bin/python bench/inbox.py

`--inquiries 100000 --open 5000 --customers 20000 --repeat 20` gives a quick
run. Only 127.0.0.1 is ever
contacted; gunicorn is always stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Before Django reads its settings: the bench agent logs in with a password.
os.environ["ADMIN_REQUIRE_OTP"] = "false"

from bench.common import (
    HOST,
    ServerCpu,
    django_setup,
    free_port,
    gunicorn_start,
    gunicorn_stop,
    log,
    migrate,
    percentile,
    process_tree_cpu,
    sql,
    table,
    time_once,
)

AGENTS = 20
BENCH_AGENT = "bench-agent"
BENCH_PASSWORD = "bench-agent-pw-2611"
TARGETS_MS = {"api": 50.0, "inbox": 150.0, "sla": 200.0, "search": 150.0}
OPEN_STATUSES = ("new", "open", "waiting_customer", "waiting_third_party")


# --- SQL helpers ---------------------------------------------------------------------


def insert_select(table_name: str, count_sql: str, values: dict[str, str]) -> int:
    """INSERT INTO table SELECT ... FROM generate_series(1, n) g: the given
    column expressions, and a zero value of its type for every other NOT
    NULL column without a default (Django sets defaults in Python, not in
    the database), so the script survives new columns."""
    columns = sql(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL",
        [table_name],
        fetch=True,
    )
    zero = {
        "boolean": "false",
        "integer": "0",
        "smallint": "0",
        "bigint": "0",
        "jsonb": "'{}'::jsonb",
        "date": "current_date",
        "timestamp with time zone": "now()",
        "bytea": "''::bytea",
        "interval": "interval '0'",
    }
    exprs = dict(values)
    for name, data_type in columns:
        if name not in exprs and name != "id":
            exprs[name] = zero.get(data_type, "''")
    names = ", ".join(f'"{name}"' for name in exprs)
    select = ", ".join(exprs.values())
    return sql(f'INSERT INTO "{table_name}" ({names}) SELECT {select} FROM {count_sql}')


# --- Data ------------------------------------------------------------------------------


def build(*, inquiries: int, open_count: int, customers: int) -> dict:
    """Customers, agents, inquiries (the newest `open_count` open), the
    first message of every inquiry and the customers' orders. Returns what
    the measurements need."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from core.choices import Channel
    from core.roles import AGENT
    from core.services import api_key_create
    from tickets.models import Category, SlaPolicy

    started = time.perf_counter()
    user_model = get_user_model()
    agent_group = Group.objects.get(name=AGENT)
    bench_agent = user_model.objects.create_user(
        BENCH_AGENT, password=BENCH_PASSWORD, is_staff=True, last_name="ベンチ"
    )
    agents = [bench_agent] + [
        user_model.objects.create_user(f"agent{n:02d}", is_staff=True, last_name=f"担当{n:02d}")
        for n in range(1, AGENTS)
    ]
    for agent in agents:
        agent.groups.add(agent_group)
    agent_ids = [agent.pk for agent in agents]
    category_ids = list(Category.objects.values_list("pk", flat=True))
    default_policy = SlaPolicy.objects.get(channel="", priority="", is_active=True)
    yahoo_policy = SlaPolicy.objects.filter(channel="yahoo", is_active=True).first()
    _key, api_secret = api_key_create(label="bench", scope="read", channels=Channel.values)

    elapsed, _ = time_once(
        lambda: insert_select(
            "crm_customer",
            f"generate_series(1, {customers}) g",
            {
                **search_customer_columns(),
                "email": "'c' || g || '@example.jp'",
                "email_normalized": "'c' || g || '@example.jp'",
                "created_at": "now() - (g % 1000) * interval '1 day'",
                "updated_at": "now()",
            },
        )
    )
    log(f"customers: {customers:,} in {elapsed:.1f} s")
    first_customer = sql("SELECT min(id) FROM crm_customer", fetch=True)[0][0]

    closed = inquiries - open_count
    # Channels by share: email 30%, rakuten 20%, amazon 15%, yahoo 10%,
    # own_site 10%, line 10%, phone 5%. h, k and m are independent hashes of g.
    channel = (
        "CASE WHEN k % 100 < 30 THEN 'email' WHEN k % 100 < 50 THEN 'rakuten'"
        " WHEN k % 100 < 65 THEN 'amazon' WHEN k % 100 < 75 THEN 'yahoo'"
        " WHEN k % 100 < 85 THEN 'own_site' WHEN k % 100 < 95 THEN 'line' ELSE 'phone' END"
    )
    # Open ones: new 20%, open 40%, waiting on the customer 30%, on a third
    # party 10%; the older ones resolved (10%) or closed.
    status = (
        f"CASE WHEN g <= {closed} THEN (CASE WHEN h % 10 = 0 THEN 'resolved' ELSE 'closed' END)"
        " WHEN h % 10 < 2 THEN 'new' WHEN h % 10 < 6 THEN 'open'"
        " WHEN h % 10 < 9 THEN 'waiting_customer' ELSE 'waiting_third_party' END"
    )
    # The open ones arrived over the last 7 days, the rest over the year before.
    created = (
        f"CASE WHEN g <= {closed} THEN now() - interval '7 days'"
        f" - ({closed} - g) * (interval '358 days' / {max(closed, 1)})"
        f" ELSE now() - ({inquiries} - g) * (interval '7 days' / {max(open_count, 1)}) END"
    )
    # Unreplied: every new one and half of the "open" ones; everything else
    # got its first reply 1-30 hours after it came in.
    unreplied = "(s = 'new' OR (s = 'open' AND h % 20 < 10))"
    yahoo = yahoo_policy.pk if yahoo_policy else default_policy.pk
    categories = "(ARRAY[" + ",".join(map(str, category_ids)) + "]::bigint[])"
    assignees = "(ARRAY[" + ",".join(map(str, agent_ids)) + "]::bigint[])"
    inner = (
        f"SELECT g, h, k, m, {channel} AS ch, s, c FROM ("
        f" SELECT g, h, k, m, {status} AS s, {created} AS c FROM ("
        f"  SELECT g, (g * 2654435761) % 1000003 AS h, (g * 40503) % 1000033 AS k,"
        f" (g * 69069) % 999983 AS m FROM generate_series(1::bigint, {inquiries}) g"
        " ) a) b"
    )
    due = "c + CASE WHEN ch = 'yahoo' THEN interval '12 hours' ELSE interval '24 hours' END"
    replied_at = "c + (1 + h % 30) * interval '1 hour'"
    elapsed, _ = time_once(
        lambda: insert_select(
            "tickets_inquiry",
            f"({inner}) x",
            {
                "reference": "'Q-' || (2501 + g / 100000) || '-'"
                " || lpad((g % 100000)::text, 5, '0')",
                "customer_id": f"{first_customer} + (h * 7919) % {customers}",
                "channel": "ch",
                "subject": search_subject_column("m"),
                "category_id": f"CASE WHEN m % 5 = 0 THEN NULL ELSE {categories}"
                f"[1 + (m / 5) % {len(category_ids)}] END",
                "priority": "CASE WHEN (k / 100) % 100 < 5 THEN 'low'"
                " WHEN (k / 100) % 100 < 87 THEN 'normal'"
                " WHEN (k / 100) % 100 < 97 THEN 'high' ELSE 'urgent' END",
                "status": "s",
                "assignee_id": f"CASE WHEN s = 'new' THEN NULL ELSE {assignees}"
                f"[1 + m % {len(agent_ids)}] END",
                "sla_policy_id": f"CASE WHEN ch = 'yahoo' THEN {yahoo}"
                f" ELSE {default_policy.pk} END",
                "first_reply_due_at": due,
                "at_risk_at": f"{due} - interval '4 hours'",
                "first_replied_at": f"CASE WHEN {unreplied} THEN NULL ELSE {replied_at} END",
                "sla_state": f"CASE WHEN NOT {unreplied} THEN (CASE WHEN {replied_at} > {due}"
                " THEN 'breached' ELSE 'met' END)"
                f" WHEN {due} <= now() THEN 'breached'"
                f" WHEN {due} - interval '4 hours' <= now() THEN 'at_risk' ELSE 'on_track' END",
                "triaged_at": "CASE WHEN s = 'new' THEN NULL ELSE c + interval '30 minutes' END",
                "resolved_at": "CASE WHEN s IN ('resolved', 'closed') THEN c + interval '3 days'"
                " END",
                "closed_at": "CASE WHEN s = 'closed' THEN c + interval '10 days' END",
                "last_inbound_at": "c + (h % 3) * interval '2 hours'",
                "last_message_excerpt": "'注文した商品がまだ届きません。11月20日に注文しました。'",
                "last_message_at": "c + (h % 3) * interval '2 hours'",
                "created_at": "c",
                "updated_at": "c + interval '1 hour'",
            },
        )
    )
    log(f"inquiries: {inquiries:,} in {elapsed:.1f} s")
    elapsed, _ = time_once(
        lambda: insert_select(
            "tickets_inquirymessage",
            "tickets_inquiry i",
            {
                "inquiry_id": "i.id",
                "kind": "'inbound'",
                "channel": "i.channel",
                "subject": "i.subject",
                "body_text": search_body_column("i.id"),
                "visible_text": search_body_column("i.id"),
                "message_id": "CASE WHEN i.channel = 'email' THEN '<' || i.reference"
                " || '@mail.example.jp>' ELSE '' END",
                "created_at": "i.created_at",
            },
        )
    )
    log(f"first messages of the inquiries in {elapsed:.1f} s")
    # The bench agent has opened half of the open inquiries; a customer wrote
    # again since on half of those (unread again).
    statuses = ", ".join(f"'{status}'" for status in OPEN_STATUSES)
    elapsed, _ = time_once(
        lambda: insert_select(
            "tickets_inquiryreadstate",
            f"tickets_inquiry i WHERE i.status IN ({statuses}) AND i.id % 2 = 0",
            {
                "inquiry_id": "i.id",
                "user_id": str(bench_agent.pk),
                "seen_inbound_at": "CASE WHEN i.id % 4 = 0 THEN i.last_inbound_at"
                " ELSE i.last_inbound_at - interval '1 hour' END",
                "opened_at": "i.last_inbound_at",
            },
        )
    )
    log(f"the bench agent's read states in {elapsed:.1f} s")
    search_data_build(customers=customers, first_customer=first_customer)
    elapsed, _ = time_once(lambda: sql("VACUUM ANALYZE"))
    log(f"VACUUM ANALYZE in {elapsed:.1f} s; data built in {time.perf_counter() - started:.0f} s")
    return {"api_secret": api_secret, "agent": bench_agent}


def clocks_build() -> None:
    """The next-reply and resolution clocks of the open inquiries (SPEC
    rule 13), set-based: a third of the answered ones owe a next reply, due
    24 hours after the customer wrote again (an hour after the first reply);
    every policy resolves within 72 hours, the clock paused from a day after
    receipt for those waiting on the customer or a third party."""
    started = time.perf_counter()
    sla = (
        "CASE WHEN {due} <= now() THEN 'breached' WHEN {at_risk} <= now() THEN 'at_risk'"
        " ELSE 'on_track' END"
    )
    since = "LEAST(first_replied_at + interval '1 hour', now() - interval '1 minute')"
    sql("UPDATE tickets_slapolicy SET resolution_minutes = 72 * 60")
    sql(
        "UPDATE tickets_inquiry SET next_reply_since = s, next_reply_due_at = s + interval '24h',"
        " next_reply_at_risk_at = s + interval '20h', next_reply_state = "
        + sla.format(due="s + interval '24h'", at_risk="s + interval '20h'")
        + f" FROM (SELECT id AS pk, {since} AS s FROM tickets_inquiry"
        " WHERE first_replied_at IS NOT NULL AND status IN ('new', 'open',"
        " 'waiting_customer', 'waiting_third_party') AND id % 3 = 0) owed WHERE id = pk"
    )
    running = "created_at + interval '72h'"
    sql(
        "UPDATE tickets_inquiry SET resolution_due_at = CASE WHEN w THEN NULL ELSE"
        f" {running} END, resolution_at_risk_at = CASE WHEN w THEN NULL ELSE {running}"
        " - interval '4h' END, resolution_paused_at = CASE WHEN w THEN"
        " LEAST(created_at + interval '1 day', now()) END, resolution_state = "
        + sla.format(due=running, at_risk=f"{running} - interval '4h'")
        + " FROM (SELECT id AS pk, status LIKE 'waiting%%' AS w FROM tickets_inquiry"
        " WHERE status IN ('new', 'open', 'waiting_customer', 'waiting_third_party')) o"
        " WHERE id = pk"
    )
    sql("VACUUM ANALYZE tickets_inquiry")
    log(f"next-reply and resolution clocks in {time.perf_counter() - started:.1f} s")


# --- Search data and cases (issue 18: search that finds) --------------------------------

# Common family and given names with their readings: 1,600 full names, so
# that 「岡田彩」 is one of 125 customers of that name among 200,000.
FAMILY_NAMES = (
    "佐藤サトウ 鈴木スズキ 高橋タカハシ 田中タナカ 伊藤イトウ 渡辺ワタナベ"
    " 山本ヤマモト 中村ナカムラ 小林コバヤシ 加藤カトウ 吉田ヨシダ 山田ヤマダ"
    " 佐々木ササキ 山口ヤマグチ 松本マツモト 井上イノウエ 木村キムラ 林ハヤシ"
    " 斎藤サイトウ 清水シミズ 山崎ヤマザキ 森モリ 池田イケダ 橋本ハシモト"
    " 阿部アベ 石川イシカワ 山下ヤマシタ 中島ナカジマ 石井イシイ 小川オガワ"
    " 前田マエダ 岡田オカダ 長谷川ハセガワ 藤田フジタ 後藤ゴトウ 近藤コンドウ"
    " 村上ムラカミ 遠藤エンドウ 青木アオキ 坂本サカモト"
)
GIVEN_NAMES = (
    "彩アヤ 花子ハナコ 太郎タロウ 健ケン 陽菜ヒナ 結衣ユイ"
    " 翔ショウ 大輔ダイスケ 美咲ミサキ 直樹ナオキ 恵メグミ 誠マコト"
    " 由美ユミ 拓也タクヤ 愛アイ 学マナブ 真由美マユミ 健一ケンイチ"
    " 桜サクラ 浩ヒロシ 裕子ユウコ 隆タカシ 明美アケミ 蓮レン"
    " 葵アオイ 悠人ユウト 千尋チヒロ 修オサム 綾香アヤカ 優子ユウコ"
    " 亮リョウ 久美子クミコ 聡サトシ 舞マイ 和也カズヤ 奈々ナナ"
    " 剛ツヨシ 智子トモコ 大樹ダイキ 香織カオリ"
)
SUBJECTS = (
    "注文した商品がまだ届きません",
    "返品したい",
    "交換をお願いします",
    "注文をキャンセルしたい",
    "領収書の発行について",
    "配送先を変更したい",
    "湯呑みが割れていました",
    "サイズが合いません",
    "ギフト包装について",
    "ポイントが付与されていません",
    "支払い方法の変更",
    "請求額が違います",
    "商品の在庫について",
    "再入荷の予定",
    "不良品が届きました",
    "届いた色が違います",
    "お届け日の指定",
    "定期便の解約",
    "会員情報の変更",
    "クーポンが使えません",
)
BODIES = (
    "11月20日に注文した商品がまだ届きません。いつ届きますか？",
    "届いた湯呑みにひびが入っていました。交換をお願いできますか。",
    "サイズが合わなかったので返品したいです。手続きを教えてください。",
    "間違えて注文してしまいました。キャンセルをお願いします。",
    "会社宛ての領収書を発行していただけますか。宛名は株式会社です。",
    "引っ越したので配送先を変更したいです。",
    "ギフト包装とのし紙をお願いしたいのですが可能でしょうか。",
    "楽天ポイントが付与されていないようです。確認をお願いします。",
    "注文した色と違う商品が届きました。波佐見焼の青を注文しました。",
    "定期便を解約したいです。次回の発送を止めてください。",
    "クーポンコードを入力してもエラーになります。",
    "再入荷のお知らせはいつ頃になりますか。",
)


def _names_array(names: str, part: int) -> str:
    """A SQL array of the kanji (part 0) or kana (part 1) of `names`."""
    values = []
    for name in names.split():
        split = next(i for i, ch in enumerate(name) if "\u30a0" <= ch <= "\u30ff")
        values.append((name[:split], name[split:])[part])
    return "(ARRAY[" + ",".join(f"'{value}'" for value in values) + "])"


def _pick(values: tuple[str, ...], key: str) -> str:
    return "(ARRAY[" + ",".join(f"'{v}'" for v in values) + f"])[1 + ({key}) % {len(values)}]"


def search_customer_columns() -> dict[str, str]:
    """The customers' names and readings (from FAMILY_NAMES x GIVEN_NAMES),
    their search keys as crm.normalize.name_search_key folds them (the
    names are already folded: kanji, katakana, no spaces) and a mobile
    number, as column expressions of generate_series(1, n) g."""
    family = f"{_names_array(FAMILY_NAMES, 0)}[1 + g % 40]"
    given = f"{_names_array(GIVEN_NAMES, 0)}[1 + (g / 40) % 40]"
    family_kana = f"{_names_array(FAMILY_NAMES, 1)}[1 + g % 40]"
    given_kana = f"{_names_array(GIVEN_NAMES, 1)}[1 + (g / 40) % 40]"
    digits = "lpad(((g::bigint * 7919) % 100000000)::text, 8, '0')"
    return {
        "family_name": family,
        "given_name": given,
        "family_name_kana": family_kana,
        "given_name_kana": given_kana,
        "search_name": f"{family} || {given}",
        "search_kana": f"{family_kana} || {given_kana}",
        "phone": f"'090-' || substr({digits}, 1, 4) || '-' || substr({digits}, 5, 4)",
        "phone_normalized": f"'090' || {digits}",
    }


def search_subject_column(key: str) -> str:
    return _pick(SUBJECTS, key)


# What the messages are about: 100 products (a craft and an item), each in
# 1 % of them.
CRAFTS = (
    "波佐見焼",
    "有田焼",
    "九谷焼",
    "益子焼",
    "美濃焼",
    "信楽焼",
    "萩焼",
    "備前焼",
    "清水焼",
    "砥部焼",
)
ITEMS = ("湯呑み", "急須", "茶碗", "マグカップ", "平皿", "小鉢", "徳利", "花瓶", "箸置き", "土鍋")


def search_body_column(key: str) -> str:
    """A customer's message: the product it is about, then one of BODIES."""
    return (
        f"{_pick(CRAFTS, key)} || 'の' || {_pick(ITEMS, f'({key}) / 10')} || 'について。'"
        f" || {_pick(BODIES, f'({key}) / 100')}"
    )


ORDERS_PER_CUSTOMER = 2
# Amazon's order number: 3-7-7 digits; the last 7 are g * 104729 mod 10^7,
# a different number for every order.
ORDER_NUMBER = (
    "lpad(((g * 37) % 1000)::text, 3, '0') || '-' || lpad(((g * 7919) % 10000000)::text, 7, '0')"
    " || '-' || lpad(((g * 104729) % 10000000)::text, 7, '0')"
)


def search_data_build(*, customers: int, first_customer: int) -> None:
    """Two Amazon orders a customer (the messages of the inquiries carry
    the customer's words: search_body_column)."""
    orders = customers * ORDERS_PER_CUSTOMER
    elapsed, _ = time_once(
        lambda: insert_select(
            "crm_order",
            f"generate_series(1::bigint, {orders}) g",
            {
                "channel": "'amazon'",
                "order_number": ORDER_NUMBER,
                "customer_id": f"{first_customer} + g % {customers}",
                "status": "'delivered'",
                "ordered_at": "now() - (g % 700) * interval '1 day'",
                "total": "1000 + (g * 31) % 30000",
                "created_at": "now()",
                "updated_at": "now()",
            },
        )
    )
    log(f"orders: {orders:,} in {elapsed:.1f} s")


def search_cases() -> list[tuple[str, str, str, dict]]:
    """The searches measured, in the inbox (open inquiries, the default,
    and all) and the customer list, each term one that exists in the data."""
    from urllib.parse import quote

    order = sql("SELECT order_number FROM crm_order ORDER BY id LIMIT 1 OFFSET 4242", fetch=True)
    order_digits = order[0][0][-7:]
    phone = sql(
        "SELECT phone_normalized FROM crm_customer WHERE phone_normalized <> '' LIMIT 1 OFFSET 777",
        fetch=True,
    )[0][0]
    inbox, customers = "/admin/tickets/inquiry/", "/admin/crm/customer/"
    searches = [
        ("name without space 岡田彩", inbox, "岡田彩", ""),
        ("name without space 岡田彩, all statuses", inbox, "岡田彩", "&status=all"),
        ("kana おかだあや, all statuses", inbox, "おかだあや", "&status=all"),
        ("two characters 岡田, all statuses", inbox, "岡田", "&status=all"),
        (f"order number digits {order_digits}", inbox, order_digits, "&status=all"),
        ("reference digits 00032", inbox, "00032", "&status=all"),
        ("message words 益子焼の土鍋 (1 %)", inbox, "益子焼の土鍋", ""),
        ("message words 益子焼の土鍋 (1 %), all statuses", inbox, "益子焼の土鍋", "&status=all"),
        ("message words 土鍋 (2 characters, 10 %)", inbox, "土鍋", ""),
        ("message words 返品 (2 characters, 13 %), all statuses", inbox, "返品", "&status=all"),
        ("email C4242@EXAMPLE.JP", inbox, "C4242@EXAMPLE.JP", "&status=all"),
        (f"phone last digits {phone[-8:]}", inbox, phone[-8:], "&status=all"),
        ("customers: name 岡田彩", customers, "岡田彩", ""),
        ("customers: kana ｵｶﾀﾞ", customers, "ｵｶﾀﾞ", ""),
        (f"customers: order number digits {order_digits}", customers, order_digits, ""),
        (f"customers: phone {phone}", customers, phone, ""),
    ]
    return [
        ("search", f"search: {name}", f"{path}?q={quote(term)}{extra}", {})
        for name, path, term, extra in searches
    ]


# --- Capturing a page's SQL in process -------------------------------------------------


def page_queries(client, path: str, headers: dict[str, str]) -> list[tuple[str, float]]:
    """The SQL of one in-process request: (sql, seconds) in order."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"{path}: HTTP {response.status_code}")
    return [(query["sql"], float(query["time"])) for query in captured.captured_queries]


def row_query(queries: list[tuple[str, float]]) -> str:
    """The page's rows: the first SELECT of inquiry rows (with LIMIT when
    there is more than one page); for the inbox's news poll, which has no
    rows, its count."""
    for statement, _seconds in queries:
        if statement.startswith(('SELECT "tickets_inquiry"."id"', 'SELECT "crm_customer"."id"')):
            return statement
    for statement, _seconds in queries:
        if statement.startswith("SELECT COUNT(") and '"tickets_inquiry"' in statement:
            return statement
    raise RuntimeError("no row query found in:\n" + "\n".join(q for q, _s in queries))


def time_sql(statements: list[str], *, repeat: int, warmup: int) -> list[float]:
    """A raw cursor, the statements as captured one after the other, every
    row fetched; one sample per pass over all of them."""
    from django.db import connection

    samples = []
    with connection.cursor() as cursor:
        for index in range(warmup + repeat):
            start = time.perf_counter()
            for statement in statements:
                cursor.execute(statement)
                cursor.fetchall()
            if index >= warmup:
                samples.append(time.perf_counter() - start)
    return samples


def explain(statement: str) -> list[str]:
    rows = sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", fetch=True)
    return [row[0] for row in rows]


# --- gunicorn --------------------------------------------------------------------------


class HttpClient:
    """One keep-alive connection; cookies kept by name."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=30)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, *, body=None, headers=None) -> tuple[int, bytes]:
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _sep, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, data

    def login(self, username: str, password: str) -> None:
        status, _ = self.request("GET", "/admin/login/")
        body = urlencode(
            {
                "csrfmiddlewaretoken": self.cookies["csrftoken"],
                "username": username,
                "password": password,
                "next": "/admin/",
            }
        )
        status, _ = self.request(
            "POST",
            "/admin/login/",
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"login failed: HTTP {status}")

    def timed(self, path: str, headers: dict[str, str], *, repeat: int, warmup: int):
        samples = []
        for index in range(warmup + repeat):
            start = time.perf_counter()
            status, data = self.request("GET", path, headers=headers)
            elapsed = time.perf_counter() - start
            if status != 200:
                raise RuntimeError(f"{path}: HTTP {status}: {data[:200]!r}")
            if index >= warmup:
                samples.append(elapsed)
        return samples, data


def measure_http(cases, captured, *, args):
    """Each case through gunicorn, next to its bare row query and to all of
    its SQL replayed on a raw cursor."""
    rows, details = [], []
    process = None
    try:
        port = free_port()
        process = gunicorn_start(
            port,
            env={"ADMIN_REQUIRE_OTP": "false"},
            options=["--worker-class=gthread", "--threads=2"],
        )
        http_client = HttpClient(port)
        http_client.login(BENCH_AGENT, BENCH_PASSWORD)
        db_cpu = ServerCpu(sql("SELECT pg_backend_pid()", fetch=True)[0][0])
        for kind, name, path, headers in cases:
            app_before = process_tree_cpu(process.pid)
            db_before = db_cpu.total() if db_cpu.available else 0.0
            samples, body = http_client.timed(path, headers, repeat=args.repeat, warmup=args.warmup)
            requests = args.repeat + args.warmup
            app = (process_tree_cpu(process.pid) - app_before) / requests
            db = ((db_cpu.total() - db_before) / requests) if db_cpu.available else float("nan")
            bare_sql = row_query(captured[name])
            bare = time_sql([bare_sql], repeat=args.repeat, warmup=args.warmup)
            every = time_sql(
                [statement for statement, _s in captured[name]],
                repeat=args.repeat,
                warmup=args.warmup,
            )
            p95 = percentile(samples, 95)
            target = TARGETS_MS[kind]
            shown = (
                len(json.loads(body)["results"])
                if kind == "api"
                else body.decode().count('name="_selected_action"')
            )
            rows.append(
                [
                    name,
                    shown,
                    len(captured[name]),
                    ms(percentile(samples, 50)),
                    ms(p95),
                    ms(percentile(bare, 50)),
                    ms(percentile(bare, 95)),
                    ms(percentile(every, 50)),
                    ms(app),
                    ms(db),
                    f"< {target:.0f}",
                    "pass" if p95 * 1000 < target else "MISS",
                    f"{os.getloadavg()[0]:.1f}",
                ]
            )
            slowest = max(captured[name], key=lambda item: item[1])[0]
            plans = [("rows", explain(bare_sql))]
            if slowest != bare_sql:
                plans.append(("slowest", explain(slowest)))
            details.append((name, captured[name], plans))
    finally:
        gunicorn_stop(process)
    return rows, details


def server_settings() -> str:
    """What gunicorn runs with: the same settings module as this process."""
    from django.conf import settings
    from django.template import engines

    loaders = engines["django"].engine.loaders
    max_age = settings.DATABASES["default"]["CONN_MAX_AGE"]
    return (
        f"{os.environ['DJANGO_SETTINGS_MODULE']}, DEBUG={settings.DEBUG},"
        f" template loaders {loaders!r}, CONN_MAX_AGE={max_age}"
    )


# --- Main --------------------------------------------------------------------------------


def ms(value: float) -> str:
    return f"{value * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inquiries", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=50_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument(
        "--only",
        choices=["all", "pages", "watch"],
        default="all",
        help="on the same data, pages: the API, inbox and poll pages and the watch (no"
        " search); watch: the SLA watch alone",
    )
    args = parser.parse_args()
    args.open = min(args.open, args.inquiries)

    django_setup()
    migrate()
    from django.db import connection
    from django.db.models import Q
    from django.test import Client
    from django.utils import timezone

    from tickets.models import Inquiry, InquiryEvent, StaffNotification
    from tickets.services import sla_watch

    load_before = os.getloadavg()
    data = build(inquiries=args.inquiries, open_count=args.open, customers=args.customers)
    api_headers = {"Authorization": f"Bearer {data['api_secret']}"}
    cases = [
        ("api", "api list", "/api/v1/inquiries/", api_headers),
        (
            "api",
            "api list ?status=open&sla_state=at_risk",
            "/api/v1/inquiries/?status=open&sla_state=at_risk",
            api_headers,
        ),
        ("inbox", "inbox default (open)", "/admin/tickets/inquiry/", {}),
        ("inbox", "inbox ?assignee=mine", "/admin/tickets/inquiry/?assignee=mine", {}),
        ("inbox", "inbox ?sla=at_risk", "/admin/tickets/inquiry/?sla=at_risk", {}),
        (
            "inbox",
            "inbox ?channel__exact=email",
            "/admin/tickets/inquiry/?channel__exact=email",
            {},
        ),
        (
            "inbox",
            "inbox news poll",
            "/admin/tickets/inquiry/inbox-news/?"
            + urlencode({"since": (timezone.now() - timedelta(hours=1)).isoformat()}),
            {},
        ),
    ]

    if args.only == "all":
        cases += search_cases()
    elif args.only == "watch":
        cases = []

    # The SQL of every page, from one in-process request each.
    client = Client()
    client.force_login(data["agent"])
    captured = {}
    for _kind, name, path, headers in cases:
        page_queries(client, path, headers)  # warm caches (permissions, content types)
        captured[name] = page_queries(client, path, headers)
    connection.close()  # gunicorn forks with none of ours

    rows, details = measure_http(cases, captured, args=args) if cases else ([], [])
    # The SLA watch, in process: `now` one hour ahead crosses the thresholds
    # of the clocks due in the next hour (several hundred at this volume).
    from tickets.services.sla import CLOCKS

    clocks_build()
    now = timezone.now()
    later = now + timedelta(hours=1)
    statuses = ", ".join(f"'{status}'" for status in OPEN_STATUSES)
    # Bare: each clock's due rows (the watch's own condition, on its partial
    # indexes), and for a crossing run the UPDATE of those rows alone, in a
    # transaction rolled back; no events, notifications or task.
    bare_statements = [
        (
            f"SELECT id FROM tickets_inquiry WHERE {clock.stopped} IS NULL"
            f" AND status IN ({statuses}) AND (({clock.state} IN ('on_track', 'at_risk')"
            f" AND {clock.due} <= %(at)s) OR ({clock.state} = 'on_track'"
            f" AND {clock.at_risk} <= %(at)s)) LIMIT 1000",
            f"UPDATE tickets_inquiry SET updated_at = %(at)s, {clock.state} = CASE WHEN"
            f" {clock.due} <= %(at)s THEN 'breached' ELSE 'at_risk' END WHERE id = ANY(%(ids)s)",
        )
        for clock in CLOCKS.values()
    ]

    def bare_watch(at) -> int:
        from django.db import transaction

        moved = 0
        with transaction.atomic():
            for bare_select, bare_update in bare_statements:
                ids = [row[0] for row in sql(bare_select, {"at": at}, fetch=True)]
                if ids:
                    sql(bare_update, {"at": at, "ids": ids})
                moved += len(ids)
            transaction.set_rollback(True)
        return moved

    # Each clock's rows that a run moves, with their state before it.
    before = {}
    for clock in CLOCKS.values():
        running = Inquiry.objects.filter(
            **{f"{clock.stopped}__isnull": True}, status__in=OPEN_STATUSES
        )
        before[clock.state] = list(
            running.filter(
                Q(**{f"{clock.state}__in": ["on_track", "at_risk"], f"{clock.due}__lte": later})
                | Q(**{clock.state: "on_track", f"{clock.at_risk}__lte": later})
            ).values_list("id", clock.state)
        )
    changing = sorted({pk for rows in before.values() for pk, _state in rows})

    def reset() -> None:
        """Put back (untimed) what a run moved, its events and notifications."""
        for column, rows in before.items():
            for state in ("on_track", "at_risk"):
                ids = [pk for pk, old in rows if old == state]
                Inquiry.objects.filter(pk__in=ids).update(**{column: state})
        InquiryEvent.objects.filter(
            inquiry_id__in=changing, kind__in=[clock.event for clock in CLOCKS.values()]
        ).delete()
        StaffNotification.objects.filter(inquiry_id__in=changing).delete()

    sla_runs, moved = [], {}
    for _ in range(max(20, args.repeat // 2)):
        reset()
        elapsed, moved = time_once(lambda: sla_watch(now=later))
        sla_runs.append(elapsed)
    reset()
    bare_changing = [time_once(lambda: bare_watch(later))[0] for _ in range(args.repeat)]
    sla_watch(now=later)
    idle_runs = [time_once(lambda: sla_watch(now=later))[0] for _ in range(args.repeat)]
    bare_idle = [time_once(lambda: bare_watch(later))[0] for _ in range(args.repeat)]
    crossing = sum(len(rows) for rows in before.values())
    for name, samples, bare, note in (
        (
            f"sla watch, {moved.get('at_risk', 0)} at risk + {moved.get('breached', 0)} breached",
            sla_runs,
            bare_changing,
            "bare: 3 selects + UPDATEs",
        ),
        ("sla watch, nothing changes", idle_runs, bare_idle, "bare: its 3 selects"),
    ):
        p95 = percentile(samples, 95)
        rows.append(
            [
                name,
                crossing if "nothing" not in name else 0,
                note,
                ms(percentile(samples, 50)),
                ms(p95),
                ms(percentile(bare, 50)),
                ms(percentile(bare, 95)),
                "",
                "",
                "",
                f"< {TARGETS_MS['sla']:.0f}",
                "pass" if p95 * 1000 < TARGETS_MS["sla"] else "MISS",
                f"{os.getloadavg()[0]:.1f}",
            ]
        )

    print(
        f"\n{args.inquiries:,} inquiries ({args.open:,} open), {args.customers:,} customers,"
        f" {AGENTS} agents; HTTP through gunicorn (2 gthread workers, DEBUG false) on"
        f" 127.0.0.1, {args.repeat} requests per figure after {args.warmup} warm-up;"
        " bare = the page's row query on a raw cursor; all SQL = every query of the page"
        " replayed on a raw cursor; app CPU / db CPU = CPU time of gunicorn's processes /"
        " of PostgreSQL's per request (warm-up included), which the load inflates far less"
        " than wall time; load = 1-min load average after the figure. Times in ms."
    )
    print(f"Server settings: {server_settings()}")
    print(
        f"{os.cpu_count()} CPUs; load average (1 min) {load_before[0]:.1f} before the build,"
        f" {os.getloadavg()[0]:.1f} at the end: other work on the machine inflates the"
        " figures.\n"
    )
    print(
        table(
            [
                "figure",
                "rows",
                "queries",
                "median",
                "p95",
                "bare med",
                "bare p95",
                "all SQL med",
                "app CPU",
                "db CPU",
                "target p95",
                "result",
                "load",
            ],
            rows,
        )
    )
    print("\nSQL of each page (time of the in-process capture, ms):")
    for name, queries, plans in details:
        print(f"\n== {name}")
        for statement, seconds in queries:
            short = re.sub(r"\s+", " ", statement)
            print(f"  {seconds * 1000:7.1f}  {short[:150]}")
        for label, lines in plans:
            print(f"  -- EXPLAIN ANALYZE ({label}):")
            for line in lines:
                print(f"     {line}")


if __name__ == "__main__":
    main()
