"""Where the time of one order POST goes: the request run in process under
cProfile, the time of named steps (authentication, idempotency, the
services, serialization, SQL) read from the profile and a query timer.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import random
import time
import uuid

from bench.api_ingest_data import order_payload

# --- Profile -------------------------------------------------------------------


PROFILED_STEPS = [
    ("API key authentication", "core/api/auth.py", "authenticate"),
    ("idempotency: whole wrapper", "core/api/idempotency.py", "idempotent_response"),
    ("request body validation", "rest_framework/serializers.py", "is_valid"),
    ("customer_upsert", "crm/services/customers.py", "customer_upsert"),
    ("  customer_resolve", "crm/services/customers.py", "customer_resolve"),
    ("order_upsert", "crm/services/orders.py", "order_upsert"),
    ("  Model.full_clean", "django/db/models/base.py", "full_clean"),
    ("  lifecycle_recompute", "crm/services/lifecycle.py", "lifecycle_recompute"),
    ("order lines for the response", "django/db/models/query.py", "prefetch_related_objects"),
    ("response serialization", "rest_framework/serializers.py", "data"),
    ("all SQL execution", "django/db/backends/utils.py", "_execute"),
]


class QueryTimer:
    """An execute_wrapper: each SQL statement with its own duration."""

    def __init__(self) -> None:
        self.queries: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((time.perf_counter() - start, " ".join(sql.split())))

    def lines(self) -> list[str]:
        return [f"{seconds * 1000:6.2f} ms  {sql[:110]}" for seconds, sql in self.queries]


def profile_in_process(token: str, count: int) -> tuple[list[tuple[str, list[str]]], list]:
    """Query lists for one new-customer and one returning-customer order,
    then a cProfile of `count` orders: cumulative time of each step."""
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    rng = random.Random("profile")

    def post(payload: dict):
        return client.post(
            "/api/v1/orders/",
            data=json.dumps(payload),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )

    samples = []
    for label, share in (("new customer", 1.0), ("returning customer", 0.0)):
        payload = order_payload("qc", len(samples), rng, new_share=share)
        timer = QueryTimer()
        with connection.execute_wrapper(timer):
            response = post(payload)
        assert response.status_code == 201, response.content
        samples.append((label, timer.lines()))

    with connection.cursor() as cursor:
        start = time.perf_counter()
        for _ in range(500):
            cursor.execute("SELECT 1")
            cursor.fetchone()
        round_trip = (time.perf_counter() - start) / 500

    payloads = [order_payload("prof", n, rng) for n in range(count)]
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for payload in payloads:
        post(payload)
    profiler.disable()
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats
    rows = []
    for label, filename, function in PROFILED_STEPS:
        cumulative = sum(
            value[3]
            for (path, _line, name), value in stats.items()
            if name == function and path.replace("\\", "/").endswith(filename)
        )
        rows.append([label, f"{cumulative / count * 1000:.2f}", f"{cumulative / total:.0%}"])
    rows.insert(0, ["whole request (test client)", f"{total / count * 1000:.2f}", "100%"])
    rows.append(["one SELECT 1 round trip (no profiler)", f"{round_trip * 1000:.2f}", ""])
    return samples, rows
