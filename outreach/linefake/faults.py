"""Failures the LINE fake can be told to produce, the way LINE produces them.

LINE answers 429 when a channel exceeds an endpoint's rate limit and 5xx when
it is in trouble; neither delivers the message nor consumes the request's
``X-Line-Retry-Key``, so the client's retry with the same key goes through.
A lost response (the request was accepted but the answer never arrived) is
the other case a sender must survive: its retry gets 409.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

from outreach.linefake import rules
from outreach.linefake.rules import LineApiError

#: The endpoints faults apply to.
SEND_ENDPOINTS = ("push", "multicast", "reply")
#: Also faulted, when named: reading a user's profile.
FAULT_ENDPOINTS = (*SEND_ENDPOINTS, "profile")

_DEFAULT_MESSAGES = {429: rules.MSG_RATE_LIMITED, 500: rules.MSG_SERVER_ERROR}


@dataclass(slots=True)
class _Fault:
    remaining: int  # requests left to fail (count faults)
    status: int | None  # None: drop the response of an accepted request
    message: str | None
    endpoint: str | None  # None: any send endpoint
    until: float | None = None  # time faults: fail until this clock value
    retry_after: int | None = None  # the answer's Retry-After (seconds), if any

    def matches(self, endpoint: str) -> bool:
        if self.endpoint is None:
            return endpoint in SEND_ENDPOINTS
        return self.endpoint == endpoint

    def live(self, now: float) -> bool:
        return self.remaining > 0 if self.until is None else now < self.until


def _check(status: int | None, endpoint: str | None) -> None:
    if status is not None and not 400 <= status <= 599:
        raise ValueError(f"a fault needs a 4xx or 5xx status, not {status}")
    if endpoint is not None and endpoint not in FAULT_ENDPOINTS:
        raise ValueError(f"endpoint must be one of {FAULT_ENDPOINTS}, not {endpoint!r}")


class FaultPlan:
    """Injected failures and the optional rate limiter. Thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Remove every fault and turn the rate limiter off."""
        with self._lock:
            self._faults: list[_Fault] = []
            self._drops: list[_Fault] = []
            self._limits: dict[str, int] = {}
            self._windows: dict[str, deque[float]] = {}

    def fail_next(
        self,
        count: int,
        status: int,
        endpoint: str | None,
        message: str | None,
        retry_after: int | None = None,
    ) -> None:
        _check(status, endpoint)
        with self._lock:
            self._faults.append(_Fault(count, status, message, endpoint, None, retry_after))

    def fail_for(
        self,
        seconds: float,
        status: int,
        endpoint: str | None,
        message: str | None,
        retry_after: int | None = None,
    ) -> None:
        _check(status, endpoint)
        until = self._clock() + seconds
        with self._lock:
            self._faults.append(_Fault(0, status, message, endpoint, until, retry_after))

    def drop_next(self, count: int, endpoint: str | None) -> None:
        _check(None, endpoint)
        with self._lock:
            self._drops.append(_Fault(count, None, None, endpoint))

    def rate_limit(self, per_second: int | None, endpoint: str | None) -> None:
        _check(429, endpoint)
        with self._lock:
            for name in (endpoint,) if endpoint else SEND_ENDPOINTS:
                if per_second is None:
                    self._limits.pop(name, None)
                else:
                    self._limits[name] = per_second
                self._windows.pop(name, None)

    def check(self, endpoint: str) -> None:
        """Raise the injected 429/5xx, or the rate limiter's 429, if one applies.

        Called before the body is looked at, as LINE's gateway does; the
        rate limiter counts only the requests it lets through, per endpoint,
        over a sliding one-second window.
        """
        now = self._clock()
        chosen: _Fault | None = None
        with self._lock:
            for fault in self._faults:
                if fault.matches(endpoint) and fault.live(now):
                    if fault.until is None:
                        fault.remaining -= 1
                    chosen = fault
                    break
            self._faults = [f for f in self._faults if f.live(now)]
            if chosen is None and endpoint in self._limits:
                window = self._windows.setdefault(endpoint, deque())
                while window and window[0] <= now - 1.0:
                    window.popleft()
                if len(window) >= self._limits[endpoint]:
                    raise LineApiError(429, rules.MSG_RATE_LIMITED)
                window.append(now)
        if chosen is not None:
            assert chosen.status is not None
            message = chosen.message or _DEFAULT_MESSAGES.get(chosen.status)
            headers = {} if chosen.retry_after is None else {"Retry-After": str(chosen.retry_after)}
            raise LineApiError(
                chosen.status, message or HTTPStatus(chosen.status).phrase, headers=headers
            )

    def take_drop(self, endpoint: str) -> bool:
        """True if the response to this accepted request is to be dropped."""
        with self._lock:
            for fault in self._drops:
                if fault.remaining > 0 and fault.matches(endpoint):
                    fault.remaining -= 1
                    self._drops = [f for f in self._drops if f.remaining > 0]
                    return True
        return False
