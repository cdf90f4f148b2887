"""The LINE platform, faked: an HTTP server that answers like api.line.me.

Tests start it in a background thread (``with LineFake() as line: ...``) and
point the official SDK at ``line.url``; ``manage.py line_fake`` runs it in the
foreground for ``make run``. It checks what the real platform checks (body
rules in :mod:`outreach.linefake.rules`), remembers what it accepted, and can
be told to fail the way LINE fails (:mod:`outreach.linefake.faults`). What
tests call on it besides HTTP (faults, profiles, recordings, webhook events)
is in :mod:`outreach.linefake.harness`.

Rules mirrored here:

* ``Authorization: Bearer <channel access token>`` on every API call, else 401.
* Every response carries ``X-Line-Request-Id`` (a UUID).
* ``X-Line-Retry-Key`` (push and multicast; ignored elsewhere): the first
  request with a key is accepted and the key remembered for 24 hours (per
  channel, whatever the endpoint); a later request with the same key gets
  409 ``"The retry key is already accepted"`` with
  ``X-Line-Accepted-Request-Id`` naming the accepted request (a push 409
  also repeats its ``sentMessages``) and is not delivered again. A request
  answered 4xx (other than 409) or 5xx does not consume its key. The check
  and the acceptance are one atomic step, so two concurrent requests with
  one key deliver once.
* Reply tokens are issued by the fake (as LINE puts them in webhook events),
  are good for one reply and expire (1 minute by default).
* Push and multicast count against the monthly quota when one is set
  (429 ``"You have reached your monthly limit."``); replies are free.
* Order of checks: route (404/405), token (401), retry-key format (400),
  injected faults and rate limit (429/5xx), content type (415), body (400),
  retry key already accepted (409), reply token (400), quota (429).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from outreach.linefake import rules, webhook
from outreach.linefake.control import PREFIX as CONTROL_PREFIX
from outreach.linefake.control import control_answer
from outreach.linefake.faults import SEND_ENDPOINTS, FaultPlan
from outreach.linefake.harness import LineFakeHarness
from outreach.linefake.records import AcceptedRequest, Delivery, RequestRecord
from outreach.linefake.rules import LineApiError
from outreach.linefake.transport import Response, Server

logger = logging.getLogger(__name__)

RETRY_KEY_TTL = 24 * 60 * 60.0  # LINE keeps an accepted retry key for 24 hours
REPLY_TOKEN_TTL = 60.0  # a reply token must be used within about a minute

_ROUTES: dict[str, tuple[str, str]] = {
    "/v2/bot/message/push": ("POST", "push"),
    "/v2/bot/message/multicast": ("POST", "multicast"),
    "/v2/bot/message/reply": ("POST", "reply"),
    "/v2/bot/info": ("GET", "info"),
    "/v2/bot/message/quota": ("GET", "quota"),
    "/v2/bot/message/quota/consumption": ("GET", "consumption"),
}
_VALIDATE_PREFIX = "/v2/bot/message/validate/"
_VALIDATE_KINDS = frozenset({"push", "multicast", "reply", "narrowcast", "broadcast"})
_PROFILE_PREFIX = "/v2/bot/profile/"


class LineFake(LineFakeHarness):
    """A local LINE Messaging API server with recording and fault injection.

    Thread-safe: the HTTP server answers each connection in its own thread,
    and the test thread may inspect or reconfigure the fake at any time.
    ``history_limit`` bounds the remembered deliveries and requests (for a
    long-running demo process); ``clock`` (monotonic seconds) drives reply
    token, retry key, ``fail_for`` and rate-limit timing.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        channel_access_token: str = "test-line-channel-access-token",
        channel_secret: str = "test-line-channel-secret",
        reply_token_ttl: float = REPLY_TOKEN_TTL,
        retry_key_ttl: float = RETRY_KEY_TTL,
        latency: float = 0.0,
        monthly_quota: int | None = None,
        history_limit: int | None = None,
        webhook_url: str | None = None,
        on_accept: Callable[[AcceptedRequest], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        bot_display_name: str = "窓口デモショップ",
    ) -> None:
        self.host = host
        self.port = port
        self.channel_access_token = channel_access_token
        self.channel_secret = channel_secret
        self.reply_token_ttl = reply_token_ttl
        self.retry_key_ttl = retry_key_ttl
        #: Seconds to wait before answering each API request (0 = none).
        self.latency = latency
        #: Monthly message limit for push + multicast recipients (None = none).
        self.monthly_quota = monthly_quota
        self.webhook_url = webhook_url
        #: Called (in the server thread) with each accepted request.
        self.on_accept = on_accept
        self.bot_display_name = bot_display_name
        self.bot_user_id = "U" + hashlib.sha256(channel_secret.encode()).hexdigest()[:32]
        self.faults = FaultPlan(clock)
        self._clock = clock
        self._history_limit = history_limit
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._profiles: dict[str, dict[str, str]] = {}
        self._strangers: set[str] = set()
        self._clear()

    def _clear(self) -> None:
        self._deliveries: deque[Delivery] = deque(maxlen=self._history_limit)
        self._accepted: deque[AcceptedRequest] = deque(maxlen=self._history_limit)
        self._log: deque[RequestRecord] = deque(maxlen=self._history_limit)
        self._delivery_total = 0
        self._retry_keys: dict[str, tuple[float, AcceptedRequest]] = {}
        self._reply_tokens: dict[str, tuple[str, float]] = {}
        self._usage = 0
        self.faults.clear()

    # --- lifecycle ------------------------------------------------------
    def _bind(self) -> Server:
        server = Server((self.host, self.port), self)
        self.port = server.server_address[1]
        self._server = server
        return server

    def start(self) -> LineFake:
        """Listen (on a free port if ``port=0``) and serve from a daemon thread."""
        if self._server is not None:
            raise RuntimeError("LineFake is already running")
        server = self._bind()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"line-fake:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve from the calling thread until interrupted (the management command)."""
        server = self._bind()
        try:
            server.serve_forever(poll_interval=0.5)
        finally:
            self._close()

    def stop(self) -> None:
        """Stop serving and close open keep-alive connections."""
        server = self._server
        if server is None:
            return
        server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._close()

    def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.server_close()
            server.close_connections()

    def __enter__(self) -> LineFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL for ``linebot.v3.messaging.Configuration(host=...)``."""
        if self._server is None:
            raise RuntimeError("LineFake is not running")
        return f"http://{self.host}:{self.port}"

    # --- request handling -------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: Any, raw_body: bytes) -> Response:
        """Answer one HTTP request (``headers``: a case-insensitive mapping)."""
        path = raw_path.partition("?")[0]
        if path.startswith(CONTROL_PREFIX):
            return control_answer(self, method, path, raw_body)
        request_id = str(uuid.uuid4())
        received_at = datetime.now(UTC)
        endpoint: str | None = None
        retry_key: str | None = None
        try:
            endpoint, arg = self._route(method, path)
            self._authenticate(headers.get("Authorization"))
            if self.latency > 0:
                time.sleep(self.latency)
            if endpoint in ("push", "multicast"):
                retry_key = rules.parse_retry_key(headers.get("X-Line-Retry-Key"))
            response = self._dispatch(endpoint, arg, headers, raw_body, request_id, retry_key)
        except LineApiError as exc:
            response = Response(exc.status, exc.body(), request_id, exc.headers)
        except Exception:
            logger.exception("LINE fake: error answering %s %s", method, path)
            response = Response(500, {"message": rules.MSG_SERVER_ERROR}, request_id)
        error = None
        if response.status >= 300 and response.body:
            error = response.body.get("message")
        record = RequestRecord(
            method, path, endpoint, response.status, request_id, retry_key, error, received_at
        )
        with self._lock:
            self._log.append(record)
        return response

    def _route(self, method: str, path: str) -> tuple[str, str]:
        """The endpoint name and path argument; 404 or 405 if LINE has no such route."""
        if path in _ROUTES:
            expected, endpoint = _ROUTES[path]
            arg = ""
        elif path.startswith(_VALIDATE_PREFIX) and path[len(_VALIDATE_PREFIX) :] in _VALIDATE_KINDS:
            expected, endpoint, arg = "POST", "validate", path[len(_VALIDATE_PREFIX) :]
        elif path.startswith(_PROFILE_PREFIX) and "/" not in path[len(_PROFILE_PREFIX) :]:
            expected, endpoint, arg = "GET", "profile", path[len(_PROFILE_PREFIX) :]
        else:
            logger.warning("LINE fake: %s %s is not an endpoint the fake knows", method, path)
            raise LineApiError(404, rules.MSG_NOT_FOUND)
        if method != expected:
            raise LineApiError(405, HTTPStatus.METHOD_NOT_ALLOWED.phrase)
        return endpoint, arg

    def _authenticate(self, authorization: str | None) -> None:
        """401 unless ``Authorization: Bearer <the channel access token>``."""
        if not authorization or not authorization.startswith("Bearer "):
            raise LineApiError(401, rules.MSG_AUTH_MISSING)
        given = authorization[len("Bearer ") :].strip().encode()
        if not secrets.compare_digest(given, self.channel_access_token.encode()):
            raise LineApiError(401, rules.MSG_AUTH_FAILED)

    @staticmethod
    def _json_body(headers: Any, raw_body: bytes) -> Any:
        """The decoded body; 415 unless ``Content-Type: application/json``."""
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise LineApiError(415, HTTPStatus.UNSUPPORTED_MEDIA_TYPE.phrase)
        try:
            return json.loads(raw_body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise LineApiError(400, rules.MSG_BAD_JSON) from None

    def _dispatch(
        self,
        endpoint: str,
        arg: str,
        headers: Any,
        raw_body: bytes,
        request_id: str,
        retry_key: str | None,
    ) -> Response:
        if endpoint in SEND_ENDPOINTS:
            self.faults.check(endpoint)
            body = self._json_body(headers, raw_body)
            if endpoint == "push":
                to, messages = rules.validate_push(body)
                return self._accept(endpoint, [to], messages, request_id, retry_key, None)
            if endpoint == "multicast":
                recipients, messages = rules.validate_multicast(body)
                return self._accept(endpoint, recipients, messages, request_id, retry_key, None)
            token, messages = rules.validate_reply(body)
            return self._accept(endpoint, [], messages, request_id, None, token)
        if endpoint == "validate":
            rules.validate_messages_body(self._json_body(headers, raw_body))
            return Response(200, {}, request_id)
        if endpoint == "profile":
            self.faults.check(endpoint)
            return Response(200, self._profile(arg), request_id)
        if endpoint == "info":
            return Response(200, self._bot_info(), request_id)
        if endpoint == "quota":
            quota = self.monthly_quota
            body = {"type": "none"} if quota is None else {"type": "limited", "value": quota}
            return Response(200, body, request_id)
        with self._lock:
            usage = self._usage
        return Response(200, {"totalUsage": usage}, request_id)

    def _accept(
        self,
        endpoint: str,
        recipients: list[str],
        messages: list[dict[str, Any]],
        request_id: str,
        retry_key: str | None,
        reply_token: str | None,
    ) -> Response:
        """Check retry key, reply token and quota, then record: one atomic step."""
        now = self._clock()
        accepted_at = datetime.now(UTC)
        msgs = tuple(messages)
        sent = tuple(
            {"id": webhook.new_message_id(), "quoteToken": webhook.new_quote_token()}
            if m.get("type") in rules.QUOTABLE_TYPES
            else {"id": webhook.new_message_id()}
            for m in msgs
        )
        with self._lock:
            if retry_key is not None:
                self._refuse_accepted_retry_key(retry_key, now)
            if reply_token is not None:
                user_id, expires = self._reply_tokens.pop(reply_token, (None, 0.0))
                if user_id is None or expires <= now:
                    raise LineApiError(400, rules.MSG_INVALID_REPLY_TOKEN)
                recipients = [user_id]
            else:
                if (
                    self.monthly_quota is not None
                    and self._usage + len(recipients) > self.monthly_quota
                ):
                    raise LineApiError(429, rules.MSG_MONTHLY_LIMIT)
                self._usage += len(recipients)
            accepted = AcceptedRequest(
                endpoint, request_id, retry_key, tuple(recipients), msgs, sent, accepted_at
            )
            if retry_key is not None:
                self._remember_retry_key(retry_key, now, accepted)
            self._accepted.append(accepted)
            self._deliveries.extend(
                Delivery(user_id, endpoint, request_id, retry_key, msgs, accepted_at)
                for user_id in recipients
            )
            self._delivery_total += len(recipients)
            self._changed.notify_all()
        if self.on_accept is not None:
            try:
                self.on_accept(accepted)
            except Exception:
                logger.exception("LINE fake: on_accept callback failed")
        body: dict[str, Any] = {} if endpoint == "multicast" else {"sentMessages": list(sent)}
        return Response(200, body, request_id, drop=self.faults.take_drop(endpoint))

    def _refuse_accepted_retry_key(self, retry_key: str, now: float) -> None:
        """409 if the key was accepted within ``retry_key_ttl`` (caller holds the lock)."""
        known = self._retry_keys.get(retry_key)
        if known is None or known[0] <= now:
            return
        original = known[1]
        extra: dict[str, Any] = {}
        if original.endpoint == "push":
            extra["sentMessages"] = list(original.sent_messages)
        raise LineApiError(
            409,
            rules.MSG_RETRY_KEY_ACCEPTED,
            headers={"X-Line-Accepted-Request-Id": original.request_id},
            extra=extra,
        )

    def _remember_retry_key(self, retry_key: str, now: float, accepted: AcceptedRequest) -> None:
        """Caller holds the lock. Expired keys are swept now and then."""
        if len(self._retry_keys) % 4096 == 4095:
            self._retry_keys = {k: v for k, v in self._retry_keys.items() if v[0] > now}
        self._retry_keys[retry_key] = (now + self.retry_key_ttl, accepted)

    def _profile(self, user_id: str) -> dict[str, str]:
        """``UserProfileResponse``; 400 for a malformed user ID."""
        if not rules.USER_ID_RE.fullmatch(user_id):
            raise LineApiError(400, "The value for the 'userId' parameter is invalid")
        with self._lock:
            profile = self._profiles.get(user_id)
            stranger = user_id in self._strangers
        if stranger:
            raise LineApiError(404, "Not found")
        if profile is not None:
            return dict(profile)
        return {
            "userId": user_id,
            "displayName": f"LINEユーザー{user_id[-4:]}",
            "pictureUrl": f"https://profile.line-scdn.net/{user_id[1:17]}",
            "language": "ja",
        }

    def _bot_info(self) -> dict[str, str]:
        """``BotInfoResponse`` for this channel's bot."""
        return {
            "userId": self.bot_user_id,
            "basicId": "@" + self.bot_user_id[1:9],
            "displayName": self.bot_display_name,
            "chatMode": "chat",
            "markAsReadMode": "manual",
        }
