"""A local fake of the LINE platform for tests and ``make run``.

It is the project's only faked external system, so it checks requests the
way the LINE Messaging API does; see :mod:`outreach.linefake.server` for the
server, :mod:`outreach.linefake.harness` for its controls,
:mod:`outreach.linefake.rules` for the request rules and
:mod:`outreach.linefake.webhook` for signed webhook events.

    with LineFake(channel_access_token="t", channel_secret="s") as line:
        config = Configuration(host=line.url, access_token="t")
        ...
        assert line.texts_for(user_id) == ["ご注文ありがとうございます"]
"""

from outreach.linefake.records import AcceptedRequest, Delivery, RequestRecord
from outreach.linefake.rules import LINE_RATE_LIMITS, LineApiError, utf16_length
from outreach.linefake.server import LineFake
from outreach.linefake.webhook import (
    WebhookRequest,
    follow_event,
    line_signature,
    postback_event,
    send_webhook,
    text_message_event,
    unfollow_event,
    webhook_request,
)

__all__ = [
    "LINE_RATE_LIMITS",
    "AcceptedRequest",
    "Delivery",
    "LineApiError",
    "LineFake",
    "RequestRecord",
    "WebhookRequest",
    "follow_event",
    "line_signature",
    "postback_event",
    "send_webhook",
    "text_message_event",
    "unfollow_event",
    "utf16_length",
    "webhook_request",
]
