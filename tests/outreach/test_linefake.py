"""The LINE fake, exercised through the official SDK (line-bot-sdk v3).

If the SDK talks to the fake the way it talks to api.line.me, the LINE
adapter's tests mean something. No database is touched here.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import urllib3
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    FlexBox,
    FlexBubble,
    FlexMessage,
    FlexText,
    ImageMessage,
    MessagingApi,
    MulticastRequest,
    PushMessageRequest,
    ReplyMessageRequest,
    StickerMessage,
    TextMessage,
    ValidateMessageRequest,
)
from linebot.v3.messaging.exceptions import ServiceException, UnauthorizedException
from linebot.v3.webhooks import FollowEvent, MessageEvent, TextMessageContent, UnfollowEvent

from outreach.linefake import AcceptedRequest, LineFake, line_signature, utf16_length
from outreach.management.commands.line_fake import describe_accepted

TOKEN = "test-channel-access-token"
SECRET = "test-channel-secret"
ALICE = "U" + "a1" * 16
BOB = "U" + "b2" * 16
BASE_DIR = Path(__file__).resolve().parents[2]


class FakeClock:
    """Monotonic seconds the test moves by hand (reply tokens, faults, rate limit)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def line(clock):
    with LineFake(channel_access_token=TOKEN, channel_secret=SECRET, clock=clock) as fake:
        yield fake


@pytest.fixture
def api(line):
    with ApiClient(Configuration(host=line.url, access_token=TOKEN)) as client:
        yield MessagingApi(client)


def push(to: str, *texts: str) -> PushMessageRequest:
    return PushMessageRequest(to=to, messages=[TextMessage(text=t) for t in texts])


def user_ids(n: int) -> list[str]:
    return [f"U{i:032x}" for i in range(n)]


def raw_post(line: LineFake, path: str, body: object, **headers: str) -> urllib3.BaseHTTPResponse:
    """A request the SDK would refuse to build (bad types, bad headers)."""
    sent = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return urllib3.request("POST", line.url + path, body=data, headers=sent, retries=False)


def error_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


# --- sending through the SDK ------------------------------------------------


def test_push_is_delivered_and_answers_sent_message_ids(line, api):
    response = api.push_message_with_http_info(
        push(ALICE, "ご注文ありがとうございます", "発送しました"),
        x_line_retry_key=str(uuid.uuid4()),
    )

    assert response.status_code == 200
    assert len(response.data.sent_messages) == 2
    assert all(m.id.isdigit() and m.quote_token for m in response.data.sent_messages)
    request_id = response.headers["X-Line-Request-Id"]
    assert uuid.UUID(request_id)
    assert line.texts_for(ALICE) == ["ご注文ありがとうございます", "発送しました"]
    [delivery] = line.deliveries
    assert (delivery.endpoint, delivery.request_id) == ("push", request_id)
    assert line.texts_for(BOB) == []


def test_multicast_delivers_once_per_recipient_and_answers_empty_object(line, api):
    key = str(uuid.uuid4())

    response = api.multicast_with_http_info(
        MulticastRequest(to=[ALICE, BOB], messages=[TextMessage(text="セールのお知らせ")]),
        x_line_retry_key=key,
    )

    assert response.status_code == 200
    assert json.loads(response.raw_data) == {}
    assert [(d.user_id, d.retry_key) for d in line.deliveries] == [(ALICE, key), (BOB, key)]
    assert line.count() == 2
    assert line.count("multicast") == 2
    assert line.deliveries[0].messages is line.deliveries[1].messages  # stored once


def test_reply_with_an_issued_token_reaches_that_user(line, api):
    token = line.issue_reply_token(BOB)

    response = api.reply_message_with_http_info(
        ReplyMessageRequest(reply_token=token, messages=[TextMessage(text="確認します")])
    )

    assert response.status_code == 200
    assert len(response.data.sent_messages) == 1
    assert line.texts_for(BOB) == ["確認します"]
    assert line.deliveries[0].endpoint == "reply"


