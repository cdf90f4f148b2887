"""Message templates in the admin: saving through the service, errors on
the right field, and the preview rendered by the worker's code."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.roles import MARKETER
from crm import services as crm
from outreach import services
from outreach.demo import DEMO_TEMPLATES, demo_campaign_ensure, demo_templates_ensure
from outreach.models import Campaign, CampaignStatus, Journey, MessageTemplate
from tests.crm import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_builtin_journeys():
    """These tests count and find templates from an empty table: the
    built-in journeys' templates (a data migration) are taken away first."""
    Journey.objects.all().delete()  # its steps with it
    MessageTemplate.objects.all().delete()


ADD = reverse("admin:outreach_messagetemplate_add")
CHANGELIST = reverse("admin:outreach_messagetemplate_changelist")


def change_url(template: MessageTemplate) -> str:
    return reverse("admin:outreach_messagetemplate_change", args=[template.pk])


def preview_url(template: MessageTemplate) -> str:
    return reverse("admin:outreach_messagetemplate_preview", args=[template.pk])


@pytest.fixture
def marketer(django_user_model):
    user = django_user_model.objects.create_user(
        "marketer", password="pw-marketer-1234", is_staff=True, email="mkt@shop.example.jp"
    )
    user.groups.add(Group.objects.get(name=MARKETER))
    return user


def email_post(**fields) -> dict[str, str]:
    return {
        "name": "冬のセール",
        "channel": "email",
        "purpose": "marketing",
        "description": "",
        "subject": "{{ customer.name }}様へ 冬のセール",
        "body_text": "{{ customer.family_name }}様\r\nセール開催中です。",
        "body_html": "",
        **{f"line_message_{n}": "" for n in range(1, 6)},
        **fields,
    }


def line_post(*messages: str, **fields) -> dict[str, str]:
    data = email_post(channel="line", subject="", body_text="", name="新商品", **fields)
    for n, text in enumerate(messages, start=1):
        data[f"line_message_{n}"] = text
    return data


def form_errors(response) -> dict[str, list[str]]:
    return response.context["adminform"].form.errors


def email_template(**fields) -> MessageTemplate:
    values = {
        "name": "冬のセール",
        "channel": "email",
        "purpose": "marketing",
        "subject": "{{ customer.name }}様へ 冬のセール",
        "body_text": "{{ customer.family_name }}様\n\nセール開催中です。",
        **fields,
    }
    return services.template_save(template=MessageTemplate(**values))


# --- Adding and changing -------------------------------------------------------------


def test_a_syntax_error_is_shown_on_its_field_and_nothing_is_saved(client, marketer):
    client.force_login(marketer)
    response = client.post(ADD, email_post(subject="{% if %}セール"))
    assert response.status_code == 200
    assert list(form_errors(response)) == ["subject"]
    assert not MessageTemplate.objects.exists()


def test_an_unknown_variable_is_named_on_its_field(client, marketer):
    client.force_login(marketer)
    response = client.post(ADD, email_post(body_html="<p>{{ customer.password }}</p>"))
    errors = form_errors(response)
    assert list(errors) == ["body_html"]
    assert "customer.password" in errors["body_html"][0]
    assert not MessageTemplate.objects.exists()


def test_a_valid_email_template_is_saved_through_the_service(client, marketer):
    client.force_login(marketer)
    response = client.post(ADD, email_post())
    assert response.status_code == 302
    template = MessageTemplate.objects.get()
    assert template.is_personal
    assert template.created_by == marketer
    assert template.body_text == "{{ customer.family_name }}様\nセール開催中です。"
    assert template.line_messages == []


def test_line_messages_are_assembled_from_the_textareas(client, marketer):
    client.force_login(marketer)
    data = line_post("【{{ shop.name }}】\r\n新商品入荷", "", "{{ shop.url }}")
    response = client.post(ADD, data)
    assert response.status_code == 302
    template = MessageTemplate.objects.get()
    assert template.line_messages == ["【{{ shop.name }}】\n新商品入荷", "{{ shop.url }}"]
    assert template.is_personal is False  # identical for everyone: multicast


def test_a_personal_line_template_is_marked_personal(client, marketer):
    client.force_login(marketer)
    client.post(ADD, line_post("{{ customer.given_name }}様、お誕生日おめでとうございます"))
    assert MessageTemplate.objects.get().is_personal is True


