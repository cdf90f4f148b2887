"""What the inbox benchmarks measure with (bench/inbox.py, bench/inbox_search.py):
a page's SQL captured from one in-process request, its bare row query and
all of its SQL replayed on a raw cursor, the pages through gunicorn (2
gthread workers, bench settings) with one keep-alive client, and the
table and EXPLAIN ANALYZE they print."""

from __future__ import annotations

import http.client
import json
import os
import re
import time
from urllib.parse import urlencode

from bench.common import (
    HOST,
    ServerCpu,
    free_port,
    gunicorn_start,
    gunicorn_stop,
    percentile,
    process_tree_cpu,
    sql,
    table,
)
from bench.inbox_data import AGENTS, BENCH_AGENT, BENCH_PASSWORD

TARGETS_MS = {"api": 50.0, "inbox": 150.0, "sla": 200.0, "search": 150.0}

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
    rows, its count; for a search whose customers' query found no one and
    left nothing to ask of the inquiries, that query."""
    for statement, _seconds in queries:
        if statement.startswith(('SELECT "tickets_inquiry"."id"', 'SELECT "crm_customer"."id"')):
            return statement
    for statement, _seconds in queries:
        if statement.startswith("SELECT COUNT(") and '"tickets_inquiry"' in statement:
            return statement
    for statement, _seconds in queries:
        if statement.startswith('(SELECT "crm_customer"."id"'):
            return statement
    raise RuntimeError("no row query found in:\n" + "\n".join(q for q, _s in queries))


# The page's transaction control (a search's custom plans: BEGIN, SET LOCAL,
# COMMIT) is not the page's SQL; a replayed literal statement is planned for
# its own values anyway.
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET LOCAL")


def is_control(statement: str) -> bool:
    return statement.lstrip().upper().startswith(CONTROL)


def time_sql(statements: list[str], *, repeat: int, warmup: int) -> list[float]:
    """A raw cursor, the statements as captured one after the other, every
    row fetched; one sample per pass over all of them."""
    from django.db import connection

    statements = [s for s in statements if not is_control(s)]
    samples = []
    with connection.cursor() as cursor:
        for index in range(warmup + repeat):
            start = time.perf_counter()
            for statement in statements:
                cursor.execute(statement)
                if cursor.description is not None:
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
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # gunicorn closes a keep-alive connection idle for 2 s (the bare
            # SQL replays between two pages): a new one, the same request.
            self.connection.close()
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


def bench_arguments(parser) -> None:
    """The options both inbox benchmarks take: the data's size, the samples."""
    parser.add_argument("--inquiries", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=50_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)


def measure_pages(cases, *, agent, args):
    """The SQL of every page from one in-process request each as `agent`,
    then every page through gunicorn (measure_http): (rows, details)."""
    if not cases:
        return [], []
    from django.db import connection
    from django.test import Client

    client = Client()
    client.force_login(agent)
    captured = {}
    for _kind, name, path, headers in cases:
        page_queries(client, path, headers)  # warm caches (permissions, content types)
        captured[name] = page_queries(client, path, headers)
    connection.close()  # gunicorn forks with none of ours
    return measure_http(cases, captured, args=args)


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
            slowest = max(
                (item for item in captured[name] if not is_control(item[0])),
                key=lambda item: item[1],
            )[0]
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


# --- Report --------------------------------------------------------------------------


def ms(value: float) -> str:
    return f"{value * 1000:.1f}"


def report(rows, details, *, args, load_before) -> None:
    """The table of figures, then each page's SQL and plans."""
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
