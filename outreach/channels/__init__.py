"""Channel adapters: the only code that talks to SMTP and to LINE.

Each adapter sends and classifies the answer into an Outcome; the
dispatcher records outcomes in the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Result(Enum):
    SENT = "sent"  # accepted by the provider
    RETRY = "retry"  # transient: try again later
    FAILED = "failed"  # permanent: never try again
    DEFER = "defer"  # not attempted at all (e.g. connection down before it): no attempt used
    # may have reached the provider and cannot be retried safely (a LINE
    # reply: no retry key): never tried again, shown as unknown
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Outcome:
    result: Result
    provider_id: str = ""
    error: str = ""
    # RETRY only: the message may have reached the provider (timeout, 5xx)
    in_doubt: bool = False
    # RETRY: the provider asked to slow down (seconds), if known; DEFER:
    # how long to wait before the attempt (None: the base backoff)
    retry_after: float | None = None
    # A LINE reply only: LINE refused the reply token (invalid, used or
    # expired). Nothing went out, so the message may still go by push.
    reply_token_refused: bool = False
