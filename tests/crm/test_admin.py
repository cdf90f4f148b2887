"""Customer 360 admin, and the read-only order, consent and tag admins."""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.db import connection
from django.templatetags.static import static
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from core.roles import AGENT, MARKETER
from crm.models import (
    ConsentEvent,
    ConsentState,
    Customer,
    CustomerEvent,
    CustomerEventKind,
    LifecycleSegment,
    Order,
)
from crm.services import (
    OrderLineData,
    consent_record,
    customer_merge,
    customer_test_recipient_set,
    customer_upsert,
    order_upsert,
)

pytestmark = pytest.mark.django_db

CUSTOMERS = reverse("admin:crm_customer_changelist")
ORDERS = reverse("admin:crm_order_changelist")
CONSENT_EVENTS = reverse("admin:crm_consentevent_changelist")
TAGS = reverse("admin:crm_tag_changelist")

_serial = itertools.count(1)


def customer_change(customer) -> str:
    return reverse("admin:crm_customer_change", args=[customer.pk])


def customer_make(*, orders: int = 1, tags=("newsletter",), **profile) -> Customer:
    """A customer known on Rakuten, with orders, tags and an email opt-in."""
    n = next(_serial)
    profile = {
        "family_name": f"顧客{n}",
        "family_name_kana": f"コキャク{n}",
        "email": f"customer{n}@example.jp",
        **profile,
    }
    customer, _ = customer_upsert(
        channel="rakuten", external_id=f"rakuten-{n}", tags=tags, **profile
    )
    for index in range(orders):
        order_upsert(
            channel="rakuten",
            order_number=f"R-{n}-{index}",
            customer=customer,
            ordered_at=timezone.now() - timedelta(days=10 + index),
            total=3_000 + index,
            lines=[OrderLineData(sku="TEA-01", name="煎茶", quantity=1, unit_price=3_000)],
        )
    consent_record(customer=customer, channel="email", action="opt_in", source="api")
    customer.refresh_from_db()
    return customer


def consent_page(customer) -> str:
    return reverse("admin:crm_customer_consent", args=[customer.pk])


def change_form_data(response) -> dict:
    """The body the change form posts back as rendered (inline management
    forms included), to be edited by the test."""
    form = response.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is True:
            data[name] = "on"
        elif value in (None, False):
            continue
        else:
            data[name] = value.isoformat() if isinstance(value, date) else value
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for key, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{key}"] = value
    return data


def post_change(client, customer, **changes):
    data = change_form_data(client.get(customer_change(customer)))
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return client.post(customer_change(customer), data)


def results(response) -> list[Customer]:
    return list(response.context["cl"].result_list)


def message_texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- Consent given to staff ----------------------------------------------------------


def test_agent_records_an_opt_out_given_by_phone_with_source_staff_actor_and_note(
    client, colleague
):
    customer = customer_make()  # opted in to email
    client.force_login(colleague)

    form = client.get(consent_page(customer))
    response = client.post(
        consent_page(customer),
        {"channel": "email", "action": "opt_out", "note": "12/5 お電話でメルマガ停止のご依頼"},
    )

    assert form.status_code == 200
    assert response.status_code == 302
    assert response["Location"] == customer_change(customer)
    event = ConsentEvent.objects.get(customer=customer, action="opt_out")
    assert (event.channel, event.source, event.actor) == ("email", "staff", colleague)
    assert event.note == "12/5 お電話でメルマガ停止のご依頼"
    assert not ConsentState.objects.get(customer=customer, channel="email").granted
    with translation.override("ja"):
        recorded = gettext("Recorded: %(action)s for %(channel)s.") % {
            "action": gettext("Opt-out"),
            "channel": gettext("Email"),
        }
        source_label = gettext("Staff (phone or shop counter)")
    assert message_texts(response) == [recorded]
    page = client.get(customer_change(customer)).content.decode()
    assert source_label in page  # the ledger names the source in Japanese


