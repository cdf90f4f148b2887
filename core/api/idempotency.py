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

from django.db import connection, transaction
from django.http import HttpResponse
from django.utils import timezone
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
        record_id = _claim(request, key, request_hash)
        if record_id is None:
            existing = IdempotencyRecord.objects.get(api_key=request.auth, key=key)
            return _replay(existing, request_hash)
        response = produce()
        if response.status_code >= 300:
            # Only a success is remembered; a refused request may be retried.
            transaction.set_rollback(True)
            return response
        IdempotencyRecord.objects.filter(pk=record_id).update(
            status_code=response.status_code,
            response_body=JSONRenderer().render(response.data).decode(),
        )
    return response


def _claim(request: Request, key: str, request_hash: str) -> int | None:
    """Insert the key's record, or find that it exists: one statement, no
    savepoint. A request racing one with the same key waits on the unique
    index until the first commits (then gets nothing back and replays its
    answer) or rolls back (then inserts)."""
    table = connection.ops.quote_name(IdempotencyRecord._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(IdempotencyRecord._meta.get_field(name).column)
        for name in (
            "api_key",
            "key",
            "method",
            "path",
            "request_hash",
            "status_code",
            "response_body",
            "created_at",
        )
    )
    conflict = ", ".join(
        connection.ops.quote_name(IdempotencyRecord._meta.get_field(name).column)
        for name in ("api_key", "key")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, 0, '', %s)"
            f" ON CONFLICT ({conflict}) DO NOTHING RETURNING id",
            [
                request.auth.pk,
                key,
                request.method,
                request.path[:255],
                request_hash,
                connection.ops.adapt_datetimefield_value(timezone.now()),
            ],
        )
        row = cursor.fetchone()
    return row[0] if row else None


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
