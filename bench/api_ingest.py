"""Benchmark: order ingest over real HTTP, POST /api/v1/orders/ against a
bare DRF endpoint doing the essential writes.

Starts gunicorn (2 gthread workers x 4 threads: keep-alive connections,
and one thread runs while another waits for PostgreSQL; `--worker-class
sync` to compare) on a free 127.0.0.1 port, serving Django with bench
settings against $DATABASE_URL, and drives it
with keep-alive HTTP connections from client threads, for a bounded number
of seconds per round, alternating:

  ping   /bench/ping/, a plain Django view: the ceiling of the load
         generator + gunicorn on this machine (the client is not the
         bottleneck if this is far above the order rates)
  bare   /bench/bare-order/ (bench/urls.py): same payload, plain Serializer,
         one Order insert + one bulk insert of its lines
  real   /api/v1/orders/: API-key auth, Idempotency-Key, customer
         resolution (70% returning customers, 30% new), order upsert,
         lifecycle metrics, the full response

It prints requests/s, p50/p95 latency and errors for each, the ratio
real / bare (target: at least 0.50), then counts the SQL queries of one
order POST (new and returning customer) and profiles where the time goes,
in process with django.test.Client. It prints numbers; it is not a
pass/fail test.

Run (the figures in bench/README.md come from exactly this command):

    scripts/with-postgres.sh .venv/bin/python bench/api_ingest.py

(`make bench-api` is the same.) Only 127.0.0.1 is ever contacted; every
round stops by itself; gunicorn is always stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api_ingest_data import NEW_SHARE, RETURNING_CUSTOMERS, api_key, order_payload, seed
from bench.api_ingest_profile import profile_in_process
from bench.common import (
    HOST,
    ServerCpu,
    Steal,
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
)

# --- Server --------------------------------------------------------------------


# --- Load ----------------------------------------------------------------------


@dataclass
class Result:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    client_cpu: float = 0.0
    app_cpu: float = 0.0  # gunicorn's CPU seconds during the round
    db_cpu: float = 0.0  # the PostgreSQL server's
    steal: str = ""  # the CPU time the host gave other guests meanwhile

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def drive(
    name: str,
    port: int,
    path: str,
    *,
    seconds: float,
    clients: int,
    token: str = "",
    tag: str = "",
    max_requests: int = 100_000,
) -> Result:
    """`clients` threads, each with one keep-alive connection, POST (or GET
    for ping) as fast as answers come, until `seconds` pass or
    `max_requests` were sent. Every socket has a timeout."""
    result = Result(name)
    lock = threading.Lock()
    sent = [0]
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        rng = random.Random(f"{tag}-{index}")
        connection = http.client.HTTPConnection(HOST, port, timeout=30)
        latencies, errors, statuses = [], 0, {}
        number = 0
        while time.monotonic() < deadline:
            with lock:
                if sent[0] >= max_requests:
                    break
                sent[0] += 1
            number += 1
            headers = {}
            if path.endswith("ping/"):
                method, body = "GET", None
            else:
                method = "POST"
                body = json.dumps(order_payload(f"{tag}{index}", number, rng)).encode()
                headers = {
                    "Content-Type": "application/json",
                    "Idempotency-Key": str(uuid.uuid4()),
                }
                if token:
                    headers["Authorization"] = f"Bearer {token}"
            start = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                connection.close()
                continue
            elapsed = time.perf_counter() - start
            statuses[response.status] = statuses.get(response.status, 0) + 1
            if response.status >= 300:
                errors += 1
            else:
                latencies.append(elapsed)
        connection.close()
        with lock:
            result.latencies += latencies
            result.errors += errors
            for code, count in statuses.items():
                result.statuses[code] = result.statuses.get(code, 0) + count

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    result.seconds = time.perf_counter() - wall_start
    result.client_cpu = time.process_time() - cpu_start
    return result


# --- Main ----------------------------------------------------------------------


def summary(result: Result) -> list[object]:
    requests = len(result.latencies) + result.errors
    return [
        result.name,
        len(result.latencies),
        f"{result.rate:.1f}",
        f"{percentile(result.latencies, 50) * 1000:.1f}",
        f"{percentile(result.latencies, 95) * 1000:.1f}",
        result.errors,
        f"{result.client_cpu / result.seconds:.0%}",
        f"{result.app_cpu / requests * 1000:.2f}" if requests else "-",
        f"{result.db_cpu / requests * 1000:.2f}" if requests else "-",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8, help="per round and endpoint")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8, help="client threads")
    parser.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"])
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--profile-orders", type=int, default=100)
    args = parser.parse_args()

    django_setup()
    from django.db import connection

    migrate()
    log(f"Seeding {RETURNING_CUSTOMERS:,} returning customers...")
    bare_customer = seed(RETURNING_CUSTOMERS)
    token = api_key()
    db_cpu = ServerCpu(sql("SELECT pg_backend_pid()", fetch=True)[0][0])
    connection.close()  # the load runs in gunicorn; keep no idle session here

    port = free_port()
    results: dict[str, list[Result]] = {"ping": [], "bare": [], "real": []}
    server = None
    try:
        server = gunicorn_start(
            port,
            env={"BENCH_BARE_CUSTOMER_ID": str(bare_customer)},
            options=[
                f"--worker-class={args.worker_class}",
                f"--threads={args.threads}",
                "--backlog=256",
            ],
        )
        log(f"gunicorn {args.worker_class} 2 workers x {args.threads} threads on {HOST}:{port}")
        endpoints = {
            "ping": ("/bench/ping/", ""),
            "bare": ("/bench/bare-order/", ""),
            "real": ("/api/v1/orders/", token),
        }
        for name, (path, key) in endpoints.items():  # warm-up: connections, caches
            drive(
                f"warm-{name}",
                port,
                path,
                seconds=2,
                clients=args.clients,
                token=key,
                tag=f"w{name}",
            )
        for round_ in range(args.rounds):
            for name, (path, key) in endpoints.items():
                app_before, db_before = process_tree_cpu(server.pid), db_cpu.total()
                steal = Steal()
                result = drive(
                    name,
                    port,
                    path,
                    seconds=args.seconds,
                    clients=args.clients,
                    token=key,
                    tag=f"r{round_}{name}",
                )
                result.app_cpu = process_tree_cpu(server.pid) - app_before
                result.db_cpu = db_cpu.total() - db_before
                result.steal = steal.text()
                results[name].append(result)
                log(
                    f"  round {round_ + 1} {name}: {result.rate:.1f} req/s, "
                    f"{result.errors} errors {result.statuses}, {result.steal}"
                )
    finally:
        gunicorn_stop(server)

    log("Counting queries and profiling in process...")
    queries, profile = profile_in_process(token, args.profile_orders)

    rows = []
    for name, runs in results.items():
        merged = Result(
            f"{name} ({len(runs)} x {args.seconds:.0f} s)",
            seconds=sum(r.seconds for r in runs),
            latencies=[x for r in runs for x in r.latencies],
            errors=sum(r.errors for r in runs),
            client_cpu=sum(r.client_cpu for r in runs),
            app_cpu=sum(r.app_cpu for r in runs),
            db_cpu=sum(r.db_cpu for r in runs),
        )
        rows.append(summary(merged))
    ratios = [
        real.rate / bare.rate for real, bare in zip(results["real"], results["bare"], strict=True)
    ]
    print()
    print(
        f"order ingest over HTTP — gunicorn {args.worker_class}, 2 workers x {args.threads} "
        f"threads; {args.clients} keep-alive client threads; {os.cpu_count()} CPUs; "
        f"{RETURNING_CUSTOMERS:,} customers seeded, {NEW_SHARE:.0%} of orders from new customers"
    )
    print()
    print(
        table(
            [
                "endpoint",
                "requests",
                "req/s",
                "p50 ms",
                "p95 ms",
                "errors",
                "client CPU",
                "gunicorn CPU ms/req",
                "PostgreSQL CPU ms/req",
            ],
            rows,
        )
    )
    print()
    print(
        f"real / bare: {statistics.median(ratios):.2f} (median of rounds: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + "; target ≥ 0.50)"
    )
    print(
        "rounds, steal of each (bare, real): "
        + "; ".join(
            f"{bare.steal}, {real.steal}"
            for real, bare in zip(results["real"], results["bare"], strict=True)
        )
    )
    cpu = {
        name: sum(r.app_cpu + r.db_cpu for r in runs)
        / sum(len(r.latencies) + r.errors for r in runs)
        for name, runs in results.items()
        if name != "ping"
    }
    print(
        f"CPU per request, bare ÷ real: {cpu['bare'] / cpu['real']:.2f} (gunicorn + PostgreSQL; "
        "the rate ratio a quiet 2-core machine would give, less sensitive to steal)"
    )
    print("client CPU: the load generator's CPU time ÷ wall time (1 core = 100%);")
    print("CPU ms/req: CPU time of gunicorn (master and workers) and of the PostgreSQL")
    print("server (all its processes) during the rounds, per request")
    print()
    for label, lines in queries:
        savepoints = sum("SAVEPOINT" in line for line in lines)
        print(
            f"SQL of one order POST, {label}: {len(lines)} statements "
            f"({savepoints} of them SAVEPOINT/RELEASE), plus BEGIN and COMMIT"
        )
        for line in lines:
            print("  " + line)
        print()
    print(
        f"Where the time goes, in process (cProfile, {args.profile_orders} orders; "
        "cumulative, steps overlap):"
    )
    print(table(["step", "ms / order", "share"], profile))


if __name__ == "__main__":
    main()