def test_the_consent_form_is_in_japanese_and_linked_from_the_customer_page(client, colleague):
    customer = customer_make()
    client.force_login(colleague)

    change_page = client.get(customer_change(customer)).content.decode()
    form_page = client.get(consent_page(customer)).content.decode()

    assert f'href="{consent_page(customer)}"' in change_page
    with translation.override("ja"):
        labels = [gettext("Record consent"), gettext("Opt-in"), gettext("Opt-out")]
        labels += [gettext("Direct mail"), gettext("Record this consent")]
    for label in labels:
        assert label in form_page
    assert '<html lang="ja"' in form_page


def test_the_ledger_names_the_colleague_who_recorded_consent_not_their_login(client, colleague):
    # given: an opt-out a colleague (佐藤, login "colleague") took by phone
    customer = customer_make()
    client.force_login(colleague)
    client.post(consent_page(customer), {"channel": "email", "action": "opt_out", "note": "お電話"})
    # when: the customer page and the consent ledger are read
    pages = [
        client.get(customer_change(customer)).content.decode(),
        client.get(CONSENT_EVENTS).content.decode(),
    ]
    # then: both name 佐藤; the login name appears only in the header's greeting
    for page in pages:
        assert "佐藤" in page.split('id="content"')[1]
        assert ">colleague<" not in page.split('id="content"')[1]


def test_the_consent_ledger_keeps_action_and_source_on_one_line(client, colleague):
    # スタッフ（電話・店頭） and インポート were broken one character a line
    from django.contrib.staticfiles import finders

    client.force_login(colleague)
    page = client.get(CONSENT_EVENTS).content.decode()

    assert static("crm/admin.css") in page
    css = Path(finders.find("crm/admin.css")).read_text()
    nowrap = {
        selector.strip()
        for selectors, rule in re.findall(
            r"([^{}]+)\{([^}]*)\}", re.sub(r"/\*.*?\*/", "", css, flags=re.S)
        )
        if "white-space: nowrap" in rule
        for selector in selectors.split(",")
    }
    assert {"#result_list td.field-action", "#result_list td.field-source"} <= nowrap


def test_the_customer_timeline_reads_in_japanese_not_as_json(client, colleague):
    # given: a Rakuten customer whom the own site then finds by email, adding a birthday
    customer = customer_make()
    customer_upsert(
        channel="own_site",
        external_id="M-1",
        email=customer.email,
        birthday=date(1990, 4, 1),
    )
    customer_test_recipient_set(customer=customer, value=True, actor=colleague)
    client.force_login(colleague)
    # when
    page = client.get(customer_change(customer)).content.decode()
    # then: channels, fields and how the match was made are named, not stored values
    timeline = page.split('id="customer-timeline"')[1].split("</section>")[0]
    assert "チャネル: 楽天市場" in timeline
    assert "チャネル: 自社サイト / 照合: メールアドレス" in timeline
    assert "M-1" not in timeline  # the channel's code for the person: on the identity
    assert "チャネル: 自社サイト / 変更した項目: 誕生日" in timeline
    assert "変更した項目: テスト送信先" in timeline
    for stored in ("channel", "matched_by", "own_site", "is_test_recipient", "{"):
        assert stored not in timeline.split("<tbody>")[1]


def test_the_consent_form_is_laid_out_like_the_admin_forms(client, colleague):
    customer = customer_make()
    client.force_login(colleague)

    form_page = client.get(consent_page(customer)).content.decode()

    # the admin's form styles (labels beside fields, a wide note, a button back)
    assert static("admin/css/forms.css") in form_page
    assert 'class="vTextField"' in form_page
    assert f'<a href="{customer_change(customer)}" class="closelink">' in form_page


def test_a_manager_records_an_opt_in_given_at_the_shop_counter(client, owner):
    customer = customer_make()
    client.force_login(owner)

    client.post(
        consent_page(customer),
        {"channel": "dm", "action": "opt_in", "note": "店頭でDM希望の用紙に記入"},
    )

    event = ConsentEvent.objects.get(customer=customer, channel="dm")
    assert (event.action, event.source, event.actor) == ("opt_in", "staff", owner)
    assert ConsentState.objects.get(customer=customer, channel="dm").granted


