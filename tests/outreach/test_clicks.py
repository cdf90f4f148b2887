"""Tracked links: rewritten per delivery by the worker, counted through the
signed redirect, never an open redirect."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.core import signing
from django.test import Client

from outreach import services
from outreach.models import Delivery, MessageTemplate
from tests.outreach.test_dispatch_email import (
    _fast_worker,  # noqa: F401 (autouse fixture)
    campaign_for,
    consented,
    dispatch_until_done,
)

pytestmark = pytest.mark.django_db

SALE = "https://shop.example.jp/sale?item=12"
GUIDE = "https://shop.example.jp/guide"
TRACKED = re.compile(r"https?://[^\s\"<>]+/r/([^/\s\"<>]+)/")


def links_template():
    return services.template_save(
        template=MessageTemplate(
            name="リンク付き",
            channel="email",
            purpose="marketing",
            subject="{{ customer.name }}様、セールのお知らせ",
            body_text=(
                f"セール会場: {SALE}\nご案内は{GUIDE}をご覧ください。\n"
                "配信停止: {{ unsubscribe_url }}"
            ),
            body_html=f'<p><a href="{SALE}">セール会場</a></p>',
        )
    )


def sent_mail(smtp, customer_email="hanako@example.jp"):
    customer = consented(email=customer_email)
    campaign = services.campaign_launch(campaign=campaign_for(links_template()))
    dispatch_until_done(campaign.send)
    [received] = smtp.received
    delivery = Delivery.objects.get(send=campaign.send, customer=customer)
    return campaign, delivery, received.message


def body(message, subtype):
    return next(part.get_content() for part in message.walk() if part.get_content_type() == subtype)


def test_the_templates_links_go_out_as_this_deliverys_tracked_links_and_unsubscribe_stays(smtp):
    _campaign, delivery, message = sent_mail(smtp)
    text, html = body(message, "text/plain"), body(message, "text/html")

    assert SALE not in text and GUIDE not in text and SALE not in html
    tokens = TRACKED.findall(text)
    assert [services.click_token_read(token) for token in tokens] == [
        (delivery.pk, 0),
        (delivery.pk, 1),
    ]
    # the Japanese right after a link is not taken for part of it
    # (signed tokens carry the second they were made: read the token, do not re-sign it)
    [after_guide] = re.findall(r"ご案内は(\S+?/r/([^/\s]+)/)をご覧ください", text)
    assert after_guide[0] == f"{settings.SITE_URL}/r/{after_guide[1]}/"
    assert services.click_token_read(after_guide[1]) == (delivery.pk, 1)
    [html_token] = TRACKED.findall(html)
    assert services.click_token_read(html_token) == (delivery.pk, 0)
    # the unsubscribe link (template variable, footer, header) is the real one
    unsubscribe = message["List-Unsubscribe"].strip("<>")
    assert services.unsubscribe_token_read(unsubscribe.rsplit("/", 2)[1]) == (
        delivery.customer_id,
        "email",
    )
    assert f"配信停止: {unsubscribe}" in text


def test_a_click_is_recorded_per_delivery_and_goes_to_the_templates_link_with_utm(smtp):
    campaign, delivery, message = sent_mail(smtp)
    first, second = TRACKED.findall(body(message, "text/plain"))
    client = Client()

    response = client.get(f"/r/{first}/")
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert target._replace(query="").geturl() == "https://shop.example.jp/sale"
    assert parse_qs(target.query) == {
        "item": ["12"],
        "utm_source": ["madoguchi"],
        "utm_medium": ["email"],
        "utm_campaign": [str(campaign.pk)],
    }
    delivery.refresh_from_db()
    assert delivery.click_count == 1
    first_time = delivery.first_clicked_at
    assert first_time is not None

    assert client.get(f"/r/{second}/")["Location"].startswith(GUIDE + "?utm_source=madoguchi")
    delivery.refresh_from_db()
    assert delivery.click_count == 2
    assert delivery.first_clicked_at == first_time  # the first click's time is kept


def test_utm_parameters_the_template_sets_are_kept():
    send = services.send_create(
        kind="notice", channel="line", purpose="transactional", content={"line_messages": ["x"]}
    )
    link = "https://shop.example.jp/?utm_source=newsletter&utm_campaign=winter"
    query = parse_qs(urlsplit(services.link_with_utm(link, send=send)).query)
    assert query == {
        "utm_source": ["newsletter"],
        "utm_campaign": ["winter"],
        "utm_medium": ["line"],
    }


@pytest.mark.parametrize(
    "token",
    [
        "forged",
        signing.dumps([1, 0], salt="madoguchi.unsubscribe"),  # another salt
        signing.dumps(["https://evil.example/", 0], salt="madoguchi.click"),
        signing.dumps({"url": "https://evil.example/"}, salt="madoguchi.click"),
    ],
    # fixed ids: the signed tokens carry a timestamp, and every xdist worker
    # must collect the same test names
    ids=["forged", "another-salt", "a-url-signed", "a-dict-with-a-url"],
)
def test_a_forged_token_is_refused_with_a_page_and_redirects_nowhere(token, smtp):
    _campaign, delivery, _message = sent_mail(smtp)
    response = Client().get(f"/r/{token}/")
    assert response.status_code == 400
    assert "Location" not in response
    assert "このリンクは無効です" in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.click_count == 0


def test_a_tampered_token_naming_no_link_of_the_template_goes_nowhere(smtp):
    _campaign, delivery, message = sent_mail(smtp)
    token = TRACKED.findall(body(message, "text/plain"))[0]
    altered = token.replace(token[2], "A" if token[2] != "A" else "B", 1)
    beyond = services.click_token(delivery_id=delivery.pk, index=2)  # only 2 links
    nobody = services.click_token(delivery_id=delivery.pk + 1000, index=0)
    for bad in (altered, beyond, nobody):
        response = Client().get(f"/r/{bad}/")
        assert response.status_code == 400
        assert "Location" not in response
    delivery.refresh_from_db()
    assert delivery.click_count == 0


def test_a_line_messages_links_are_each_followers_own_and_count_for_their_delivery(settings):
    from outreach.linefake import LineFake
    from tests.outreach.test_dispatch_line import dispatch_until_done as line_dispatch
    from tests.outreach.test_dispatch_line import follower, line_send, line_template

    with LineFake(channel_access_token="test-token", channel_secret="test-secret") as line:
        settings.LINE_API_HOST = line.url
        settings.LINE_CHANNEL_ACCESS_TOKEN = "test-token"
        settings.LINE_CHANNEL_SECRET = "test-secret"
        first, second = follower(1), follower(2)
        # the same text for everyone would go by multicast; its link is tracked
        # per follower, so each gets a push of their own
        send = line_send(line_template([f"冬のセール会場はこちら {SALE}"]))
        line_dispatch(send)
        assert [r.endpoint for r in line.accepted_requests] == ["push", "push"]
        for customer in (first, second):
            user = customer.identities.get(channel="line").external_id
            [text] = line.texts_for(user)
            [token] = TRACKED.findall(text)
            delivery = Delivery.objects.get(send=send, customer=customer)
            assert services.click_token_read(token) == (delivery.pk, 0)

    response = Client().get(f"/r/{token}/")
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["utm_medium"] == ["line"] and query["item"] == ["12"]
    assert Delivery.objects.get(send=send, customer=second).click_count == 1
    assert Delivery.objects.get(send=send, customer=first).click_count == 0


def test_the_line_length_check_measures_the_tracked_link_not_the_templates():
    from crm.models import Customer
    from outreach.line_texts import line_longest_rendering
    from tests.outreach.test_dispatch_line import follower, line_template

    follower(1)
    text = "あ" * (5000 - len(SALE) - 1) + " " + SALE  # 5,000 as written
    send = services.send_create(
        kind="campaign", channel="line", purpose="marketing", template=line_template([text])
    )
    longest = line_longest_rendering(send=send, audience=Customer.objects.all())
    assert longest.length > 5000 and longest.too_long
