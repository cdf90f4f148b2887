"""The delivery ledger: claiming work with a lease and recording outcomes.

A worker claims a small batch of due rows of one send with a conditional
UPDATE (`FOR UPDATE SKIP LOCKED` on PostgreSQL), marking them `sending`
with a lease. A crashed worker's rows come back when the lease expires.

LINE requests carry a retry key stored *before* the request. A request
that already has one is an earlier request whose outcome is not known (a
crash, a timeout, a 5xx): it is claimed whole, as the same group, and sent
again with the same key, so LINE either accepts it now or answers 409
"already accepted" — never a second message. A push's key is on its row;
a multicast's is on its MulticastRequest, which is what its claim writes
(see `_claim_multicast`).

One module per step (claims, lease, outcomes); import from here.
"""

from outreach.ledger.claims import (
    PENDING,
    Claimed,
    delivery_claim_batch,
    multicast_open_ids,
    request_columns,
    sends_lock,
    while_sending,
)
from outreach.ledger.lease import (
    Lease,
)
from outreach.ledger.outcomes import (
    backoff_seconds,
    delivery_mark_deferred,
    delivery_mark_failed,
    delivery_mark_retry,
    delivery_mark_sent,
    delivery_mark_skipped,
    delivery_mark_unknown,
    delivery_sent_writer,
)

__all__ = [
    "PENDING",
    "Claimed",
    "Lease",
    "backoff_seconds",
    "delivery_claim_batch",
    "delivery_mark_deferred",
    "delivery_mark_failed",
    "delivery_mark_retry",
    "delivery_mark_sent",
    "delivery_mark_skipped",
    "delivery_mark_unknown",
    "delivery_sent_writer",
    "multicast_open_ids",
    "request_columns",
    "sends_lock",
    "while_sending",
]
