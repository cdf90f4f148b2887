"""Test code run in threads at once, each thread with its own database
connection (closed when it ends), as concurrent requests or workers are."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def at_once(target: Callable[[], object], count: int, *, timeout: float = 30) -> list:
    """Run `target` in `count` threads let go at the same moment, wait for
    them all and return what they raised (an empty list when nothing)."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout)
            target()
        except BaseException as exc:  # reported to the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return errors