def test_recording_consent_needs_a_note_and_a_known_channel(client, colleague):
    customer = customer_make()
    client.force_login(colleague)
    before = ConsentEvent.objects.count()

    no_note = client.post(consent_page(customer), {"channel": "email", "action": "opt_out"})
    bad_channel = client.post(
        consent_page(customer), {"channel": "sms", "action": "opt_out", "note": "電話"}
    )

    assert no_note.status_code == 200 and "note" in no_note.context["form"].errors
    assert bad_channel.status_code == 200 and "channel" in bad_channel.context["form"].errors
    assert ConsentEvent.objects.count() == before
    assert ConsentState.objects.get(customer=customer, channel="email").granted


def test_a_marketer_cannot_record_consent_and_sees_no_link(client, django_user_model):
    marketer = django_user_model.objects.create_user("marketer", is_staff=True)
    marketer.groups.add(Group.objects.get(name=MARKETER))
    customer = customer_make()
    client.force_login(marketer)
    before = ConsentEvent.objects.count()

    change_page = client.get(customer_change(customer)).content.decode()
    page = client.get(consent_page(customer))
    refused = client.post(
        consent_page(customer), {"channel": "email", "action": "opt_out", "note": "電話"}
    )

    assert consent_page(customer) not in change_page
    assert page.status_code == 403 and refused.status_code == 403
    assert ConsentEvent.objects.count() == before


def test_outsider_cannot_record_consent(client, outsider):
    customer = customer_make()
    client.force_login(outsider)
    before = ConsentEvent.objects.count()

    response = client.post(
        consent_page(customer), {"channel": "email", "action": "opt_out", "note": "電話"}
    )

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert ConsentEvent.objects.count() == before


def test_consent_cannot_be_recorded_on_a_merged_stub(client, owner):
    winner, loser = customer_make(), customer_make()
    customer_merge(winner=winner, loser=loser, actor=owner)
    client.force_login(owner)
    before = ConsentEvent.objects.count()

    response = client.post(
        consent_page(loser), {"channel": "email", "action": "opt_out", "note": "電話"}
    )

    assert response.status_code == 403
    assert ConsentEvent.objects.count() == before


# --- Changelist -----------------------------------------------------------------


def test_customer_changelist_query_count_does_not_grow_with_rows(
    client, owner, django_assert_num_queries
):
    client.force_login(owner)
    for _ in range(5):
        customer_make(orders=2, tags=("newsletter", "gift"))
    # session, user, permissions (2), manager group (claimant candidates link),
    # tag filter choices, page count, rows, the incident banner, the audit row
    with django_assert_num_queries(10):
        response = client.get(CUSTOMERS)
    assert len(results(response)) == 5

    for _ in range(10):
        customer_make(orders=2, tags=("newsletter", "gift"))
    with django_assert_num_queries(10):
        response = client.get(CUSTOMERS)
    assert len(results(response)) == 15


def test_customer_changelist_shows_claimant_badge_only_for_claimants(client, owner):
    calm = customer_make(family_name="穏やか")
    loud = customer_make(family_name="苦情")
    client.force_login(owner)
    post_change(client, loud, is_claimant="on", claimant_reason="暴言が続く")

    response = client.get(CUSTOMERS)

    html = response.content.decode()
    with translation.override("ja"):
        badge = gettext("⚠ Claimant")
    assert html.count('class="claimant-badge"') == 1
    assert badge in html
    rows = {c.pk: c for c in results(response)}
    assert rows[loud.pk].is_claimant and not rows[calm.pk].is_claimant


@pytest.fixture
def yamada():
    customer = customer_make(
        family_name="山田",
        given_name="太郎",
        family_name_kana="ヤマダ",
        given_name_kana="タロウ",
        email="taro.yamada@example.jp",
        phone="090-1234-5678",
        orders=0,
    )
    order_upsert(
        channel="own_site",
        order_number="OS-2024-0001",
        customer=customer,
        ordered_at=timezone.now() - timedelta(days=3),
        total=12_800,
    )
    return customer


@pytest.fixture
def distractors():
    """People a loose search would wrongly match."""
    return [
        customer_make(
            family_name="山本",
            family_name_kana="ヤマモト",
            email="yamamoto@example.jp",
            phone="090-1234-5679",
        ),
        customer_make(family_name="佐藤", family_name_kana="サトウ", orders=0),
    ]


