"""The data of the inbox benchmarks (bench/inbox.py: the pages and the SLA
watch; bench/inbox_search.py: the search box), built in PostgreSQL with
server-side INSERT ... SELECT FROM generate_series (no ORM per row):
1,000,000 inquiries (50,000 open) for 200,000 customers and 20 agents,
the first customer message of every inquiry, the bench agent's read
states, two Amazon orders a customer; then VACUUM ANALYZE.

The customers have common Japanese names and readings (40 family x 40
given names: 「岡田彩」 is one of 125 customers of that name) and a mobile
number; the subjects and messages are in a shop's words, each message
naming one of 100 products (「益子焼の土鍋」 in 1 % of them, 「土鍋」 in
10 %), so that both benchmarks search realistic text.
"""

from __future__ import annotations

import time

from bench.common import log, sql, time_once

AGENTS = 20
BENCH_AGENT = "bench-agent"
BENCH_PASSWORD = "bench-agent-pw-2611"
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
                # The subject and the first message, folded (tickets.search.
                # search_fold); the message below takes its text from here.
                "search_text": f"lower(normalize({search_subject_column('m')} || E'\\n'"
                f" || {search_body_column('g')}, NFKC))",
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
                "body_text": "split_part(i.search_text, E'\\n', 2)",
                "visible_text": "split_part(i.search_text, E'\\n', 2)",
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