def test_a_line_message_over_the_limit_is_refused_on_its_own_textarea(client, marketer):
    client.force_login(marketer)
    # CRLF from the browser counts once, as the counter on the page shows.
    at_limit = "あ\r\n" * 2499 + "😀"  # 2,499 × 2 + 2 = 5,000 UTF-16 units
    over = "あ" * 4999 + "😀"  # 5,001 units in 5,000 Python characters
    response = client.post(ADD, line_post("ok", at_limit, over))
    errors = form_errors(response)
    assert list(errors) == ["line_message_3"]
    assert "5001" in errors["line_message_3"][0]
    assert not MessageTemplate.objects.exists()

    response = client.post(ADD, line_post("ok", at_limit))
    assert response.status_code == 302
    assert [len(m) for m in MessageTemplate.objects.get().line_messages] == [2, 4999]


def test_a_line_template_needs_a_message(client, marketer):
    client.force_login(marketer)
    response = client.post(ADD, line_post("  ", ""))
    assert list(form_errors(response)) == ["line_message_1"]


def test_the_channel_is_fixed_once_saved_and_edits_go_through_the_service(client, marketer):
    template = email_template()
    client.force_login(marketer)
    page = client.get(change_url(template))
    assert "channel" not in page.context["adminform"].form.fields
    response = client.post(
        change_url(template),
        {
            "name": template.name,
            "purpose": "marketing",
            "description": "",
            "subject": "冬のセール",
            "body_text": "{{ shop.name }}のセール",
            "body_html": "",
        },
    )
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.channel == "email"
    assert template.is_personal is False

    response = client.post(
        change_url(template),
        {"name": template.name, "purpose": "marketing", "subject": "x", "body_text": "{{ x.y }}"},
    )
    assert list(form_errors(response)) == ["body_text"]
    template.refresh_from_db()
    assert template.body_text == "{{ shop.name }}のセール"


def test_editing_a_template_that_is_being_sent_warns(client, marketer):
    template = email_template()
    client.force_login(marketer)
    response = client.get(change_url(template))
    assert not list(response.context["messages"])
    services.send_create(kind="campaign", channel="email", purpose="marketing", template=template)
    response = client.get(change_url(template))
    [warning] = list(response.context["messages"])
    assert warning.level_tag == "warning"


def test_the_add_page_lists_the_documented_variables(client, marketer):
    client.force_login(marketer)
    response = client.get(ADD)
    content = response.content.decode()
    assert "{{ customer.given_name }}" in content
    assert "{{ order.order_number }}" in content
    assert "OS-20261001-0001" in content  # an example value


def test_the_variable_list_names_each_value_a_send_passes(client, marketer):
    # errors and notices name these values (再開予定日): the list says which variable holds each
    client.force_login(marketer)
    content = client.get(ADD).content.decode()
    for variable, name in (
        ("{{ extra.expected_date }}", "お届け予定日"),
        ("{{ extra.expected_resume }}", "再開予定日"),
        ("{{ extra.recovery_eta }}", "復旧見込み"),
    ):
        row = content.split(f"<code>{variable}</code>")[1].split("</tr>")[0]
        assert name in row, variable


def test_changelist_queries_do_not_grow_with_templates(client, marketer, django_assert_num_queries):
    client.force_login(marketer)
    for n in range(3):
        email_template(name=f"t{n}")
    with CaptureQueriesContext(connection) as few:
        assert client.get(CHANGELIST).status_code == 200
    for n in range(3, 12):
        email_template(name=f"t{n}")
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(CHANGELIST)
    assert len(response.context["cl"].result_list) == 12


# --- Preview ---------------------------------------------------------------------------


def test_preview_renders_for_the_chosen_customer_with_the_legal_footer(client, marketer, settings):
    template = email_template(body_html="<p>{{ customer.family_name }}様 <b>セール</b></p>")
    customer = factories.customer(family_name="鈴木", given_name="花子", email="hanako@example.jp")
    client.force_login(marketer)
    response = client.get(preview_url(template), {"customer": customer.pk})
    assert response.status_code == 200
    preview = response.context["preview"]
    assert preview.recipient == "hanako@example.jp"
    assert preview.subject == "鈴木 花子様へ 冬のセール"
    # The footer exactly as the worker appends it, with this customer's link.
    unsubscribe = dict(preview.headers)["List-Unsubscribe"][1:-1]
    token = unsubscribe.removeprefix(f"{settings.SITE_URL}/u/").rstrip("/")
    assert services.unsubscribe_token_read(token) == (customer.pk, "email")
    for body in (preview.text, preview.html):
        assert settings.SHOP_COMPANY in body
        assert settings.SHOP_POSTAL_ADDRESS in body
        assert unsubscribe in body
    content = response.content.decode()
    assert "鈴木 花子様へ 冬のセール" in content
    # The HTML body only inside a sandboxed iframe, escaped into srcdoc.
    assert "<b>セール</b>" not in content
    assert f'srcdoc="{html.escape(preview.html)}"' in content
    assert 'sandbox=""' in content