@pytest.mark.parametrize(
    "term",
    [
        "ヤマダ",  # katakana
        "やまだ",  # hiragana
        "ﾔﾏﾀﾞ",  # half-width katakana
        "やまだ たろう",  # reading with a space
        "山田",  # kanji
        "+81 90-1234-5678",  # phone, international format
        "０９０１２３４５６７８",  # phone, full-width digits
        "Taro.Yamada@Example.JP",  # email, any case
        "OS-2024-0001",  # order number
    ],
)
def test_customer_search_finds_by_kana_name_phone_email_and_order_number(
    client, owner, yamada, distractors, term
):
    client.force_login(owner)

    response = client.get(CUSTOMERS, {"q": term})

    assert results(response) == [yamada]


def test_customer_search_by_order_number_is_exact(client, owner, yamada, distractors):
    client.force_login(owner)

    response = client.get(CUSTOMERS, {"q": "OS-2024-000"})

    assert results(response) == []


def test_merged_customers_are_hidden_unless_the_filter_asks_for_them(client, owner):
    winner, loser = customer_make(), customer_make()
    client.force_login(owner)
    client.post(
        CUSTOMERS,
        {
            "action": "merge_customers",
            "_selected_action": [winner.pk, loser.pk],
            "post": "yes",
            "winner": winner.pk,
        },
    )

    assert results(client.get(CUSTOMERS)) == [winner]
    assert results(client.get(CUSTOMERS, {"merged": "yes"})) == [loser]
    assert set(results(client.get(CUSTOMERS, {"merged": "all"}))) == {winner, loser}


def test_customer_changelist_filters_by_channel_and_tag(client, owner):
    on_rakuten = customer_make(tags=("gift",))
    on_line, _ = customer_upsert(channel="line", external_id="U-line-1", family_name="線")
    client.force_login(owner)

    by_channel = client.get(CUSTOMERS, {"identities__channel__exact": "line"})
    gift = on_rakuten.tags.get(name="gift")
    by_tag = client.get(CUSTOMERS, {"tags__id__exact": gift.pk})

    assert results(by_channel) == [on_line]
    assert results(by_tag) == [on_rakuten]


# --- Change page --------------------------------------------------------------


@pytest.fixture
def rich_customer(owner):
    """Known on Rakuten and LINE, with orders, a consent history and a flag."""
    customer = customer_make(orders=2, tags=("gift", "newsletter"), phone="03-1234-5678")
    customer_upsert(channel="line", external_id="U-abc-123", email=customer.email)
    consent_record(customer=customer, channel="line", action="opt_in", source="line")
    consent_record(
        customer=customer, channel="email", action="opt_out", source="unsubscribe", actor=owner
    )
    customer.refresh_from_db()
    return customer


def test_customer_change_page_renders_in_japanese_with_read_only_panels(
    client, owner, rich_customer
):
    client.force_login(owner)

    response = client.get(customer_change(rich_customer))

    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="ja"' in html
    assert "保存" in html  # Django's own Japanese catalogue: the admin speaks Japanese
    assert "U-abc-123" in html  # LINE identity
    for order in rich_customer.orders.all():
        assert order.order_number in html
        assert reverse("admin:crm_order_change", args=[order.pk]) in html
    assert "gift, newsletter" in html
    assert not response.context["inline_admin_formsets"]  # sections to read, not forms
    overview = response.context["overview"]
    assert [identity.channel for identity in overview.identities] == ["line", "rakuten"]
    consent = {line.channel: line.state for line in overview.consent}
    assert consent["email"].granted is False  # the ledger's latest: the opt-out
    assert consent["line"].granted is True
    assert consent["dm"] is None
    assert len(overview.orders.rows) == 2
    assert "order_count" not in response.context["adminform"].form.fields  # read-only metric


def test_customer_change_page_query_count_does_not_grow_with_history(
    client, owner, django_assert_num_queries
):
    small = customer_make(orders=1)
    large = customer_make(orders=6, tags=("a", "b", "c"))
    for _ in range(5):
        consent_record(
            customer=large,
            channel="email",
            action="opt_out",
            source="staff",
            note="電話で配信停止のお申し出",
            actor=owner,
        )
    client.force_login(owner)
    client.get(customer_change(small))  # warm the content-type cache

    # session, user, customer, permissions (2), the overview's six sections
    # (identities, consent, orders, inquiries, messages sent, timeline), tags,
    # whether the user is a manager (the personal-data buttons), the incident
    # banner, the audit row (a view), the address's suppressions
    for customer in (small, large):
        with django_assert_num_queries(16):
            assert client.get(customer_change(customer)).status_code == 200


