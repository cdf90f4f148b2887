"""LINE's side of the webhook: signed request bodies with realistic events.

The shapes follow the webhook OpenAPI definition (``webhook.yml``):
``CallbackRequest`` = ``{"destination": <bot user ID>, "events": [...]}``;
every event has ``type``, ``timestamp`` (ms), ``mode`` (``active``),
``webhookEventId`` (a ULID), ``deliveryContext.isRedelivery`` and a user
``source``; follow and message events carry a ``replyToken``.

The signature is what LINE puts in ``X-Line-Signature``: the Base64 of the
HMAC-SHA256 of the raw request body, keyed with the channel secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_message_ids = itertools.count(int(time.time() * 1000) * 1000)


def line_signature(body: bytes, channel_secret: str) -> str:
    """``X-Line-Signature`` for ``body``: base64(HMAC-SHA256(channel_secret, body))."""
    digest = hmac.new(channel_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def new_webhook_event_id(timestamp_ms: int | None = None) -> str:
    """A ULID (26 Crockford base-32 characters), as LINE's ``webhookEventId`` is."""
    ms = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    value = (ms << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_message_id() -> str:
    """A numeric message ID string, as LINE issues them (ever increasing)."""
    return str(next(_message_ids))


def new_quote_token() -> str:
    """An opaque quote token."""
    return secrets.token_urlsafe(48)


def _base_event(
    event_type: str,
    user_id: str,
    *,
    timestamp_ms: int | None,
    redelivery: bool,
) -> dict[str, Any]:
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    return {
        "type": event_type,
        "mode": "active",
        "timestamp": ts,
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": new_webhook_event_id(ts),
        "deliveryContext": {"isRedelivery": redelivery},
    }


def follow_event(
    user_id: str,
    *,
    reply_token: str,
    is_unblocked: bool = False,
    timestamp_ms: int | None = None,
    redelivery: bool = False,
) -> dict[str, Any]:
    """``FollowEvent``: the user added the account as a friend (or unblocked it)."""
    event = _base_event("follow", user_id, timestamp_ms=timestamp_ms, redelivery=redelivery)
    event["replyToken"] = reply_token
    event["follow"] = {"isUnblocked": is_unblocked}
    return event


def unfollow_event(
    user_id: str, *, timestamp_ms: int | None = None, redelivery: bool = False
) -> dict[str, Any]:
    """``UnfollowEvent``: the user blocked the account. It has no reply token."""
    return _base_event("unfollow", user_id, timestamp_ms=timestamp_ms, redelivery=redelivery)


def text_message_event(
    user_id: str,
    text: str,
    *,
    reply_token: str,
    message_id: str | None = None,
    timestamp_ms: int | None = None,
    redelivery: bool = False,
) -> dict[str, Any]:
    """``MessageEvent`` with a ``TextMessageContent`` (``id``, ``text``, ``quoteToken``)."""
    event = _base_event("message", user_id, timestamp_ms=timestamp_ms, redelivery=redelivery)
    event["replyToken"] = reply_token
    event["message"] = {
        "type": "text",
        "id": message_id or new_message_id(),
        "quoteToken": new_quote_token(),
        "markAsReadToken": secrets.token_urlsafe(24),
        "text": text,
    }
    return event


def postback_event(
    user_id: str,
    data: str,
    *,
    reply_token: str,
    timestamp_ms: int | None = None,
    redelivery: bool = False,
) -> dict[str, Any]:
    """``PostbackEvent``: the user tapped a postback action (a quick reply
    button); ``postback.data`` is the action's data."""
    event = _base_event("postback", user_id, timestamp_ms=timestamp_ms, redelivery=redelivery)
    event["replyToken"] = reply_token
    event["postback"] = {"data": data}
    return event


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook call as LINE would make it: raw body plus its signature."""

    body: bytes
    signature: str

    @property
    def headers(self) -> dict[str, str]:
        """Headers for the POST (``X-Line-Signature``, JSON content type)."""
        return {
            "Content-Type": "application/json; charset=utf-8",
            "X-Line-Signature": self.signature,
        }

    def payload(self) -> dict[str, Any]:
        """The decoded body."""
        return json.loads(self.body)


def webhook_request(
    events: list[dict[str, Any]], *, destination: str, channel_secret: str
) -> WebhookRequest:
    """Serialise ``CallbackRequest`` (compact UTF-8 JSON, as LINE does) and sign it."""
    body = json.dumps(
        {"destination": destination, "events": events},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    return WebhookRequest(body=body, signature=line_signature(body, channel_secret))


def send_webhook(url: str, request: WebhookRequest, *, timeout: float = 10.0) -> int:
    """POST a signed webhook to ``url`` (e.g. a live server's ``/hooks/line/``).

    Returns the HTTP status; a non-2xx answer is returned, not raised.
    """
    req = urllib.request.Request(url, data=request.body, headers=request.headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