def test_sticker_image_and_flex_messages_are_accepted(line, api):
    flex = FlexMessage(
        alt_text="ご注文内容",
        contents=FlexBubble(body=FlexBox(layout="vertical", contents=[FlexText(text="注文")])),
    )
    image = ImageMessage(
        original_content_url="https://example.jp/a.jpg",
        preview_image_url="https://example.jp/p.jpg",
    )
    sticker = StickerMessage(package_id="446", sticker_id="1988")

    api.push_message(PushMessageRequest(to=ALICE, messages=[sticker, image, flex]))

    assert [m["type"] for m in line.messages_for(ALICE)] == ["sticker", "image", "flex"]


# --- what LINE refuses ------------------------------------------------------


def test_wrong_access_token_is_401_and_nothing_is_sent(line):
    with (
        ApiClient(Configuration(host=line.url, access_token="wrong")) as client,
        pytest.raises(UnauthorizedException) as caught,
    ):
        MessagingApi(client).push_message(push(ALICE, "x"))

    assert caught.value.status == 401
    assert error_of(caught.value) == {
        "message": "Authentication failed. Confirm that the access token in the "
        "authorization header is valid."
    }
    assert uuid.UUID(caught.value.headers["X-Line-Request-Id"])
    assert line.count() == 0


def test_missing_authorization_header_is_401(line):
    response = raw_post(line, "/v2/bot/message/push", {}, Authorization="")

    assert response.status == 401
    assert "Authorization header required" in response.json()["message"]


def test_six_messages_are_refused(line, api):
    # The SDK refuses to build this (pydantic max_items=5); construct() skips
    # that check so the request reaches the fake as a buggy client would send it.
    request = PushMessageRequest.construct(to=ALICE, messages=[TextMessage(text="x")] * 6)

    with pytest.raises(ApiException) as caught:
        api.push_message_with_http_info(request)

    assert caught.value.status == 400
    assert error_of(caught.value) == {
        "message": "The request body has 1 error(s)",
        "details": [{"message": "Size must be between 1 and 5", "property": "messages"}],
    }
    assert line.count() == 0


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("a" * 5000, True),
        ("あ" * 5000, True),  # kana are one UTF-16 unit each
        ("😀" * 2500, True),  # 2,500 characters, 5,000 UTF-16 units
        ("a" * 5001, False),
        ("😀" * 2500 + "a", False),  # 2,501 characters but 5,001 units
        ("a" * 4999 + "😀", False),  # the emoji straddles the limit
    ],
)
def test_text_limit_counts_utf16_units(line, api, text, accepted):
    request = push(ALICE, text)

    if accepted:
        api.push_message(request)
        assert line.texts_for(ALICE) == [text]
    else:
        with pytest.raises(ApiException) as caught:
            api.push_message(request)
        assert caught.value.status == 400
        assert error_of(caught.value)["details"] == [
            {"message": "Length must be between 0 and 5000", "property": "messages[0].text"}
        ]
        assert line.count() == 0


def test_utf16_length_counts_astral_characters_twice():
    assert utf16_length("窓口") == 2
    assert utf16_length("👍🏻") == 4  # thumbs up + skin tone modifier
    assert utf16_length("𠮷") == 2  # a kanji outside the BMP


def test_multicast_to_501_recipients_is_refused(line, api):
    request = MulticastRequest.construct(to=user_ids(501), messages=[TextMessage(text="x")])

    with pytest.raises(ApiException) as caught:
        api.multicast_with_http_info(request)

    assert caught.value.status == 400
    assert error_of(caught.value)["details"] == [
        {"message": "Size must be between 1 and 500", "property": "to"}
    ]
    assert line.count() == 0


def test_multicast_to_500_recipients_is_accepted(line, api):
    api.multicast(MulticastRequest(to=user_ids(500), messages=[TextMessage(text="x")]))

    assert line.count() == 500


