"""`Idempotency-Key` for every POST.

The first request with a key runs inside one transaction together with the
record of its answer, so either both are written or neither is. A retry with
the same key and the same body gets the first answer again and creates
nothing; the same key with another body is refused (422). Two identical
requests racing each other are serialised by the unique index: the second
waits for the first to commit, then replays its answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.errors import error_response
from core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=str,
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
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    api_key=request.auth,
                    key=key,
                    method=request.method,
                    path=request.path[:255],
                    request_hash=request_hash,
                    status_code=0,
                )
        except IntegrityError:
            existing = IdempotencyRecord.objects.get(api_key=request.auth, key=key)
            return _replay(existing, request_hash)
        response = produce()
        if response.status_code >= 300:
            # Only a success is remembered; a refused request may be retried.
            transaction.set_rollback(True)
            return response
        record.status_code = response.status_code
        record.response_body = JSONRenderer().render(response.data).decode()
        record.save(update_fields=["status_code", "response_body"])
    return response


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
