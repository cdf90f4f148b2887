"""``/__fake__/…``: steer a LINE fake running in another process over HTTP.

Not part of LINE. Useful when the fake runs as ``manage.py line_fake`` (the
demo, end-to-end tests): no authentication, loopback only.

* ``GET  /__fake__/deliveries`` → ``{"deliveries": [...]}``
* ``GET  /__fake__/requests`` → ``{"requests": [...]}`` (every API request)
* ``POST /__fake__/reset``
* ``POST /__fake__/fail`` ``{"count": 1, "status": 429, "endpoint": null}``
* ``POST /__fake__/reply-token`` ``{"userId": "U…"}`` → ``{"replyToken": "…"}``
* ``POST /__fake__/webhook`` ``{"type": "message", "userId": "U…", "text": "…"}``
  (or ``follow``/``unfollow``): signs the event and POSTs it to the fake's
  ``webhook_url``, answering ``{"status": <webhook status>, "replyToken": …}``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from outreach.linefake import rules, webhook
from outreach.linefake.transport import Response

if TYPE_CHECKING:
    from outreach.linefake.server import LineFake

PREFIX = "/__fake__/"


def control_answer(fake: LineFake, method: str, path: str, raw_body: bytes) -> Response:
    """Answer one control request."""
    action = path[len(PREFIX) :].strip("/")
    try:
        data = json.loads(raw_body.decode("utf-8") or "{}") if method == "POST" else {}
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        body = _action(fake, method, action, data)
    except (ValueError, KeyError, TypeError) as exc:
        return Response(400, {"message": f"{type(exc).__name__}: {exc}"})
    except OSError as exc:  # the webhook receiver is down or unreachable
        return Response(502, {"message": f"webhook not delivered: {exc}"})
    if body is None:
        return Response(404, {"message": rules.MSG_NOT_FOUND})
    return Response(200, body)


def _action(fake: LineFake, method: str, action: str, data: dict[str, Any]) -> dict | None:
    match method, action:
        case "GET", "deliveries":
            return {"deliveries": [d.as_json() for d in fake.deliveries]}
        case "GET", "requests":
            return {"requests": [r.as_json() for r in fake.requests]}
        case "POST", "reset":
            fake.reset()
            return {}
        case "POST", "fail":
            count, status = int(data.get("count", 1)), int(data.get("status", 429))
            fake.fail_next(count, status, endpoint=data.get("endpoint"))
            return {}
        case "POST", "reply-token":
            return {"replyToken": fake.issue_reply_token(str(data["userId"]))}
        case "POST", "webhook":
            return _send_event(fake, data)
    return None


def _send_event(fake: LineFake, data: dict[str, Any]) -> dict[str, Any]:
    if not fake.webhook_url:
        raise ValueError("no webhook URL configured (line_fake --webhook-url)")
    user_id = str(data["userId"])
    if not rules.USER_ID_RE.fullmatch(user_id):
        raise ValueError("userId must be 'U' followed by 32 lowercase hex digits")
    kind = data.get("type", "message")
    if kind == "message":
        event = fake.text_message_event(user_id, str(data["text"]))
    elif kind == "follow":
        event = fake.follow_event(user_id)
    elif kind == "unfollow":
        event = fake.unfollow_event(user_id)
    else:
        raise ValueError("type must be message, follow or unfollow")
    status = webhook.send_webhook(fake.webhook_url, fake.webhook_request(event))
    return {"status": status, "replyToken": event.get("replyToken")}