@pytest.mark.parametrize(
    ("path", "body", "prop"),
    [
        ("push", {"to": "bob", "messages": [{"type": "text", "text": "x"}]}, "to"),
        ("push", {"to": "U" + "A" * 32, "messages": [{"type": "text", "text": "x"}]}, "to"),
        (
            "multicast",
            {"to": [ALICE, "C" + "0" * 32], "messages": [{"type": "text", "text": "x"}]},
            "to[1]",
        ),
    ],
)
def test_malformed_recipient_ids_are_refused(line, path, body, prop):
    response = raw_post(line, f"/v2/bot/message/{path}", body)

    assert response.status == 400
    assert f"'{prop}'" in response.json()["message"]
    assert line.count() == 0


@pytest.mark.parametrize(
    ("message", "prop"),
    [
        ({"text": "no type"}, "messages[0].type"),
        ({"type": "postcard"}, "messages[0].type"),
        ({"type": "text"}, "messages[0].text"),
        ({"type": "text", "text": ""}, "messages[0].text"),
        ({"type": "sticker", "packageId": "446"}, "messages[0].stickerId"),
        (
            {
                "type": "image",
                "originalContentUrl": "http://a/b.jpg",
                "previewImageUrl": "https://a",
            },
            "messages[0].originalContentUrl",
        ),
        (
            {"type": "flex", "altText": "x", "contents": {"type": "box"}},
            "messages[0].contents.type",
        ),
        ({"type": "flex", "contents": {"type": "bubble"}}, "messages[0].altText"),
    ],
)
def test_malformed_messages_are_refused_naming_the_property(line, message, prop):
    response = raw_post(line, "/v2/bot/message/push", {"to": ALICE, "messages": [message]})

    assert response.status == 400
    assert prop in [d["property"] for d in response.json()["details"]]
    assert line.count() == 0


def test_every_error_in_the_body_is_reported(line):
    body = {"messages": [{"type": "text"}, {"type": "text", "text": "x" * 5001}]}

    response = raw_post(line, "/v2/bot/message/push", body)

    assert response.status == 400
    assert response.json()["message"] == "The request body has 3 error(s)"
    assert {d["property"] for d in response.json()["details"]} == {
        "to",
        "messages[0].text",
        "messages[1].text",
    }


def test_body_must_be_json(line):
    assert raw_post(line, "/v2/bot/message/push", b"{not json").status == 400
    wrong_type = raw_post(line, "/v2/bot/message/push", {}, Content_Type="text/plain")
    assert wrong_type.status == 415


def test_unknown_path_is_404_and_wrong_method_is_405(line):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert urllib3.request("GET", line.url + "/v2/bot/nope", headers=headers).status == 404
    assert urllib3.request("GET", line.url + "/v2/bot/message/push", headers=headers).status == 405


def test_every_response_carries_a_request_id_and_every_request_is_logged(line, api):
    api.push_message(push(ALICE, "x"))
    raw_post(line, "/v2/bot/message/push", {}, Authorization="Bearer nope")
    raw_post(line, "/v2/bot/message/push", {"to": ALICE, "messages": []})

    assert [r.status for r in line.requests] == [200, 401, 400]
    assert all(uuid.UUID(r.request_id) for r in line.requests)
    assert line.statuses("push") == {200: 1, 401: 1, 400: 1}
    assert line.requests[2].error == "The request body has 1 error(s)"


# --- retry keys -------------------------------------------------------------


def test_same_retry_key_twice_is_409_naming_the_accepted_request(line, api):
    key = str(uuid.uuid4())
    first = api.push_message_with_http_info(push(ALICE, "一度だけ"), x_line_retry_key=key)

    with pytest.raises(ApiException) as caught:
        api.push_message_with_http_info(push(ALICE, "一度だけ"), x_line_retry_key=key)

    conflict = caught.value
    assert conflict.status == 409
    assert conflict.headers["X-Line-Accepted-Request-Id"] == first.headers["X-Line-Request-Id"]
    assert conflict.headers["X-Line-Request-Id"] != first.headers["X-Line-Request-Id"]
    body = error_of(conflict)
    assert body["message"] == "The retry key is already accepted"
    assert body["sentMessages"][0]["id"] == first.data.sent_messages[0].id
    assert line.texts_for(ALICE) == ["一度だけ"]