def test_profile_edit_goes_through_customer_update_with_the_actor(client, owner, rich_customer):
    client.force_login(owner)

    response = post_change(
        client, rich_customer, family_name="田中", phone="+81 90 8765 4321", notes="電話が早い"
    )

    assert response.status_code == 302
    rich_customer.refresh_from_db()
    assert rich_customer.family_name == "田中"
    assert rich_customer.phone_normalized == "09087654321"
    assert rich_customer.notes == "電話が早い"
    event = rich_customer.events.filter(kind=CustomerEventKind.UPDATED).first()
    assert event.actor == owner
    assert sorted(event.data["fields"]) == ["family_name", "notes", "phone"]


def test_service_validation_error_is_a_form_error_and_nothing_is_saved(
    client, owner, rich_customer
):
    client.force_login(owner)
    events_before = rich_customer.events.count()

    response = post_change(client, rich_customer, family_name="田中", postal_code="12345")

    assert response.status_code == 200
    assert "postal_code" in response.context["adminform"].form.errors
    rich_customer.refresh_from_db()
    assert rich_customer.family_name != "田中"
    assert rich_customer.events.count() == events_before


def test_flagging_a_claimant_without_reason_is_refused_and_changes_nothing(
    client, owner, rich_customer
):
    client.force_login(owner)
    events_before = rich_customer.events.count()

    response = post_change(client, rich_customer, is_claimant="on", claimant_reason="")

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    with translation.override("ja"):
        expected = gettext("Enter the reason for flagging this customer as a claimant.")
    assert errors["claimant_reason"] == [expected]
    rich_customer.refresh_from_db()
    assert not rich_customer.is_claimant
    assert rich_customer.lifecycle_segment != LifecycleSegment.CLAIMANT
    assert rich_customer.events.count() == events_before


def test_flagging_and_clearing_a_claimant_go_through_services(client, owner, rich_customer):
    client.force_login(owner)

    post_change(client, rich_customer, is_claimant="on", claimant_reason="返品の強要")
    rich_customer.refresh_from_db()
    assert rich_customer.is_claimant
    assert rich_customer.claimant_set_by == owner
    assert rich_customer.lifecycle_segment == LifecycleSegment.CLAIMANT
    flagged = rich_customer.events.get(kind=CustomerEventKind.CLAIMANT_FLAGGED)
    assert flagged.data == {"reason": "返品の強要"} and flagged.actor == owner

    post_change(client, rich_customer, is_claimant=None)
    rich_customer.refresh_from_db()
    assert not rich_customer.is_claimant
    assert rich_customer.lifecycle_segment == LifecycleSegment.REGULAR
    assert rich_customer.events.filter(kind=CustomerEventKind.CLAIMANT_CLEARED).count() == 1


def test_marking_a_test_recipient_goes_through_the_service(client, owner, rich_customer):
    client.force_login(owner)

    post_change(client, rich_customer, is_test_recipient="on")

    rich_customer.refresh_from_db()
    assert rich_customer.is_test_recipient
    event = rich_customer.events.filter(kind=CustomerEventKind.UPDATED).first()
    assert event.actor == owner and event.data == {"fields": ["is_test_recipient"]}


def test_change_page_of_a_claimant_shows_the_banner(client, owner, rich_customer):
    client.force_login(owner)
    post_change(client, rich_customer, is_claimant="on", claimant_reason="暴言")

    html = client.get(customer_change(rich_customer)).content.decode()

    assert 'class="errornote claimant-banner"' in html
    assert "暴言" in html


def test_adding_a_customer_goes_through_customer_upsert(admin_client, admin_user):
    response = admin_client.post(
        reverse("admin:crm_customer_add"),
        {"family_name": "新規", "family_name_kana": "しんき", "email": "new@example.jp"},
    )

    assert response.status_code == 302
    customer = Customer.objects.get(email_normalized="new@example.jp")
    assert customer.family_name_kana == "シンキ"  # normalised by the service
    assert customer.events.get(kind=CustomerEventKind.CREATED).actor == admin_user


