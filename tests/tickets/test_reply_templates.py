"""Reply templates: no bare 「様」 for a customer without a name, LINE
variants (chosen by the picker for a reply by LINE, refused when they read
like a mail)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation

from crm.services import customer_upsert
from tests.crm import factories as crm_factories
from tests.tickets import factories
from tickets.models import ReplyTemplate
from tickets.reply_templates import (
    DELIVERY_DELAY,
    LINE_VARIANT_MAX_CHARS,
    SEED_TEMPLATES,
    reply_template_render,
    reply_template_save,
    reply_templates_ensure,
)

pytestmark = pytest.mark.django_db

MAIL_TEXT = (
    "{{ customer.name }}様\n\nいつもご利用いただき、誠にありがとうございます。\n"
    "本メールへのご返信にてお知らせください。\n"
)
LINE_TEXT = "{{ customer.name }}様\nご連絡ありがとうございます。このトークにご返信ください。"


def template(**fields) -> ReplyTemplate:
    return reply_template_save(
        template=ReplyTemplate(name=fields.pop("name", "お問い合わせ御礼"), **fields)
    )


def line_customer():
    return customer_upsert(channel="line", external_id="U" + "c3" * 16)[0]


# --- No bare 「様」 ---------------------------------------------------------------------


def test_a_customer_without_a_name_is_greeted_as_okyakusama():
    inquiry = factories.inquiry(channel="line", customer=line_customer())
    rendered = reply_template_render(template=template(body=MAIL_TEXT), inquiry=inquiry)
    assert rendered.body.startswith("お客様\n\nいつも")
    assert "customer.name" in rendered.missing  # the agent is still told


def test_a_named_customer_keeps_their_name():
    customer = crm_factories.customer(family_name="山本", given_name="一郎")
    inquiry = factories.inquiry(customer=customer)
    rendered = reply_template_render(template=template(body=MAIL_TEXT), inquiry=inquiry)
    assert rendered.body.startswith("山本 一郎様\n")


def test_every_seed_template_opens_without_a_bare_sama_for_a_nameless_customer():
    templates, _created = reply_templates_ensure()
    inquiry = factories.inquiry(channel="line", customer=line_customer())
    for name, _code, _body in SEED_TEMPLATES:
        for channel in ("email", "line"):
            body = reply_template_render(
                template=templates[name], inquiry=inquiry, channel=channel
            ).body
            assert body.startswith("お客様"), (name, channel, body[:20])


# --- LINE variants -----------------------------------------------------------------


def test_a_line_reply_renders_the_line_variant_and_a_mail_the_mail_text():
    chosen = template(body=MAIL_TEXT, line_body=LINE_TEXT)
    inquiry = factories.inquiry(channel="line", customer=line_customer())

    by_line = reply_template_render(template=chosen, inquiry=inquiry, channel="line")
    by_mail = reply_template_render(template=chosen, inquiry=inquiry, channel="email")

    assert by_line.is_line_variant and "このトーク" in by_line.body
    assert "本メール" not in by_line.body
    assert not by_mail.is_line_variant and "本メール" in by_mail.body


def test_a_line_reply_without_a_variant_gets_the_template_text():
    chosen = template(body=MAIL_TEXT)
    inquiry = factories.inquiry(channel="line", customer=line_customer())
    rendered = reply_template_render(template=chosen, inquiry=inquiry, channel="line")
    assert not rendered.is_line_variant and "本メール" in rendered.body


@pytest.mark.parametrize(
    ("line_body", "says"),
    [
        ("{{ customer.name }}様\n本メールにご返信ください。", "「本メール」"),
        ("お届けが遅れております。このメールへご返信ください。", "「このメール」"),
        ("お届けが遅れております。\n――――――――――\nまどぐち雑貨店", "署名"),
        ("お届けが遅れております。\nE-mail: {{ shop.contact_email }}", "署名"),
        ("あ" * (LINE_VARIANT_MAX_CHARS + 1), f"{LINE_VARIANT_MAX_CHARS}"),
    ],
)
def test_a_line_variant_that_reads_like_a_mail_is_refused_in_japanese(line_body, says):
    with translation.override("ja"), pytest.raises(ValidationError) as caught:
        template(body=MAIL_TEXT, line_body=line_body)
    messages = caught.value.message_dict["line_body"]
    assert any(says in message for message in messages), messages
    assert all("LINE" in message for message in messages)
    assert not ReplyTemplate.objects.filter(name="お問い合わせ御礼").exists()


def test_seed_line_variants_pass_their_own_check():
    templates, _created = reply_templates_ensure()
    assert templates[DELIVERY_DELAY].line_body
    assert "本メール" not in templates[DELIVERY_DELAY].line_body


def test_the_template_admin_refuses_mail_wording_in_the_line_text(client, owner):
    client.force_login(owner)
    with translation.override("ja"):
        response = client.post(
            reverse("admin:tickets_replytemplate_add"),
            {
                "name": "遅延のお詫び",
                "body": MAIL_TEXT,
                "line_body": "本メールへのご返信をお待ちしております。",
                "is_active": "on",
            },
            HTTP_ACCEPT_LANGUAGE="ja",
        )
    assert response.status_code == 200
    assert "「本メール」" in response.content.decode()
    assert not ReplyTemplate.objects.filter(name="遅延のお詫び").exists()


def test_the_picker_offers_the_line_variant_for_a_line_inquiry(client, colleague):
    chosen = template(body=MAIL_TEXT, line_body=LINE_TEXT)
    line_inquiry = factories.inquiry(channel="line", customer=line_customer())
    mail_inquiry = factories.inquiry(channel="email")
    client.force_login(colleague)

    def picked(inquiry, **params) -> dict:
        url = reverse("admin:tickets_inquiry_reply_template", args=[inquiry.pk])
        return client.get(url, {"template": chosen.pk, **params}).json()

    line_default = picked(line_inquiry)
    assert line_default["line_variant"] is True
    assert line_default["body"].startswith("お客様\nご連絡ありがとうございます。")
    # The agent switched the reply to email: the mail text.
    switched = picked(line_inquiry, channel="email")
    assert switched["line_variant"] is False and "本メール" in switched["body"]
    assert picked(mail_inquiry)["line_variant"] is False
    assert (
        client.get(
            reverse("admin:tickets_inquiry_reply_template", args=[line_inquiry.pk]),
            {"template": chosen.pk, "channel": "fax"},
        ).status_code
        == 400
    )