def test_multicast_retry_key_replay_is_409_and_delivers_once(line, api):
    key = str(uuid.uuid4())
    request = MulticastRequest(to=user_ids(3), messages=[TextMessage(text="x")])
    first = api.multicast_with_http_info(request, x_line_retry_key=key)

    with pytest.raises(ApiException) as caught:
        api.multicast_with_http_info(request, x_line_retry_key=key)

    assert caught.value.status == 409
    assert caught.value.headers["X-Line-Accepted-Request-Id"] == first.headers["X-Line-Request-Id"]
    assert error_of(caught.value) == {"message": "The retry key is already accepted"}
    assert line.count() == 3


def test_retry_key_expires_after_24_hours(line, api, clock):
    key = str(uuid.uuid4())
    api.push_message(push(ALICE, "x"), x_line_retry_key=key)

    clock.advance(24 * 3600 + 1)
    api.push_message(push(ALICE, "x"), x_line_retry_key=key)

    assert line.count() == 2


@pytest.mark.parametrize(
    "key",
    [
        "not-a-uuid",
        "0f8fad5bd9cb469fa16570867728950e",  # no hyphens
        "{0f8fad5b-d9cb-469f-a165-70867728950e}",
        "0f8fad5b-d9cb-469f-a165-70867728950",  # one digit short
    ],
)
def test_malformed_retry_key_is_400(line, api, key):
    with pytest.raises(ApiException) as caught:
        api.push_message(push(ALICE, "x"), x_line_retry_key=key)

    assert caught.value.status == 400
    assert "X-Line-Retry-Key" in error_of(caught.value)["message"]
    assert line.count() == 0


def test_refused_request_does_not_consume_its_retry_key(line, api):
    key = str(uuid.uuid4())
    with pytest.raises(ApiException):
        api.push_message(push(ALICE, "x" * 5001), x_line_retry_key=key)

    api.push_message(push(ALICE, "x"), x_line_retry_key=key)

    assert line.texts_for(ALICE) == ["x"]