def test_adding_a_known_customer_fills_the_existing_one(admin_client):
    existing = customer_make(email="known@example.jp", phone="")

    response = admin_client.post(
        reverse("admin:crm_customer_add"), {"email": "KNOWN@example.jp", "phone": "0312345678"}
    )

    assert response.status_code == 302
    assert response["Location"] == customer_change(existing)
    assert Customer.objects.count() == 1
    existing.refresh_from_db()
    assert existing.phone_normalized == "0312345678"


# --- Actions ------------------------------------------------------------------


def test_merge_action_asks_which_customer_survives(client, owner):
    first, second = customer_make(), customer_make()
    client.force_login(owner)

    response = client.post(
        CUSTOMERS, {"action": "merge_customers", "_selected_action": [first.pk, second.pk]}
    )

    assert response.status_code == 200
    assert "admin/crm/customer/merge_confirmation.html" in [t.name for t in response.templates]
    assert Customer.objects.filter(merged_into__isnull=False).count() == 0


def test_merge_action_moves_orders_and_keeps_events(client, owner):
    loser = customer_make(orders=2)
    winner = customer_make(orders=1)  # the second of the two: the user's choice counts
    loser_orders = set(loser.orders.values_list("pk", flat=True))
    loser_events = set(loser.events.values_list("pk", flat=True))
    client.force_login(owner)

    response = client.post(
        CUSTOMERS,
        {
            "action": "merge_customers",
            "_selected_action": [winner.pk, loser.pk],
            "post": "yes",
            "winner": winner.pk,
        },
        follow=True,
    )

    loser.refresh_from_db()
    winner.refresh_from_db()
    assert loser.merged_into == winner
    assert set(winner.orders.values_list("pk", flat=True)) >= loser_orders
    assert winner.order_count == 3
    assert set(winner.events.values_list("pk", flat=True)) >= loser_events
    merged = winner.events.get(kind=CustomerEventKind.MERGED)
    assert merged.actor == owner and merged.data["loser_id"] == loser.pk
    assert loser.events.get(kind=CustomerEventKind.MERGED_INTO).actor == owner
    assert any(str(loser) in text for text in message_texts(response))


def test_merge_action_needs_exactly_two_customers(client, owner):
    customers = [customer_make() for _ in range(3)]
    client.force_login(owner)

    response = client.post(
        CUSTOMERS,
        {
            "action": "merge_customers",
            "_selected_action": [c.pk for c in customers],
            "post": "yes",
            "winner": customers[0].pk,
        },
        follow=True,
    )

    assert Customer.objects.filter(merged_into__isnull=False).count() == 0
    with translation.override("ja"):
        assert gettext("Select exactly two customers to merge.") in message_texts(response)


def test_recompute_action_repairs_drifted_lifecycle_metrics(client, owner):
    customer = customer_make(orders=1)
    # Simulate metrics that drifted away from the orders.
    Customer.objects.filter(pk=customer.pk).update(order_count=99, lifecycle_segment="vip")
    client.force_login(owner)

    client.post(CUSTOMERS, {"action": "recompute_lifecycle", "_selected_action": [customer.pk]})

    customer.refresh_from_db()
    assert customer.order_count == 1
    assert customer.lifecycle_segment == LifecycleSegment.NEW


# --- Orders, consent ledger, tags ------------------------------------------------


def test_order_changelist_query_count_does_not_grow_with_rows(
    client, owner, django_assert_num_queries
):
    client.force_login(owner)
    customer_make(orders=5)
    # session, user, permissions (2), page count, rows with their customer, the incident banner
    with django_assert_num_queries(7):
        response = client.get(ORDERS)
    assert len(response.context["cl"].result_list) == 5

    customer_make(orders=5)
    customer_make(orders=5)
    with django_assert_num_queries(7):
        response = client.get(ORDERS)
    assert len(response.context["cl"].result_list) == 15


def test_order_search_is_by_exact_order_number(client, owner):
    customer_make(orders=3)
    wanted = Order.objects.order_by("pk").first()
    client.force_login(owner)

    response = client.get(ORDERS, {"q": wanted.order_number})

    assert list(response.context["cl"].result_list) == [wanted]


