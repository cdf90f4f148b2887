"""What tests and the demo call on the LINE fake besides HTTP.

``LineFakeHarness`` is a mixin of :class:`outreach.linefake.server.LineFake`:
the test controls (faults to inject, reply tokens, profiles, friends), what
the fake received (deliveries, accepted requests, the request log) and the
webhook events LINE would send, built with this fake's reply tokens and
signed with its channel secret. The state it reads is set up by
``LineFake.__init__``; the annotations below only name it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from outreach.linefake import webhook
from outreach.linefake.faults import FaultPlan
from outreach.linefake.records import AcceptedRequest, Delivery, RequestRecord


class LineFakeHarness:
    """Test controls, recordings and webhook events of :class:`LineFake`."""

    channel_secret: str
    reply_token_ttl: float
    bot_user_id: str
    faults: FaultPlan
    _clock: Callable[[], float]
    _lock: threading.Lock
    _changed: threading.Condition
    _profiles: dict[str, dict[str, str]]
    _strangers: set[str]
    _deliveries: deque[Delivery]
    _accepted: deque[AcceptedRequest]
    _log: deque[RequestRecord]
    _delivery_total: int
    _reply_tokens: dict[str, tuple[str, float]]
    _clear: Callable[[], None]

    # --- test controls --------------------------------------------------
    def reset(self) -> None:
        """Forget deliveries, the request log, retry keys, reply tokens, usage, faults."""
        with self._lock:
            self._clear()

    def fail_next(
        self,
        count: int = 1,
        status: int = 429,
        *,
        endpoint: str | None = None,
        message: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``count`` send requests (push/multicast/reply, or only
        ``endpoint``, which may also be ``"profile"``) with ``status``.
        Nothing is delivered and no retry key or reply token is consumed, as
        with LINE's 429 and 5xx answers. A 429 says
        ``"The API rate limit has been exceeded. Try again later."``.
        ``retry_after``: seconds, sent as a ``Retry-After`` header.
        """
        self.faults.fail_next(count, status, endpoint, message, retry_after)

    def fail_for(
        self,
        seconds: float,
        status: int = 503,
        *,
        endpoint: str | None = None,
        message: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer every send request with ``status`` for ``seconds`` (an outage),
        with a ``Retry-After`` header when ``retry_after`` is given."""
        self.faults.fail_for(seconds, status, endpoint, message, retry_after)

    def drop_next_responses(self, count: int = 1, *, endpoint: str | None = None) -> None:
        """Accept the next ``count`` send requests, then close the connection
        without answering: the message went out but the client never heard.
        A retry with the same retry key then gets 409.
        """
        self.faults.drop_next(count, endpoint)

    def rate_limit(self, per_second: int | None, *, endpoint: str | None = None) -> None:
        """Answer 429 when an endpoint gets more than ``per_second`` requests in
        any one-second window (each endpoint counted apart, as LINE does);
        ``None`` turns it off. LINE's own numbers: ``rules.LINE_RATE_LIMITS``.
        """
        self.faults.rate_limit(per_second, endpoint)

    def issue_reply_token(self, user_id: str) -> str:
        """A fresh reply token for ``user_id``: one reply, within ``reply_token_ttl``."""
        token = secrets.token_hex(16)
        now = self._clock()
        with self._lock:
            if len(self._reply_tokens) > 10_000:
                self._reply_tokens = {t: v for t, v in self._reply_tokens.items() if v[1] > now}
            self._reply_tokens[token] = (user_id, now + self.reply_token_ttl)
        return token

    def set_profile(
        self,
        user_id: str,
        display_name: str,
        *,
        picture_url: str | None = None,
        status_message: str | None = None,
        language: str | None = "ja",
    ) -> None:
        """What ``GET /v2/bot/profile/{user_id}`` returns for this user.

        Users without a profile set get a generated one (``LINEユーザーabcd``).
        """
        profile = {"userId": user_id, "displayName": display_name}
        optional = {
            "pictureUrl": picture_url,
            "statusMessage": status_message,
            "language": language,
        }
        profile.update({k: v for k, v in optional.items() if v is not None})
        with self._lock:
            self._profiles[user_id] = profile
            self._strangers.discard(user_id)

    def set_not_friend(self, user_id: str) -> None:
        """The user blocked the account or never added it: LINE answers their
        profile with 404 ``"Not found"``."""
        with self._lock:
            self._strangers.add(user_id)

    # --- what was received ----------------------------------------------
    @property
    def deliveries(self) -> list[Delivery]:
        """Accepted deliveries, one per (recipient, request), oldest first."""
        with self._lock:
            return list(self._deliveries)

    @property
    def accepted_requests(self) -> list[AcceptedRequest]:
        """Accepted push/multicast/reply requests, oldest first."""
        with self._lock:
            return list(self._accepted)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every API request received, including rejected ones, oldest first."""
        with self._lock:
            return list(self._log)

    def count(self, endpoint: str | None = None) -> int:
        """Number of deliveries (recipients × requests), optionally of one endpoint."""
        with self._lock:
            if endpoint is None:
                return self._delivery_total
            return sum(1 for d in self._deliveries if d.endpoint == endpoint)

    def deliveries_for(self, user_id: str) -> list[Delivery]:
        """The deliveries to one user, oldest first."""
        with self._lock:
            return [d for d in self._deliveries if d.user_id == user_id]

    def messages_for(self, user_id: str) -> list[dict[str, Any]]:
        """Every message object delivered to one user, in order."""
        return [m for d in self.deliveries_for(user_id) for m in d.messages]

    def texts_for(self, user_id: str) -> list[str]:
        """The text of every text message delivered to one user, in order."""
        return [t for d in self.deliveries_for(user_id) for t in d.texts]

    def statuses(self, endpoint: str | None = None) -> Counter[int]:
        """How many requests got each status code (optionally for one endpoint)."""
        with self._lock:
            return Counter(r.status for r in self._log if endpoint in (None, r.endpoint))

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Block until at least ``count`` deliveries were accepted (a worker in
        another thread is sending); raise ``TimeoutError`` otherwise.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._delivery_total < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"LINE fake: {self._delivery_total} deliveries after {timeout}s, "
                        f"expected {count}"
                    )
                self._changed.wait(left)
            return list(self._deliveries)

    # --- webhook events (LINE's side) -------------------------------------
    def follow_event(
        self, user_id: str, *, is_unblocked: bool = False, redelivery: bool = False
    ) -> dict[str, Any]:
        """A follow event with a reply token issued by this fake."""
        return webhook.follow_event(
            user_id,
            reply_token=self.issue_reply_token(user_id),
            is_unblocked=is_unblocked,
            redelivery=redelivery,
        )

    def unfollow_event(self, user_id: str, *, redelivery: bool = False) -> dict[str, Any]:
        """An unfollow (block) event; it carries no reply token."""
        return webhook.unfollow_event(user_id, redelivery=redelivery)

    def text_message_event(
        self, user_id: str, text: str, *, redelivery: bool = False
    ) -> dict[str, Any]:
        """A text message event with a reply token issued by this fake."""
        return webhook.text_message_event(
            user_id, text, reply_token=self.issue_reply_token(user_id), redelivery=redelivery
        )

    def webhook_request(self, *events: dict[str, Any]) -> webhook.WebhookRequest:
        """The signed webhook LINE would POST for ``events`` to this channel."""
        return webhook.webhook_request(
            list(events), destination=self.bot_user_id, channel_secret=self.channel_secret
        )
