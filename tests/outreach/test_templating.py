"""Template validation (syntax, variables, LINE limits) and rendering."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from outreach.templating import (
    LINE_MAX_MESSAGES,
    LINE_MAX_TEXT_UTF16,
    render_email,
    render_line,
    template_context,
    template_validate,
    utf16_length,
    variable_label,
)
from tests.crm import factories

JST = ZoneInfo("Asia/Tokyo")
# templating._variables reads a filter expression's value but not the
# variables passed as filter arguments; fix proposed to the lead (remove the
# mark with it: strict, so a fixed walker makes these tests fail loudly).
EMOJI = "😀"  # outside the BMP: 1 Python character, 2 UTF-16 units


def email_errors(**fields) -> dict[str, list[str]]:
    values = {"subject": "件名", "body_text": "本文", **fields}
    with pytest.raises(ValidationError) as caught:
        template_validate(channel="email", **values)
    return caught.value.message_dict


def email_check(**fields):
    return template_validate(channel="email", **{"subject": "件名", "body_text": "本文", **fields})


# --- Variables, wherever a template reads them ---------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ customer.nickname }}",
        "{{ customer.nickname|default:'お客様' }}",
        pytest.param("{{ shop.name|add:customer.nickname }}"),
        "{% if customer.nickname %}やあ{% endif %}",
        "{% if customer.name and not customer.nickname %}やあ{% endif %}",
        "{% if customer.name %}{% else %}{{ customer.nickname }}{% endif %}",
        "{% for item in customer.nickname %}{{ item }}{% endfor %}",
        "{% with nick=customer.nickname %}{{ nick }}{% endwith %}",
        "{% for x in customer.name %}{% if customer.nickname %}{% endif %}{% endfor %}",
    ],
)
def test_an_unknown_attribute_is_found_through_tags_and_filters(source):
    errors = email_errors(body_text=source)
    assert list(errors) == ["body_text"]
    assert "customer.nickname" in errors["body_text"][0]


@pytest.mark.parametrize(
    "source", ["{{ password }}", "{{ user.email }}", "{% if request %}{% endif %}"]
)
def test_a_variable_outside_the_documented_context_is_refused(source):
    errors = email_errors(subject=source)
    assert list(errors) == ["subject"]


@pytest.mark.parametrize(
    "source",
    [
        "{% for item in customer.name %}{{ item }}{{ forloop.counter }}{% endfor %}",
        "{% with n=customer.given_name %}{{ n }}様{% endwith %}",
        "{{ extra.expected_date }}までにお届けします",
        "{{ order.ordered_at|date:'n月j日' }} {{ unsubscribe_url }}",
    ],
)
def test_loop_and_with_names_and_extra_values_are_allowed(source):
    assert email_check(body_text=source).is_personal


@pytest.mark.parametrize(
    "source", ["{% if %}x{% endif %}", "{% endif %}", "{% for %}", "{% load static %}"]
)
def test_a_syntax_error_is_reported_on_its_field(source):
    errors = email_errors(body_html=source)
    assert list(errors) == ["body_html"]


def test_every_field_reports_its_own_problems_at_once():
    errors = email_errors(subject="{% if %}", body_text="{{ nobody }}", body_html="{{ shop.boss }}")
    assert set(errors) == {"subject", "body_text", "body_html"}


def test_an_email_needs_a_subject_and_a_text_body():
    with pytest.raises(ValidationError) as caught:
        template_validate(channel="email", subject=" ", body_text="")
    assert set(caught.value.message_dict) == {"subject", "body_text"}


# --- LINE limits -----------------------------------------------------------------------


def line_check(messages):
    return template_validate(channel="line", line_messages=messages)


def test_five_line_messages_are_accepted_and_six_refused():
    assert line_check(["a"] * LINE_MAX_MESSAGES)
    with pytest.raises(ValidationError) as caught:
        line_check(["a"] * (LINE_MAX_MESSAGES + 1))
    assert list(caught.value.message_dict) == ["line_messages"]


@pytest.mark.parametrize("messages", [[], [""], ["ok", "  "], "not a list"])
def test_line_needs_one_to_five_non_empty_messages(messages):
    with pytest.raises(ValidationError):
        line_check(messages)


def test_line_length_counts_utf16_units_so_an_emoji_at_the_boundary_counts_twice():
    at_limit = "あ" * (LINE_MAX_TEXT_UTF16 - 2) + EMOJI
    over = "あ" * (LINE_MAX_TEXT_UTF16 - 1) + EMOJI
    # Python sees 5,000 characters in both: only UTF-16 tells them apart.
    assert len(over) == LINE_MAX_TEXT_UTF16
    assert utf16_length(at_limit) == 5000
    assert utf16_length(over) == 5001
    assert line_check(["short", at_limit])
    with pytest.raises(ValidationError) as caught:
        line_check(["short", over])
    [message] = caught.value.message_dict["line_messages"]
    assert "5001" in message and "2" in message


# --- Personal or identical content ----------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "personal"),
    [
        (["【{{ shop.name }}】新商品が入荷しました"], False),
        (["新商品", "{{ shop.url }}"], False),
        (["{{ customer.given_name }}様、お誕生日おめでとうございます"], True),
        (["{% if customer.order_count %}いつもありがとうございます{% endif %}"], True),
        (["配信停止: {{ unsubscribe_url }}"], True),
        (["お届け予定日: {{ extra.expected_date }}"], True),
        (["注文番号 {{ order.order_number }}"], True),
        pytest.param(["【{{ shop.name|add:customer.given_name }}】"], True),
    ],
)
def test_content_is_personal_when_it_reads_a_per_recipient_value(messages, personal):
    assert line_check(messages).is_personal is personal


# --- Rendering -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_context_renders_customer_order_and_shop(settings):
    customer = factories.customer(family_name="鈴木", given_name="花子", email="hanako@example.jp")
    order = factories.order(
        customer=customer,
        order_number="OS-1001",
        total=4980,
        ordered_at=datetime(2026, 10, 1, 23, 30, tzinfo=JST),
    )
    customer.refresh_from_db()
    context = template_context(
        customer=customer,
        order=order,
        unsubscribe_url="https://example.jp/u/x/",
        extra={"expected_date": "12月5日"},
    )
    rendered = render_email(
        subject="{{ customer.family_name }}様 注文 {{ order.order_number }}",
        body_text=(
            "{{ customer.name }} / {{ order.total }}円 / {{ order.ordered_at|date:'Y-m-d H:i' }}"
            " / {{ order.channel_name }} / {{ shop.company }} / {{ extra.expected_date }}"
            " / {{ unsubscribe_url }} / {{ customer.order_count }}"
        ),
        body_html="",
        context=context,
    )
    assert rendered.subject == "鈴木様 注文 OS-1001"
    assert rendered.text == (
        f"鈴木 花子 / 4980円 / 2026-10-01 23:30 / {order.get_channel_display()}"
        f" / {settings.SHOP_COMPANY}"
        " / 12月5日 / https://example.jp/u/x/ / 1"
    )


def test_html_is_escaped_and_text_is_not():
    context = template_context(customer=None, extra={"note": '<b>R&D</b> "特価"'})
    rendered = render_email(
        subject="{{ extra.note }}",
        body_text="{{ extra.note }}",
        body_html="<p>{{ extra.note }}</p>",
        context=context,
    )
    assert rendered.text == '<b>R&D</b> "特価"'
    assert rendered.subject == '<b>R&D</b> "特価"'
    assert rendered.html == "<p>&lt;b&gt;R&amp;D&lt;/b&gt; &quot;特価&quot;</p>"


def test_a_subject_is_one_line_whatever_the_template_produced():
    rendered = render_email(
        subject="冬の\n{% if shop.name %}\n  セール\n{% endif %}",
        body_text="x",
        body_html="",
        context=template_context(customer=None),
    )
    assert rendered.subject == "冬の セール"


def test_line_messages_render_without_escaping_and_trimmed(settings):
    texts = render_line(
        messages=["\n{{ extra.name }}様 & ご家族様\n", "{{ shop.url }}"],
        context=template_context(customer=None, extra={"name": "<山田>"}),
    )
    assert texts == ["<山田>様 & ご家族様", settings.SHOP_URL]


def test_a_source_is_compiled_once_and_an_edited_source_afresh():
    from outreach.templating import compiled, render_string

    context = template_context(customer=None, extra={"name": "花子"})
    source = "{{ extra.name }}様、冬のセール (cache test)"
    assert render_string(source, context) == "花子様、冬のセール (cache test)"
    assert compiled(source) is compiled(source)

    edited = "{{ extra.name }}様、春のセール (cache test)"
    assert render_string(edited, context) == "花子様、春のセール (cache test)"
    assert compiled(edited) is not compiled(source)
    # the old source (a send's snapshot) still renders as it was written
    assert render_string(source, context) == "花子様、冬のセール (cache test)"


def test_a_cached_template_escapes_per_render_not_per_compile():
    from outreach.templating import render_string

    source = "<p>{{ extra.note }}</p>"
    context = template_context(customer=None, extra={"note": "R&D"})
    assert render_string(source, context, autoescape=True) == "<p>R&amp;D</p>"
    assert render_string(source, context) == "<p>R&D</p>"


# --- No bare 「様」 ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_campaign_greeting_for_a_customer_without_a_name_reads_okyakusama():
    customer = factories.customer(family_name="", given_name="", channel="line")
    context = template_context(customer=customer)
    mail = render_email(
        subject="【{{ shop.name }}】{{ customer.name }}様へ セールのお知らせ",
        body_text="{{ customer.name }}様\n\nいつもありがとうございます。",
        body_html="<p>{{ customer.name }} 様</p>",
        context=context,
    )
    assert mail.subject.endswith("】お客様へ セールのお知らせ")
    assert mail.text.startswith("お客様\n\n")
    assert mail.html == "<p>お客様</p>"
    line = render_line(
        messages=["{{ customer.given_name }}様、お誕生日おめでとうございます"], context=context
    )
    assert line == ["お客様、お誕生日おめでとうございます"]


@pytest.mark.django_db
def test_a_named_greeting_and_words_with_sama_stay_as_written():
    customer = factories.customer(family_name="山本", given_name="一郎")
    text = render_line(
        messages=["{{ customer.name }} 様\n様々な商品をご用意しました。ご様子はいかがですか。"],
        context=template_context(customer=customer),
    )
    assert text == ["山本 一郎 様\n様々な商品をご用意しました。ご様子はいかがですか。"]


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("extra.expected_date", "お届け予定日"),
        ("extra.restock_date", "入荷予定日"),
        ("extra.recovery_eta", "復旧見込み"),
        ("extra.expected_resume", "再開予定日"),
        ("order.order_number", "注文: 注文番号"),
        ("order.channel_name", "注文: チャネル"),
        ("customer.name", "顧客: 名前"),
        ("inquiry.reference", "問い合わせ: 受付番号"),
        # nothing known: the variable as the template writes it, never a guess
        ("extra.coupon_code", "extra.coupon_code"),
        ("shop.name", "shop.name"),
    ],
)
def test_a_template_variable_is_named_as_people_know_it(path, label):
    with translation.override("ja"):
        assert variable_label(path) == label