def test_orders_are_read_only_even_for_a_superuser(admin_client):
    customer_make(orders=1)
    order = Order.objects.get()
    change_url = reverse("admin:crm_order_change", args=[order.pk])

    page = admin_client.get(change_url)

    assert page.status_code == 200
    assert "TEA-01" in page.content.decode()  # lines shown
    assert not page.context["has_change_permission"]
    assert admin_client.get(reverse("admin:crm_order_add")).status_code == 403
    assert admin_client.post(change_url, {"status": "cancelled"}).status_code == 403
    order.refresh_from_db()
    assert order.status == "paid"


def test_consent_ledger_changelist_is_read_only_and_query_count_is_flat(
    client, owner, django_assert_num_queries
):
    client.force_login(owner)
    for _ in range(5):
        customer_make(orders=0)
    with django_assert_num_queries(7):  # +1: the incident banner
        first = client.get(CONSENT_EVENTS)
    for _ in range(10):
        customer_make(orders=0)
    with django_assert_num_queries(7):
        second = client.get(CONSENT_EVENTS)

    assert len(first.context["cl"].result_list) == 5
    assert len(second.context["cl"].result_list) == 15
    assert client.get(reverse("admin:crm_consentevent_add")).status_code == 403
    event = ConsentEvent.objects.first()
    change_url = reverse("admin:crm_consentevent_change", args=[event.pk])
    assert client.post(change_url, {"action": "opt_out"}).status_code == 403


def test_tag_changelist_counts_customers_with_a_flat_query_count(
    client, owner, django_assert_num_queries
):
    client.force_login(owner)
    for n in range(5):
        customer_make(orders=0, tags=("newsletter", f"tag-{n}"))
    with django_assert_num_queries(7):  # +1: the incident banner
        first = client.get(TAGS)
    for n in range(5, 15):
        customer_make(orders=0, tags=("newsletter", f"tag-{n}"))
    with django_assert_num_queries(7):
        second = client.get(TAGS)

    assert len(first.context["cl"].result_list) == 6
    counts = {tag.name: tag.customer_count for tag in second.context["cl"].result_list}
    assert counts["newsletter"] == 15 and counts["tag-3"] == 1


# --- Permissions ----------------------------------------------------------------


def crm_admin_pages() -> list[str]:
    customer = customer_make(orders=1)
    order = customer.orders.get()
    event = customer.consent_events.get()
    tag = customer.tags.get()
    return [
        CUSTOMERS,
        customer_change(customer),
        reverse("admin:crm_customer_add"),
        consent_page(customer),
        ORDERS,
        reverse("admin:crm_order_change", args=[order.pk]),
        CONSENT_EVENTS,
        reverse("admin:crm_consentevent_change", args=[event.pk]),
        TAGS,
        reverse("admin:crm_tag_change", args=[tag.pk]),
        reverse("admin:crm_tag_add"),
    ]


def test_outsider_is_sent_to_login_from_every_crm_admin_page(client, outsider):
    pages = crm_admin_pages()
    client.force_login(outsider)

    for url in pages:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


def test_outsider_cannot_run_customer_actions(client, outsider):
    first, second = customer_make(), customer_make()
    client.force_login(outsider)

    response = client.post(
        CUSTOMERS,
        {
            "action": "merge_customers",
            "_selected_action": [first.pk, second.pk],
            "post": "yes",
            "winner": first.pk,
        },
    )

    assert response.status_code == 302
    assert not Customer.objects.filter(merged_into__isnull=False).exists()


def test_agent_can_view_edit_and_add_customers(client, colleague):
    customer = customer_make()
    client.force_login(colleague)

    assert client.get(CUSTOMERS).status_code == 200
    assert client.get(customer_change(customer)).status_code == 200
    assert client.get(ORDERS).status_code == 200
    post_change(client, customer, given_name="花子")
    customer.refresh_from_db()
    assert customer.given_name == "花子"
    # agents register people who phone in
    assert client.get(reverse("admin:crm_customer_add")).status_code == 200