def test_preview_escapes_what_the_template_and_the_customer_data_produce(client, marketer):
    # Rendered templates are SafeStrings: the page must escape them itself.
    template = email_template(
        subject="{{ customer.family_name }}", body_text="{{ customer.family_name }}<i>x</i>"
    )
    customer = factories.customer(family_name='<script>alert("x")</script>')
    client.force_login(marketer)
    content = client.get(preview_url(template), {"customer": customer.pk}).content.decode()
    assert "<script>alert" not in content and "<i>x</i>" not in content
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;i&gt;x&lt;/i&gt;" in content


def test_preview_of_a_transactional_template_has_no_footer_and_uses_the_latest_order(
    client, marketer, settings
):
    template = email_template(
        name="発送",
        purpose="transactional",
        subject="注文 {{ order.order_number }} 発送",
        body_text="{{ extra.expected_date }}にお届けします",
    )
    customer = factories.customer()
    factories.order(customer=customer, order_number="OS-77")
    client.force_login(marketer)
    response = client.get(
        preview_url(template), {"customer": customer.pk, "extra": "expected_date=12月5日"}
    )
    preview = response.context["preview"]
    assert preview.subject == "注文 OS-77 発送"
    assert preview.text == "12月5日にお届けします"
    assert settings.SHOP_POSTAL_ADDRESS not in preview.text
    assert preview.headers == ()


def test_preview_shows_line_bubbles(client, marketer):
    template = services.template_save(
        template=MessageTemplate(
            name="誕生日",
            channel="line",
            line_messages=["{{ customer.given_name }}様 🎂", "{{ shop.url }}"],
        )
    )
    customer = factories.customer(given_name="花子")
    client.force_login(marketer)
    response = client.get(preview_url(template), {"customer": customer.pk})
    assert response.status_code == 200
    assert response.context["preview"].line_messages[0] == ("花子様 🎂", 6)  # the emoji counts 2
    assert 'class="line-bubble">花子様 🎂<' in response.content.decode()


def test_preview_without_a_customer_asks_for_one_and_bad_extra_is_a_form_error(client, marketer):
    template = email_template()
    client.force_login(marketer)
    response = client.get(preview_url(template))
    assert response.status_code == 200 and response.context["preview"] is None
    customer = factories.customer()
    response = client.get(preview_url(template), {"customer": customer.pk, "extra": "no equals"})
    assert response.status_code == 200
    assert "extra" in response.context["form"].errors


def test_agents_may_look_but_not_add_and_outsiders_are_sent_to_login(client, colleague, outsider):
    template = email_template()
    customer = factories.customer()
    client.force_login(colleague)
    assert client.get(preview_url(template), {"customer": customer.pk}).status_code == 200
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, email_post(name="x")).status_code == 403
    client.force_login(outsider)
    for url in (CHANGELIST, preview_url(template)):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response.url


# --- Demo data ---------------------------------------------------------------------------


def test_demo_templates_and_campaigns_are_created_once(owner):
    templates = demo_templates_ensure(actor=owner)
    assert set(templates) == {values["name"] for values in DEMO_TEMPLATES}
    assert templates["新商品入荷のお知らせ"].is_personal is False
    assert templates["お誕生日クーポン"].is_personal is True
    assert templates["冬のセールのお知らせ"].body_html
    campaigns = demo_campaign_ensure(actor=owner)
    assert [c.status for c in campaigns] == [CampaignStatus.DRAFT, CampaignStatus.SCHEDULED]
    # again: nothing new
    demo_templates_ensure()
    demo_campaign_ensure()
    assert MessageTemplate.objects.count() == len(DEMO_TEMPLATES)
    assert Campaign.objects.count() == 2


def test_demo_transactional_templates_render_with_an_order(settings):
    templates = demo_templates_ensure()
    customer = factories.customer(family_name="佐藤", given_name="一郎")
    order = factories.order(customer=customer, order_number="OS-9")
    crm.consent_record(customer=customer, channel="email", action="opt_in", source="api")
    from outreach.admin.templates import template_preview

    delay = template_preview(
        template=templates["配送遅延のお詫び"],
        customer=customer,
        order=order,
        extra={"expected_date": "2026年12月5日"},
    )
    assert "お届け予定日: 2026年12月5日" in delay.text
    assert "OS-9" in delay.subject and not delay.error
