"""What the LINE fake remembers: accepted deliveries and every request received."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient of one accepted request.

    ``messages`` is the request's tuple, shared by all its recipients (a
    500-recipient multicast stores its messages once), so treat it as
    read-only.
    """

    user_id: str
    endpoint: str  # "push", "multicast" or "reply"
    request_id: str  # the X-Line-Request-Id of the accepted request
    retry_key: str | None
    messages: tuple[dict[str, Any], ...]
    accepted_at: datetime

    @property
    def texts(self) -> list[str]:
        """The ``text`` of each text message, in order."""
        return [m["text"] for m in self.messages if "text" in m]

    def as_json(self) -> dict[str, Any]:
        """JSON form, for the ``/__fake__/deliveries`` control endpoint."""
        return {
            "userId": self.user_id,
            "endpoint": self.endpoint,
            "requestId": self.request_id,
            "retryKey": self.retry_key,
            "messages": list(self.messages),
            "acceptedAt": self.accepted_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class AcceptedRequest:
    """A push, multicast or reply the fake accepted (answered 200)."""

    endpoint: str
    request_id: str
    retry_key: str | None
    recipients: tuple[str, ...]
    messages: tuple[dict[str, Any], ...]
    sent_messages: tuple[dict[str, str], ...]  # the ids (and quote tokens) answered
    accepted_at: datetime


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """Any API request received, whatever the answer.

    ``error`` is the ``message`` of a non-2xx answer. A request whose response
    was dropped on purpose is recorded with status 200 (it was accepted).
    """

    method: str
    path: str
    endpoint: str | None  # None when the path is not a LINE endpoint
    status: int
    request_id: str
    retry_key: str | None
    error: str | None
    received_at: datetime

    def as_json(self) -> dict[str, Any]:
        """JSON form, for the ``/__fake__/requests`` control endpoint."""
        return {
            "method": self.method,
            "path": self.path,
            "endpoint": self.endpoint,
            "status": self.status,
            "requestId": self.request_id,
            "retryKey": self.retry_key,
            "error": self.error,
            "receivedAt": self.received_at.isoformat(),
        }
