"""`Idempotency-Key` for every POST.

The request's work and the record of its answer are written in one
transaction, so either both are there or neither is. A retry with the same
key and the same body gets the first answer again and creates nothing; the
same key with another body is refused (422).

The record is inserted last, after the work (one statement: nothing to
claim first and fill in later). A request whose key is already recorded
therefore finds out at that insert and rolls its work back: a retry, or an
identical request racing the first, which waits on the unique index until
the first commits. An error is never recorded, so a refused request may be
retried; but when the key already has an answer, that answer is replayed
instead of the error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.db import transaction
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.errors import error_response
from core.db import insert_if_absent
from core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name=HEADER,
    # Not blank, at most MAX_KEY_LENGTH characters (else a 400).
    type={"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": r"\S"},
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "A unique key per logical request (e.g. a UUID). Retrying with the same key and "
        "body returns the first response and creates nothing; the same key with another "
        "body is refused with 422."
    ),
)


def _request_hash(request: Request) -> str:
    canonical = json.dumps(request.data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()


def idempotent_response(
    request: Request, produce: Callable[[], Response]
) -> Response | HttpResponse:
    key = request.headers.get(HEADER)
    if key is None:
        # Without a key, still all or nothing: a refused request leaves no trace.
        with transaction.atomic():
            return produce()
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        return error_response(
            400,
            "invalid_idempotency_key",
            _("The Idempotency-Key header must be 1 to %(max)d characters.")
            % {"max": MAX_KEY_LENGTH},
        )
    request_hash = _request_hash(request)
    try:
        with transaction.atomic():
            response = produce()
            if response.status_code < 300 and _record(request, key, request_hash, response):
                return response
            # An error (rolled back, not remembered), or the key was
            # answered already (this request's work is rolled back).
            transaction.set_rollback(True)
    except Exception:
        if (existing := _recorded(request, key)) is None:
            raise
        return _replay(existing, request_hash)
    if (existing := _recorded(request, key)) is None:
        return response
    return _replay(existing, request_hash)


def _record(request: Request, key: str, request_hash: str, response: Response) -> bool:
    """Remember the answer under the key; False when the key has one already."""
    return insert_if_absent(
        IdempotencyRecord(
            api_key=request.auth,  # type: ignore[misc]  # our ApiKey (the stubs say Token); and a method is set
            key=key,
            method=request.method,
            path=request.path[:255],
            request_hash=request_hash,
            status_code=response.status_code,
            response_body=JSONRenderer().render(response.data).decode(),
        ),
        unique_fields=["api_key", "key"],
    )


def _recorded(request: Request, key: str) -> IdempotencyRecord | None:
    return IdempotencyRecord.objects.filter(api_key=request.auth, key=key).first()  # type: ignore[misc]  # request.auth is our ApiKey (core.api.auth); the DRF stubs say Token


def _replay(record: IdempotencyRecord, request_hash: str) -> HttpResponse:
    if record.request_hash != request_hash:
        return error_response(
            422,
            "idempotency_key_reused",
            _(
                "This Idempotency-Key was already used for a different request. "
                "Use a new key for a new request."
            ),
        )
    response = HttpResponse(
        record.response_body, status=record.status_code, content_type="application/json"
    )
    response[REPLAY_HEADER] = "true"
    return response