def test_concurrent_requests_with_one_retry_key_deliver_once(line):
    key = str(uuid.uuid4())
    statuses: list[int] = []

    def send() -> None:
        with ApiClient(Configuration(host=line.url, access_token=TOKEN)) as client:
            try:
                MessagingApi(client).push_message(push(ALICE, "x"), x_line_retry_key=key)
                statuses.append(200)
            except ApiException as exc:
                statuses.append(exc.status)

    threads = [threading.Thread(target=send) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(statuses) == [200] + [409] * 15
    assert line.count() == 1


# --- injected faults --------------------------------------------------------


def test_429_then_retry_with_the_same_key_succeeds_once(line, api):
    line.fail_next(1, status=429)
    key = str(uuid.uuid4())

    with pytest.raises(ApiException) as caught:
        api.push_message_with_http_info(push(ALICE, "x"), x_line_retry_key=key)
    assert caught.value.status == 429
    assert error_of(caught.value) == {
        "message": "The API rate limit has been exceeded. Try again later."
    }
    assert line.count() == 0

    retried = api.push_message_with_http_info(push(ALICE, "x"), x_line_retry_key=key)

    assert retried.status_code == 200
    assert line.count() == 1
    assert line.statuses() == {429: 1, 200: 1}


def test_a_429_can_carry_retry_after(line, api):
    line.fail_next(1, status=429, endpoint="push", retry_after=7)

    with pytest.raises(ApiException) as caught:
        api.push_message(push(ALICE, "x"))

    assert caught.value.status == 429
    assert caught.value.headers["Retry-After"] == "7"
    api.push_message(push(ALICE, "x"))  # the next request goes through
    assert line.count() == 1


def test_5xx_is_a_service_exception_and_keeps_the_key(line, api):
    line.fail_next(2, status=500)
    key = str(uuid.uuid4())

    for _ in range(2):
        with pytest.raises(ServiceException) as caught:
            api.push_message(push(ALICE, "x"), x_line_retry_key=key)
        assert caught.value.status == 500
    api.push_message(push(ALICE, "x"), x_line_retry_key=key)

    assert line.count() == 1


def test_fault_can_target_one_endpoint(line, api):
    line.fail_next(1, status=503, endpoint="multicast")

    api.push_message(push(ALICE, "x"))
    with pytest.raises(ServiceException):
        api.multicast(MulticastRequest(to=[BOB], messages=[TextMessage(text="x")]))

    assert [d.user_id for d in line.deliveries] == [ALICE]


def test_fail_for_is_an_outage_that_ends(line, api, clock):
    line.fail_for(60, status=503)

    with pytest.raises(ServiceException):
        api.push_message(push(ALICE, "x"))
    clock.advance(59)
    with pytest.raises(ServiceException):
        api.push_message(push(ALICE, "x"))
    clock.advance(1)
    api.push_message(push(ALICE, "x"))

    assert line.count() == 1


def test_rate_limiter_answers_429_beyond_n_per_second(line, api, clock):
    line.rate_limit(3, endpoint="push")

    for _ in range(3):
        api.push_message(push(ALICE, "x"))
    with pytest.raises(ApiException) as caught:
        api.push_message(push(ALICE, "x"))
    assert caught.value.status == 429
    api.multicast(MulticastRequest(to=[BOB], messages=[TextMessage(text="x")]))  # own limit
    clock.advance(1.0)
    api.push_message(push(ALICE, "x"))

    assert line.count("push") == 4
    line.rate_limit(None)
    for _ in range(5):
        api.push_message(push(ALICE, "x"))


def test_lost_response_then_retry_gets_409(line, api):
    # The platform accepted the push but the answer never arrived: the SDK
    # raises urllib3's ProtocolError (not ApiException); the retry with the
    # same key is told it was already accepted.
    line.drop_next_responses(1)
    key = str(uuid.uuid4())

    with pytest.raises(urllib3.exceptions.ProtocolError):
        api.push_message(push(ALICE, "x"), x_line_retry_key=key)
    with pytest.raises(ApiException) as caught:
        api.push_message(push(ALICE, "x"), x_line_retry_key=key)

    assert caught.value.status == 409
    assert caught.value.headers["X-Line-Accepted-Request-Id"] == line.deliveries[0].request_id
    assert line.count() == 1


def test_client_timeout_with_latency_still_delivers(line, api):
    line.latency = 0.3

    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        api.push_message(push(ALICE, "x"), _request_timeout=0.05)

    assert len(line.wait_for_deliveries(1, timeout=2)) == 1


def test_monthly_quota_refuses_sends_beyond_it(line, api):
    line.monthly_quota = 3
    api.multicast(MulticastRequest(to=user_ids(3), messages=[TextMessage(text="x")]))

    with pytest.raises(ApiException) as caught:
        api.push_message(push(ALICE, "x"))
    api.reply_message(  # replies are free
        ReplyMessageRequest(
            reply_token=line.issue_reply_token(ALICE), messages=[TextMessage(text="x")]
        )
    )

    quota = api.get_message_quota()
    usage = api.get_message_quota_consumption()
    assert caught.value.status == 429
    assert error_of(caught.value) == {"message": "You have reached your monthly limit."}
    assert (quota.type.value, quota.value, usage.total_usage) == ("limited", 3, 3)


def test_fault_statuses_are_checked():
    fake = LineFake()
    with pytest.raises(ValueError):
        fake.fail_next(1, status=200)
    with pytest.raises(ValueError):
        fake.fail_next(1, status=500, endpoint="broadcast")


# --- reply tokens -----------------------------------------------------------


def test_reply_token_works_once(line, api):
    token = line.issue_reply_token(ALICE)
    request = ReplyMessageRequest(reply_token=token, messages=[TextMessage(text="x")])
    api.reply_message(request)

    with pytest.raises(ApiException) as caught:
        api.reply_message(request)

    assert caught.value.status == 400
    assert error_of(caught.value) == {"message": "Invalid reply token"}
    assert line.count() == 1


def test_expired_reply_token_is_refused(line, api, clock):
    token = line.issue_reply_token(ALICE)
    clock.advance(60)

    with pytest.raises(ApiException) as caught:
        api.reply_message(ReplyMessageRequest(reply_token=token, messages=[TextMessage(text="x")]))

    assert caught.value.status == 400
    assert error_of(caught.value) == {"message": "Invalid reply token"}


def test_unknown_reply_token_is_refused(line, api):
    with pytest.raises(ApiException) as caught:
        api.reply_message(
            ReplyMessageRequest(reply_token="0" * 32, messages=[TextMessage(text="x")])
        )

    assert caught.value.status == 400


def test_faulted_reply_does_not_use_up_the_token(line, api):
    token = line.issue_reply_token(ALICE)
    line.fail_next(1, status=429, endpoint="reply")
    request = ReplyMessageRequest(reply_token=token, messages=[TextMessage(text="x")])

    with pytest.raises(ApiException):
        api.reply_message(request)
    api.reply_message(request)

    assert line.texts_for(ALICE) == ["x"]


# --- other endpoints --------------------------------------------------------


def test_profile_and_bot_info(line, api):
    line.set_profile(ALICE, "山田 花子", status_message="よろしく")

    alice = api.get_profile(ALICE)
    bob = api.get_profile(BOB)
    bot = api.get_bot_info()

    assert (alice.display_name, alice.status_message, alice.language) == (
        "山田 花子",
        "よろしく",
        "ja",
    )
    assert bob.user_id == BOB and bob.display_name
    assert bot.user_id == line.bot_user_id
    assert re.fullmatch(r"U[0-9a-f]{32}", bot.user_id)
    with pytest.raises(ApiException) as caught:
        api.get_profile("bob")
    assert caught.value.status == 400


def test_validate_endpoint_checks_messages_without_sending(line, api):
    api.validate_push(ValidateMessageRequest(messages=[TextMessage(text="x")]))

    with pytest.raises(ApiException) as caught:
        api.validate_push(ValidateMessageRequest(messages=[TextMessage(text="x" * 5001)]))

    assert caught.value.status == 400
    assert line.count() == 0


# --- webhooks (LINE's side) -------------------------------------------------


def test_signed_webhook_parses_with_the_sdk_and_its_reply_tokens_work(line, api):
    webhook = line.webhook_request(
        line.follow_event(ALICE),
        line.text_message_event(ALICE, "商品が届きません 😢"),
        line.unfollow_event(BOB),
    )

    payload = WebhookParser(SECRET).parse(webhook.body.decode("utf-8"), webhook.signature, True)

    follow, message, unfollow = payload.events
    assert payload.destination == line.bot_user_id
    assert isinstance(follow, FollowEvent) and follow.follow.is_unblocked is False
    assert isinstance(message, MessageEvent) and isinstance(message.message, TextMessageContent)
    assert message.message.text == "商品が届きません 😢"
    assert message.source.user_id == ALICE
    assert message.mode.value == "active"
    assert message.delivery_context.is_redelivery is False
    assert isinstance(unfollow, UnfollowEvent) and unfollow.source.user_id == BOB
    api.reply_message(
        ReplyMessageRequest(reply_token=message.reply_token, messages=[TextMessage(text="確認中")])
    )
    assert line.texts_for(ALICE) == ["確認中"]


@pytest.mark.parametrize("forgery", ["wrong secret", "tampered body", "garbage"])
def test_forged_webhook_signature_is_rejected_by_the_sdk(line, forgery):
    webhook = line.webhook_request(line.text_message_event(ALICE, "hello"))
    body = webhook.body.decode("utf-8")
    signature = webhook.signature
    if forgery == "wrong secret":
        signature = line_signature(webhook.body, "another-secret")
    elif forgery == "tampered body":
        body = body.replace("hello", "hellO")
    else:
        signature = "not-a-signature"

    with pytest.raises(InvalidSignatureError):
        WebhookParser(SECRET).parse(body, signature)


def test_webhook_events_have_line_shaped_ids(line):
    event = line.text_message_event(ALICE, "x", redelivery=True)

    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", event["webhookEventId"])
    assert re.fullmatch(r"[0-9a-f]{32}", event["replyToken"])
    assert event["message"]["id"].isdigit()
    assert event["deliveryContext"] == {"isRedelivery": True}
    assert abs(event["timestamp"] - time.time() * 1000) < 5_000


# --- control endpoints and the management command ---------------------------


def test_control_endpoints_steer_a_fake_over_http(line, api):
    received: list[tuple[bytes, str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers["X-Line-Signature"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    line.webhook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks/line/"
    try:
        sent = urllib3.request(
            "POST", line.url + "/__fake__/webhook", json={"userId": ALICE, "text": "届きません"}
        )
        urllib3.request("POST", line.url + "/__fake__/fail", json={"count": 1, "status": 500})
        with pytest.raises(ServiceException):
            api.push_message(push(ALICE, "x"))
        api.reply_message(
            ReplyMessageRequest(
                reply_token=sent.json()["replyToken"], messages=[TextMessage(text="ok")]
            )
        )
        deliveries = urllib3.request("GET", line.url + "/__fake__/deliveries").json()
        reset = urllib3.request("POST", line.url + "/__fake__/reset")
    finally:
        receiver.shutdown()
        receiver.server_close()

    assert sent.json()["status"] == 200
    [(body, signature)] = received
    assert WebhookParser(SECRET).parse(body.decode(), signature)[0].message.text == "届きません"
    assert [d["messages"][0]["text"] for d in deliveries["deliveries"]] == ["ok"]
    assert reset.status == 200
    assert line.count() == 0


def test_describe_accepted_is_one_readable_line():
    accepted = AcceptedRequest(
        endpoint="multicast",
        request_id="r",
        retry_key="0f8fad5b-d9cb-469f-a165-70867728950e",
        recipients=(ALICE, BOB),
        messages=({"type": "text", "text": "夏の\nセール"}, {"type": "sticker"}),
        sent_messages=(),
        accepted_at=None,  # type: ignore[arg-type]
    )

    line = describe_accepted(accepted)

    assert line == f"LINE multicast → 2 users ({ALICE}, …): 「夏の ⏎ セール」 (+1) key=0f8fad5b"


def test_manage_py_line_fake_serves_with_the_settings_token(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "line_fake", "--port", str(port)],
        cwd=BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        config = Configuration(
            host=f"http://127.0.0.1:{port}", access_token=settings.LINE_CHANNEL_ACCESS_TOKEN
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        with ApiClient(config) as client:
            MessagingApi(client).push_message(push(ALICE, "コマンドから"))
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)

    assert f"LINE push → {ALICE}: 「コマンドから」" in output


# --- lifecycle and throughput -------------------------------------------------


def test_stopped_fake_refuses_connections_and_can_not_be_reused_while_running():
    fake = LineFake().start()
    url = fake.url
    with pytest.raises(RuntimeError):
        fake.start()
    fake.stop()

    with pytest.raises(RuntimeError):
        fake.url  # noqa: B018
    with pytest.raises(urllib3.exceptions.HTTPError):
        urllib3.request("GET", url + "/v2/bot/info", retries=False)


def test_campaign_of_100000_recipients_by_multicast_takes_under_10s(line, api, capsys):
    recipients = user_ids(100_000)

    started = time.perf_counter()
    for i in range(0, len(recipients), 500):
        api.multicast_with_http_info(
            MulticastRequest(to=recipients[i : i + 500], messages=[TextMessage(text="夏のセール")]),
            x_line_retry_key=str(uuid.uuid4()),
        )
    elapsed = time.perf_counter() - started

    with capsys.disabled():
        print(f"\nLINE fake: 200 multicasts × 500 recipients via the SDK in {elapsed:.2f} s")
    assert line.count() == 100_000
    assert len(line.accepted_requests) == 200
    assert elapsed < 10