def test_marketer_sees_customers_read_only(client, django_user_model):
    marketer = django_user_model.objects.create_user("marketer", is_staff=True)
    marketer.groups.add(Group.objects.get(name=MARKETER))
    customer = customer_make()
    client.force_login(marketer)

    page = client.get(customer_change(customer))
    refused = client.post(customer_change(customer), {"family_name": "改竄"})

    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert refused.status_code == 403
    customer.refresh_from_db()
    assert customer.family_name != "改竄"
    assert client.get(CUSTOMERS).context["action_form"] is None  # no merge, no recompute


def test_merged_customer_page_is_read_only(client, owner):
    winner, loser = customer_make(), customer_make()
    client.force_login(owner)
    client.post(
        CUSTOMERS,
        {
            "action": "merge_customers",
            "_selected_action": [winner.pk, loser.pk],
            "post": "yes",
            "winner": winner.pk,
        },
    )

    page = client.get(customer_change(loser))

    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    assert customer_change(winner) in page.content.decode()
    assert CustomerEvent.objects.filter(customer=loser).count() == 1  # the MERGED_INTO stub


CLAIMANT_SUGGESTIONS = reverse("admin:crm_customer_claimant_suggestions")


def complainer_make(*, complaints: int = 3) -> Customer:
    from tests.tickets import factories as ticket_factories
    from tickets.models import Category

    customer = customer_make()
    defect = Category.objects.get(code="product_defect")
    for n in range(complaints):
        ticket_factories.inquiry(
            customer=customer,
            category=defect,
            subject=f"届いた商品が壊れていた {n}",
            received_at=timezone.now() - timedelta(days=n + 1),
        )
    return customer


def test_a_manager_sees_claimant_candidates_linked_to_their_pages(client, owner):
    candidate = complainer_make()
    latest = candidate.inquiries.order_by("-created_at").first()
    client.force_login(owner)

    changelist = client.get(CUSTOMERS).content.decode()
    page = client.get(CLAIMANT_SUGGESTIONS)
    html = page.content.decode()
    with translation.override("ja"):
        title = gettext("Claimant candidates")

    assert CLAIMANT_SUGGESTIONS in changelist
    assert page.status_code == 200
    assert title in html
    assert customer_change(candidate) in html
    assert reverse("admin:tickets_inquiry_change", args=[latest.pk]) in html
    assert latest.reference in html and latest.subject in html


def test_claimant_candidates_are_never_flagged_until_a_manager_does_it(client, owner):
    # given: a customer with enough complaints, shown to a manager
    candidate = complainer_make()
    client.force_login(owner)
    client.get(CUSTOMERS)
    client.get(CLAIMANT_SUGGESTIONS)
    candidate.refresh_from_db()
    assert not candidate.is_claimant
    assert not candidate.events.filter(kind=CustomerEventKind.CLAIMANT_FLAGGED).exists()

    # when: the manager flags them on their page, with a reason
    post_change(client, candidate, is_claimant="on", claimant_reason="不良品の苦情が続く")

    # then: flagged by that manager, and no longer a candidate
    candidate.refresh_from_db()
    assert candidate.is_claimant and candidate.claimant_set_by == owner
    assert list(client.get(CLAIMANT_SUGGESTIONS).context["suggestions"]) == []


def test_claimant_candidates_page_queries_do_not_grow_with_rows(client, owner):
    client.force_login(owner)
    complainer_make()
    client.get(CLAIMANT_SUGGESTIONS)  # warm the session and permission caches
    with CaptureQueriesContext(connection) as one_row:
        client.get(CLAIMANT_SUGGESTIONS)
    for _ in range(3):
        complainer_make()
    with CaptureQueriesContext(connection) as four_rows:
        html = client.get(CLAIMANT_SUGGESTIONS).content.decode()

    assert html.count("claimant-suggestion-row") == 4
    assert len(four_rows) == len(one_row)


@pytest.mark.parametrize("role", [AGENT, MARKETER])
def test_agents_and_marketers_cannot_see_claimant_candidates(client, django_user_model, role):
    user = django_user_model.objects.create_user(role, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    complainer_make()
    client.force_login(user)

    assert CLAIMANT_SUGGESTIONS not in client.get(CUSTOMERS).content.decode()
    assert client.get(CLAIMANT_SUGGESTIONS).status_code == 403
