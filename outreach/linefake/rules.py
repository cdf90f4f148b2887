"""The request rules of the LINE Messaging API, as the fake enforces them.

Pure functions, no I/O: each takes a decoded JSON body and either returns the
parts the fake needs or raises :class:`LineApiError` carrying the status code
and the JSON error body LINE would answer with. The numbers come from the
Messaging API reference (OpenAPI ``messaging-api.yml``, schemas
``PushMessageRequest``, ``MulticastRequest``, ``ReplyMessageRequest``,
``Message`` and its subtypes, ``ErrorResponse``/``ErrorDetail``) and from the
API's published limits. Error wording follows what the platform sends
(``"The request body has N error(s)"`` with ``details`` of
``{"message", "property"}``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

# --- limits (LINE Messaging API reference) ---------------------------------
MAX_MESSAGES = 5  # messages[]: minItems 1, maxItems 5 (push, multicast, reply)
MAX_MULTICAST_RECIPIENTS = 500  # MulticastRequest.to: minItems 1, maxItems 500
MAX_TEXT_UTF16 = 5000  # text message: max 5,000 characters, counted in UTF-16 units
MAX_ALT_TEXT = 1500  # flex/template/imagemap altText: max 1,500 characters
MAX_URL_LENGTH = 2000  # image/video/audio URLs: HTTPS, max 2,000 characters
MAX_QUICK_REPLY_ITEMS = 13  # QuickReply.items: maxItems 13
MAX_SENDER_NAME = 20  # Sender.name: maxLength 20
MAX_AGGREGATION_UNITS = 1  # customAggregationUnits: maxItems 1 (pattern below)

#: Published per-endpoint rate limits (requests per second) for a channel.
LINE_RATE_LIMITS: dict[str, int] = {"push": 2000, "multicast": 200, "reply": 2000}

# A user ID is "U" + 32 lowercase hex digits (webhook.yml, CallbackRequest
# .destination pattern); group IDs start with "C", room IDs with "R".
USER_ID_RE = re.compile(r"U[0-9a-f]{32}")
PUSH_TARGET_RE = re.compile(r"[UCR][0-9a-f]{32}")
AGGREGATION_UNIT_RE = re.compile(r"[a-zA-Z0-9_]{1,30}")

# Message types the API knows (Message.discriminator) and the properties each
# requires beyond ``type``; text, sticker, image and flex get closer checks.
REQUIRED_BY_TYPE: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "textV2": ("text",),
    "sticker": ("packageId", "stickerId"),
    "image": ("originalContentUrl", "previewImageUrl"),
    "video": ("originalContentUrl", "previewImageUrl"),
    "audio": ("originalContentUrl", "duration"),
    "location": ("title", "address", "latitude", "longitude"),
    "imagemap": ("baseUrl", "altText", "baseSize", "actions"),
    "template": ("altText", "template"),
    "flex": ("altText", "contents"),
    "coupon": ("couponId",),
}
#: Types whose sent message can be quoted, so the response carries a quoteToken.
QUOTABLE_TYPES = frozenset({"text", "textV2", "sticker", "image", "video"})

# --- error bodies, worded as the platform words them -----------------------
MSG_AUTH_MISSING = (
    "Authorization header required. Must follow the scheme, 'Authorization: Bearer <ACCESS TOKEN>'"
)
MSG_AUTH_FAILED = (
    "Authentication failed. Confirm that the access token in the authorization header is valid."
)
MSG_RATE_LIMITED = "The API rate limit has been exceeded. Try again later."
MSG_MONTHLY_LIMIT = "You have reached your monthly limit."
MSG_RETRY_KEY_ACCEPTED = "The retry key is already accepted"
MSG_RETRY_KEY_INVALID = "The value for the 'X-Line-Retry-Key' header is invalid"
MSG_INVALID_REPLY_TOKEN = "Invalid reply token"
MSG_NOT_FOUND = "Not found"
MSG_BAD_JSON = "The request body could not be parsed as JSON"
MSG_SERVER_ERROR = "An error occurred in the server"


@dataclass
class LineApiError(Exception):
    """An answer other than 2xx, with LINE's ``ErrorResponse`` body."""

    status: int
    message: str
    details: list[dict[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The JSON body: ``message``, and ``details`` only when non-empty."""
        out: dict[str, Any] = {"message": self.message}
        if self.details:
            out["details"] = self.details
        out.update(self.extra)
        return out


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units: how LINE counts the 5,000-character limit.

    Characters outside the BMP (most emoji, some rare kanji) count as 2.
    """
    return len(text.encode("utf-16-le")) // 2


def parse_retry_key(value: str | None) -> str | None:
    """Check ``X-Line-Retry-Key``: absent, or a UUID in hex-with-hyphens form.

    The reference asks for the canonical 8-4-4-4-12 form (e.g.
    ``123e4567-e89b-12d3-a456-426614174000``); anything else is a 400. The key
    is compared case-insensitively, so it is returned lower-cased.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        parsed = None
    if parsed is None or str(parsed) != text.lower():
        raise LineApiError(400, MSG_RETRY_KEY_INVALID)
    return str(parsed)


class _Errors:
    """Collects ``details`` entries; raises one 400 naming all of them."""

    def __init__(self) -> None:
        self.details: list[dict[str, str]] = []

    def add(self, prop: str, message: str) -> None:
        self.details.append({"message": message, "property": prop})

    def raise_if_any(self) -> None:
        if self.details:
            raise LineApiError(
                400, f"The request body has {len(self.details)} error(s)", self.details
            )


def _property_invalid(prop: str) -> LineApiError:
    return LineApiError(
        400, f"The property, '{prop}', in the request body is invalid (line: -, column: -)"
    )


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise LineApiError(400, MSG_BAD_JSON)
    return body


def _check_notification_flag(body: dict[str, Any], errors: _Errors) -> None:
    flag = body.get("notificationDisabled")
    if flag is not None and not isinstance(flag, bool):
        errors.add("notificationDisabled", "must be a boolean")


def _check_aggregation_units(body: dict[str, Any], errors: _Errors) -> None:
    units = body.get("customAggregationUnits")
    if units is None:
        return
    if not isinstance(units, list) or len(units) > MAX_AGGREGATION_UNITS:
        errors.add("customAggregationUnits", f"Size must be between 0 and {MAX_AGGREGATION_UNITS}")
        return
    for i, unit in enumerate(units):
        if not isinstance(unit, str) or not AGGREGATION_UNIT_RE.fullmatch(unit):
            errors.add(f"customAggregationUnits[{i}]", "Invalid aggregation unit name")


def _check_https_url(value: Any, prop: str, errors: _Errors) -> None:
    if not isinstance(value, str) or not value.startswith("https://"):
        errors.add(prop, "must be an HTTPS URL")
    elif len(value) > MAX_URL_LENGTH:
        errors.add(prop, f"Length must be between 0 and {MAX_URL_LENGTH}")


def _check_message(msg: Any, prefix: str, errors: _Errors) -> None:
    """One message object: ``type`` known, its required properties present."""
    if not isinstance(msg, dict):
        errors.add(prefix, "must be an object")
        return
    mtype = msg.get("type")
    if mtype is None:
        errors.add(f"{prefix}.type", "must be specified")
        return
    if mtype not in REQUIRED_BY_TYPE:
        errors.add(f"{prefix}.type", "Invalid message type")
        return
    missing = [p for p in REQUIRED_BY_TYPE[mtype] if msg.get(p) in (None, "")]
    for prop in missing:
        errors.add(f"{prefix}.{prop}", "must be specified")
    if mtype in ("text", "textV2") and "text" not in missing:
        text = msg["text"]
        if not isinstance(text, str):
            errors.add(f"{prefix}.text", "must be a string")
        elif utf16_length(text) > MAX_TEXT_UTF16:
            errors.add(f"{prefix}.text", f"Length must be between 0 and {MAX_TEXT_UTF16}")
    elif mtype == "sticker":
        for prop in ("packageId", "stickerId"):
            if prop not in missing and not isinstance(msg[prop], str):
                errors.add(f"{prefix}.{prop}", "must be a string")
    elif mtype in ("image", "video"):
        for prop in ("originalContentUrl", "previewImageUrl"):
            if prop not in missing:
                _check_https_url(msg[prop], f"{prefix}.{prop}", errors)
    elif mtype == "flex":
        alt = msg.get("altText")
        if "altText" not in missing and (not isinstance(alt, str) or len(alt) > MAX_ALT_TEXT):
            errors.add(f"{prefix}.altText", f"Length must be between 1 and {MAX_ALT_TEXT}")
        contents = msg.get("contents")
        if "contents" not in missing and (
            not isinstance(contents, dict) or contents.get("type") not in ("bubble", "carousel")
        ):
            errors.add(f"{prefix}.contents.type", "must be 'bubble' or 'carousel'")
    quick = msg.get("quickReply")
    if isinstance(quick, dict):
        items = quick.get("items")
        if not isinstance(items, list) or len(items) > MAX_QUICK_REPLY_ITEMS:
            errors.add(
                f"{prefix}.quickReply.items", f"Size must be between 0 and {MAX_QUICK_REPLY_ITEMS}"
            )
        else:
            for index, item in enumerate(items):
                _check_quick_reply_item(item, f"{prefix}.quickReply.items[{index}]", errors)
    sender = msg.get("sender")
    if isinstance(sender, dict):
        name = sender.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_SENDER_NAME):
            errors.add(f"{prefix}.sender.name", f"Length must be between 0 and {MAX_SENDER_NAME}")


# A postback action's limits (Messaging API reference, "Postback action").
MAX_ACTION_LABEL = 20
MAX_POSTBACK_DATA = 300
MAX_POSTBACK_DISPLAY_TEXT = 300


def _check_quick_reply_item(item: Any, prefix: str, errors: _Errors) -> None:
    """A quick reply button: an action; for a postback, its label, data and
    display text within LINE's limits."""
    action = item.get("action") if isinstance(item, dict) else None
    if not isinstance(action, dict):
        errors.add(f"{prefix}.action", "must be specified")
        return
    if action.get("type") != "postback":
        return
    limits = (
        ("label", MAX_ACTION_LABEL, False),
        ("data", MAX_POSTBACK_DATA, True),
        ("displayText", MAX_POSTBACK_DISPLAY_TEXT, False),
    )
    for prop, limit, required in limits:
        value = action.get(prop)
        if value is None and not required:
            continue
        if not isinstance(value, str) or not 1 <= len(value) <= limit:
            errors.add(f"{prefix}.action.{prop}", f"Length must be between 1 and {limit}")


def _check_messages(body: dict[str, Any], errors: _Errors) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if messages is None:
        errors.add("messages", "must be specified")
        return []
    if not isinstance(messages, list):
        errors.add("messages", "must be an array")
        return []
    if not 1 <= len(messages) <= MAX_MESSAGES:
        errors.add("messages", f"Size must be between 1 and {MAX_MESSAGES}")
        return messages
    for i, msg in enumerate(messages):
        _check_message(msg, f"messages[{i}]", errors)
    return messages


def validate_messages_body(body: Any) -> list[dict[str, Any]]:
    """``ValidateMessageRequest`` (the ``/validate/*`` endpoints): messages only."""
    data = _require_object(body)
    errors = _Errors()
    messages = _check_messages(data, errors)
    errors.raise_if_any()
    return messages


def validate_push(body: Any) -> tuple[str, list[dict[str, Any]]]:
    """``PushMessageRequest``: ``to`` (one user, group or room ID) and 1–5 messages."""
    data = _require_object(body)
    errors = _Errors()
    to = data.get("to")
    if to is None:
        errors.add("to", "must be specified")
    messages = _check_messages(data, errors)
    _check_notification_flag(data, errors)
    _check_aggregation_units(data, errors)
    errors.raise_if_any()
    if not isinstance(to, str) or not PUSH_TARGET_RE.fullmatch(to):
        raise _property_invalid("to")
    return to, messages


def validate_multicast(body: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """``MulticastRequest``: ``to`` 1–500 user IDs (no groups/rooms) and 1–5 messages."""
    data = _require_object(body)
    errors = _Errors()
    to = data.get("to")
    if to is None:
        errors.add("to", "must be specified")
    elif not isinstance(to, list):
        errors.add("to", "must be an array")
    elif not 1 <= len(to) <= MAX_MULTICAST_RECIPIENTS:
        errors.add("to", f"Size must be between 1 and {MAX_MULTICAST_RECIPIENTS}")
    messages = _check_messages(data, errors)
    _check_notification_flag(data, errors)
    _check_aggregation_units(data, errors)
    errors.raise_if_any()
    match = USER_ID_RE.fullmatch
    for i, user_id in enumerate(to):  # type: ignore[arg-type]  # raise_if_any raised unless it is valid
        if not isinstance(user_id, str) or not match(user_id):
            raise _property_invalid(f"to[{i}]")
    return to, messages  # type: ignore[return-value]  # raise_if_any raised unless it is valid


def validate_reply(body: Any) -> tuple[str, list[dict[str, Any]]]:
    """``ReplyMessageRequest``: ``replyToken`` and 1–5 messages."""
    data = _require_object(body)
    errors = _Errors()
    token = data.get("replyToken")
    if token in (None, ""):
        errors.add("replyToken", "must be specified")
    elif not isinstance(token, str):
        errors.add("replyToken", "must be a string")
    messages = _check_messages(data, errors)
    _check_notification_flag(data, errors)
    errors.raise_if_any()
    return token, messages  # type: ignore[return-value]  # raise_if_any raised unless it is valid
