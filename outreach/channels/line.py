"""LINE through the official line-bot-sdk v3 MessagingApi.

The API host comes from settings.LINE_API_HOST, so tests and `make run`
point it at the local fake. Every push and multicast carries the
X-Line-Retry-Key stored in the ledger before the call: 409 means LINE had
already accepted that request (sent), 429 backs off (for Retry-After
seconds when LINE gives them), other 4xx fail with LINE's own message, 5xx
and timeouts retry with the same key.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

from django.conf import settings
from urllib3.exceptions import HTTPError as Urllib3Error

from outreach.channels import Outcome, Result

logger = logging.getLogger(__name__)

MULTICAST_MAX_RECIPIENTS = 500


@cache
def _sdk() -> ModuleType:
    """line-bot-sdk, imported on first use: it takes seconds to import, and
    most processes (a piped mail, a management command) never talk to LINE."""
    from linebot.v3 import messaging

    return messaging


RATE_LIMITED_BACKOFF_SECONDS = 30.0  # after a 429 without Retry-After
RETRY_AFTER_MAX_SECONDS = 3600.0


def _retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (delta-seconds), else the default."""
    try:
        seconds = float(value) if value else RATE_LIMITED_BACKOFF_SECONDS
    except ValueError:
        return RATE_LIMITED_BACKOFF_SECONDS
    if not math.isfinite(seconds):
        return RATE_LIMITED_BACKOFF_SECONDS
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_SECONDS)


# LINE's 400 answer to a reply whose token is invalid, already used or
# expired (the request was refused: nothing went out).
REPLY_TOKEN_INVALID = "Invalid reply token"


def _line_body(exc) -> dict:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _line_message(exc) -> str:
    return _line_body(exc).get("message") or ""


def _line_error(exc) -> str:
    body = _line_body(exc)
    message = body.get("message") or exc.reason or "error"
    details = "; ".join(
        f"{d.get('property', '')}: {d.get('message', '')}" for d in body.get("details") or []
    )
    return f"LINE {exc.status}: {message}" + (f" ({details})" if details else "")


def _header(headers, name: str) -> str:
    if not headers:
        return ""
    for key, value in dict(headers).items():
        if key.lower() == name.lower():
            return value
    return ""


@dataclass(frozen=True)
class LineProfile:
    """What LINE said of a user's profile: the name and picture, or the
    error and whether asking again later may help (429, 5xx, no answer;
    not a 404, which LINE gives for a user who blocked the account or is
    not a friend)."""

    display_name: str = ""
    picture_url: str = ""
    error: str = ""
    transient: bool = False


class LineAdapter:
    def __init__(self) -> None:
        sdk = _sdk()
        self.sdk = sdk
        configuration = sdk.Configuration(
            host=settings.LINE_API_HOST, access_token=settings.LINE_CHANNEL_ACCESS_TOKEN
        )
        self.client = sdk.ApiClient(configuration)
        self.api = sdk.MessagingApi(self.client)
        self.timeout = (settings.LINE_CONNECT_TIMEOUT, settings.LINE_READ_TIMEOUT)

    def __enter__(self) -> LineAdapter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.client.close()

    def push(
        self,
        *,
        to: str,
        texts: list[str],
        retry_key: uuid.UUID,
        quick_reply: list[dict] | None = None,
    ) -> Outcome:
        """`quick_reply`: postback buttons under the last text, each
        {"label", "data", "display_text"} (a survey's answers)."""
        messages = [self.sdk.TextMessage(text=t) for t in texts]
        if quick_reply and messages:
            messages[-1].quick_reply = self.sdk.QuickReply(
                items=[
                    self.sdk.QuickReplyItem(
                        action=self.sdk.PostbackAction(
                            label=item["label"],
                            data=item["data"],
                            display_text=item.get("display_text") or item["label"],
                        )
                    )
                    for item in quick_reply
                ]
            )
        request = self.sdk.PushMessageRequest(to=to, messages=messages)
        return self._call(self.api.push_message_with_http_info, request, retry_key=retry_key)

    def multicast(self, *, to: list[str], texts: list[str], retry_key: uuid.UUID) -> Outcome:
        if not 1 <= len(to) <= MULTICAST_MAX_RECIPIENTS:
            raise ValueError(f"a multicast takes 1 to {MULTICAST_MAX_RECIPIENTS} recipients")
        request = self.sdk.MulticastRequest(
            to=to, messages=[self.sdk.TextMessage(text=t) for t in texts]
        )
        return self._call(self.api.multicast_with_http_info, request, retry_key=retry_key)

    def reply(self, *, reply_token: str, texts: list[str]) -> Outcome:
        """The free Reply API. A reply token works once, shortly after the
        event, and a reply takes no retry key: only LINE's refusal of the
        token (`reply_token_refused`: nothing went out) lets the caller push
        instead; a reply without an answer may have reached the customer."""
        request = self.sdk.ReplyMessageRequest(
            reply_token=reply_token, messages=[self.sdk.TextMessage(text=t) for t in texts]
        )
        return self._call(self.api.reply_message_with_http_info, request, retry_key=None)

    def profile(self, *, user_id: str) -> LineProfile:
        """GET /v2/bot/profile/{userId} through the SDK's get_profile."""
        try:
            response = self.api.get_profile(user_id, _request_timeout=self.timeout)
        except self.sdk.ApiException as exc:
            transient = exc.status is None or exc.status == 429 or exc.status >= 500
            return LineProfile(error=_line_error(exc), transient=transient)
        except (Urllib3Error, OSError) as exc:
            return LineProfile(error=f"LINE unreachable: {exc}", transient=True)
        return LineProfile(
            display_name=response.display_name or "", picture_url=response.picture_url or ""
        )

    def _call(self, method, request, *, retry_key: uuid.UUID | None) -> Outcome:
        kwargs: dict[str, Any] = {"_request_timeout": self.timeout}
        if retry_key is not None:
            kwargs["x_line_retry_key"] = str(retry_key)
        try:
            response = method(request, **kwargs)
        except self.sdk.ApiException as exc:
            if exc.status == 409 and retry_key is not None:
                accepted = _header(exc.headers, "X-Line-Accepted-Request-Id")
                return Outcome(Result.SENT, provider_id=accepted)
            if exc.status == 429:
                return Outcome(
                    Result.RETRY,
                    error=_line_error(exc),
                    retry_after=_retry_after(_header(exc.headers, "Retry-After")),
                )
            if exc.status is not None and 400 <= exc.status < 500:
                refused = exc.status == 400 and _line_message(exc) == REPLY_TOKEN_INVALID
                return Outcome(Result.FAILED, error=_line_error(exc), reply_token_refused=refused)
            return Outcome(Result.RETRY, error=_line_error(exc), in_doubt=True)
        except (Urllib3Error, OSError) as exc:
            return Outcome(Result.RETRY, error=f"LINE unreachable: {exc}", in_doubt=True)
        return Outcome(Result.SENT, provider_id=_header(response.headers, "X-Line-Request-Id"))
