"""LINE through the Messaging API's HTTP endpoints (push, multicast, reply).

A small client of our own on urllib3 rather than line-bot-sdk's
MessagingApi: the three calls are one JSON POST each, and the SDK (its
pydantic models, aiohttp and the rest) cost every worker process ~20–60 MB
and ~0.5 ms a multicast of building and validating 500 model objects.
The local fake (outreach.linefake) checks these requests the way LINE does.

The API host comes from settings.LINE_API_HOST, so tests and `make run`
point it at the local fake. Every push and multicast carries the
X-Line-Retry-Key stored in the ledger before the call: 409 means LINE had
already accepted that request (sent), 429 backs off (for Retry-After
seconds when LINE says), other 4xx fail with LINE's own message, 5xx and
timeouts retry with the same key.
"""

from __future__ import annotations

import json
import logging
import uuid

import urllib3
from django.conf import settings
from urllib3.exceptions import HTTPError as Urllib3Error

from outreach.channels import Outcome, Result

logger = logging.getLogger(__name__)

MULTICAST_MAX_RECIPIENTS = 500
RATE_LIMITED_BACKOFF_SECONDS = 30.0  # after a 429 without Retry-After
RETRY_AFTER_MAX_SECONDS = 3600.0


def _line_error(status: int, reason: str, data: bytes) -> str:
    try:
        body = json.loads(data or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = body.get("message") or reason or "error"
    details = "; ".join(
        f"{d.get('property', '')}: {d.get('message', '')}"
        for d in body.get("details") or []
        if isinstance(d, dict)
    )
    return f"LINE {status}: {message}" + (f" ({details})" if details else "")


def _retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (delta-seconds), else the default."""
    try:
        seconds = float(value) if value else RATE_LIMITED_BACKOFF_SECONDS
    except ValueError:
        return RATE_LIMITED_BACKOFF_SECONDS
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_SECONDS)


def _texts(texts: list[str]) -> list[dict]:
    return [{"type": "text", "text": text} for text in texts]


class LineAdapter:
    def __init__(self) -> None:
        self.host = settings.LINE_API_HOST
        self.headers = {
            "Authorization": f"Bearer {settings.LINE_CHANNEL_ACCESS_TOKEN}",
            "Content-Type": "application/json",
            "User-Agent": "madoguchi",
        }
        # A connection that cannot be opened is retried (nothing was sent);
        # a request whose answer is lost is not: the ledger retries it later
        # with its retry key.
        self.http = urllib3.PoolManager(
            maxsize=1,
            retries=urllib3.Retry(total=None, connect=2, read=0, redirect=0, status=0, other=0),
            timeout=urllib3.Timeout(
                connect=settings.LINE_CONNECT_TIMEOUT, read=settings.LINE_READ_TIMEOUT
            ),
        )

    def __enter__(self) -> LineAdapter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.http.clear()

    def push(self, *, to: str, texts: list[str], retry_key: uuid.UUID) -> Outcome:
        body = {"to": to, "messages": _texts(texts)}
        return self._call("/v2/bot/message/push", body, retry_key=retry_key)

    def multicast(self, *, to: list[str], texts: list[str], retry_key: uuid.UUID) -> Outcome:
        if not 1 <= len(to) <= MULTICAST_MAX_RECIPIENTS:
            raise ValueError(f"a multicast takes 1 to {MULTICAST_MAX_RECIPIENTS} recipients")
        body = {"to": to, "messages": _texts(texts)}
        return self._call("/v2/bot/message/multicast", body, retry_key=retry_key)

    def reply(self, *, reply_token: str, texts: list[str]) -> Outcome:
        """The free Reply API. A reply token works once, shortly after the
        event; the caller falls back to push when this fails."""
        body = {"replyToken": reply_token, "messages": _texts(texts)}
        return self._call("/v2/bot/message/reply", body, retry_key=None)

    def _call(self, path: str, body: dict, *, retry_key: uuid.UUID | None) -> Outcome:
        headers = self.headers
        if retry_key is not None:
            headers = {**headers, "X-Line-Retry-Key": str(retry_key)}
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            response = self.http.request("POST", self.host + path, body=data, headers=headers)
        except (Urllib3Error, OSError) as exc:
            return Outcome(Result.RETRY, error=f"LINE unreachable: {exc}", in_doubt=True)
        status = response.status
        if 200 <= status < 300:
            return Outcome(Result.SENT, provider_id=response.headers.get("X-Line-Request-Id", ""))
        error = _line_error(status, response.reason or "", response.data)
        if status == 409 and retry_key is not None:
            accepted = response.headers.get("X-Line-Accepted-Request-Id", "")
            return Outcome(Result.SENT, provider_id=accepted)
        if status == 429:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            return Outcome(Result.RETRY, error=error, retry_after=retry_after)
        if 400 <= status < 500:
            return Outcome(Result.FAILED, error=error)
        return Outcome(Result.RETRY, error=error, in_doubt=True)
