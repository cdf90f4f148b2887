"""The LINE webhook at /hooks/line/ (SPEC rule 11).

LINE signs the raw body: ``X-Line-Signature`` is base64(HMAC-SHA256(channel
secret, body)), checked with the official SDK before anything is read or
written. Answers:

  405  not a POST
  400  no signature, a body that is not UTF-8, or (signed) not a JSON
       object with an ``events`` list
  403  a signature that does not match (a forgery or a tampered body)
  200  ``{}`` once every event is stored (and applied, or its error kept
       on its row: see outreach.line_events)

Nothing is written before the signature and the body are checked.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.api.errors import error_body
from outreach.line_events import line_event_receive

logger = logging.getLogger(__name__)


def line_signature_valid(body: str, signature: str) -> bool:
    """Whether `signature` is LINE's signature of `body` for our channel, by
    the official SDK's SignatureValidator. Imported here, not with the
    module: `linebot.v3` costs a process ~45 MB, and every process (the
    worker and management commands too) loads this module through the
    URLconf. Web processes import it at start (line_webhook_warm_up)."""
    from linebot.v3 import SignatureValidator

    return SignatureValidator(settings.LINE_CHANNEL_SECRET).validate(body, signature)


def line_webhook_warm_up() -> None:
    """Import and run the signature check once, in a web process before it
    takes requests (config.warm_up): the first webhook after a start must
    not wait the second or more the SDK takes to import under load, or LINE
    redelivers it."""
    line_signature_valid("", "")


def _refuse(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(status, code, message), status=status)


@csrf_exempt  # LINE's servers hold no session; the signature is the authority
@require_POST
def line_webhook(request: HttpRequest) -> HttpResponse:
    signature = request.headers.get("X-Line-Signature", "")
    if not signature:
        return _refuse(400, "signature_missing", _("The X-Line-Signature header is missing."))
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return _refuse(400, "invalid", _("The request body is not UTF-8."))
    if not line_signature_valid(body, signature):
        logger.warning("LINE webhook: bad signature from %s", request.META.get("REMOTE_ADDR"))
        return _refuse(403, "signature_invalid", _("The X-Line-Signature does not match."))
    try:
        payload = json.loads(body)
    except ValueError:
        return _refuse(400, "invalid", _("The request body is not valid JSON."))
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        return _refuse(400, "invalid", _("The request body has no list of events."))
    for event in events:
        line_event_receive(event=event)
    return JsonResponse({})
