"""Customers (crm.services.customers): one customer per person across channels,
what each channel gave, the claimant flag, a person's edits."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from crm import services
from crm.models import (
    ChannelIdentity,
    Customer,
    CustomerChannelProfile,
    CustomerEvent,
    CustomerEventKind,
    LifecycleSegment,
)
from tests.crm import factories

pytestmark = pytest.mark.django_db


def test_same_person_from_rakuten_then_email_then_line_is_one_customer():
    # given a Rakuten member
    rakuten, created = services.customer_upsert(
        channel="rakuten",
        external_id="rakuten-member-8812",
        family_name="山田",
        given_name="花子",
        family_name_kana="やまだ",
        given_name_kana="ハナコ",
        email="Hanako.Yamada@Example.jp",
        phone="090-1234-5678",
    )
    assert created
    # when she writes by email with her address in another case
    by_mail, created = services.customer_upsert(channel="email", email="hanako.yamada@example.jp ")
    assert not created
    # and follows the shop on LINE, giving her phone in +81 form
    by_line, created = services.customer_upsert(
        channel="line", external_id="U" + "a" * 32, phone="+81 90 1234 5678"
    )
    assert not created
    # then she is one customer known on three channels
    assert rakuten.pk == by_mail.pk == by_line.pk
    assert Customer.objects.count() == 1
    assert set(
        ChannelIdentity.objects.filter(customer=rakuten).values_list("channel", "external_id")
    ) == {
        ("rakuten", "rakuten-member-8812"),
        ("email", "hanako.yamada@example.jp"),
        ("line", "U" + "a" * 32),
    }
    assert rakuten.family_name_kana == "ヤマダ"
    kinds = list(CustomerEvent.objects.filter(customer=rakuten).values_list("kind", flat=True))
    assert kinds.count(CustomerEventKind.IDENTITY_ADDED) == 2


def test_known_identity_updates_profile_but_email_match_only_fills_blanks():
    customer, _ = services.customer_upsert(
        channel="own_site", external_id="m1", email="a@example.jp", family_name="佐藤"
    )
    services.customer_upsert(
        channel="rakuten",
        external_id="r1",
        email="a@example.jp",
        family_name="鈴木",
        prefecture="東京都",
    )
    customer.refresh_from_db()
    assert customer.family_name == "佐藤"  # the mall does not overwrite the shop's data
    assert customer.prefecture == "東京都"  # but fills what was blank
    services.customer_upsert(channel="own_site", external_id="m1", family_name="佐藤(旧姓 鈴木)")
    customer.refresh_from_db()
    assert customer.family_name == "佐藤(旧姓 鈴木)"


def test_a_repeat_buyer_with_the_profile_we_hold_is_one_read_and_no_transaction():
    profile = {"email": "a@example.jp", "family_name": "佐藤", "phone": "090-1234-5678"}
    customer, _ = services.customer_upsert(channel="own_site", external_id="m1", **profile)
    with CaptureQueriesContext(connection) as queries:
        again, created = services.customer_upsert(channel="own_site", external_id="m1", **profile)
    assert (again.pk, created) == (customer.pk, False)
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert "FROM crm_channelidentity" in queries[0]["sql"]
    # A changed value, a tag or a new identity is still written, as before.
    with CaptureQueriesContext(connection) as queries:
        services.customer_upsert(channel="own_site", external_id="m1", **profile, tags=["VIP"])
    assert any("SAVEPOINT" in q["sql"] for q in queries)
    services.customer_upsert(channel="own_site", external_id="m1", **{**profile, "phone": ""})
    services.customer_upsert(channel="own_site", external_id="m1", given_name="花子")
    customer.refresh_from_db()
    assert customer.given_name == "花子"
    assert customer.phone == "090-1234-5678"  # blank means "not given"
    assert list(customer.tags.values_list("name", flat=True)) == ["VIP"]


def test_different_people_stay_apart():
    one, _ = services.customer_upsert(channel="rakuten", external_id="r1", email="one@example.jp")
    two, _ = services.customer_upsert(channel="rakuten", external_id="r2", email="two@example.jp")
    assert one.pk != two.pk


def test_identity_of_a_merged_customer_resolves_to_the_winner():
    winner = factories.customer(channel="own_site", external_id="w")
    loser = factories.customer(channel="rakuten", external_id="l")
    services.customer_merge(winner=winner, loser=loser, actor=None)
    found, created = services.customer_upsert(channel="rakuten", external_id="l")
    assert not created and found.pk == winner.pk


def test_bad_profile_input_is_refused_with_the_field_and_nothing_is_written():
    with pytest.raises(ValidationError) as excinfo:
        services.customer_upsert(
            channel="own_site", external_id="x", postal_code="12", prefecture="東京"
        )
    assert set(excinfo.value.message_dict) == {"postal_code", "prefecture"}
    assert not Customer.objects.exists()
    assert not ChannelIdentity.objects.exists()


def test_address_match_prefers_email_then_the_oldest_customer_then_identities():
    phone_only = factories.customer(channel="rakuten", external_id="p", phone="090-1111-2222")
    older = factories.customer(channel="rakuten", external_id="e1", email="same@example.jp")
    Customer.objects.create(email="same@example.jp", email_normalized="same@example.jp")
    # Email and phone both match different people: the email match wins.
    found = services.customer_resolve(email="SAME@example.jp", phone="09011112222")
    assert (found.customer.pk, found.matched_by) == (older.pk, "email")
    found = services.customer_resolve(email="other@example.jp", phone="+81 90 1111 2222")
    assert (found.customer.pk, found.matched_by) == (phone_only.pk, "phone")
    # An email identity (no profile address) is found when no profile matches.
    by_identity, _ = services.customer_upsert(channel="email", email="mail@example.jp")
    Customer.objects.filter(pk=by_identity.pk).update(email="", email_normalized="")
    found = services.customer_resolve(email="mail@example.jp", phone="09011112222")
    assert (found.customer.pk, found.matched_by) == (by_identity.pk, "email")
    assert services.customer_resolve(email="", phone="") == services.Resolution(None, "")
    # By phone alone, the oldest customer with that number, whatever their email.
    Customer.objects.create(phone="090-1111-2222", phone_normalized="09011112222")
    found = services.customer_resolve(phone="090-1111-2222")
    assert (found.customer.pk, found.matched_by) == (phone_only.pk, "phone")


def test_customer_constraints_involve_no_profile_field():
    """Profile writes skip the constraint queries of full_clean (the
    database enforces them): that is only right while no check constraint
    reads a field a profile write can change."""
    for constraint in Customer._meta.constraints:
        fields = _condition_fields(constraint.condition)
        assert not fields & set(services.PROFILE_FIELDS), constraint.name


def _condition_fields(node) -> set[str]:
    fields = set()
    for child in node.children:
        if isinstance(child, Q):
            fields |= _condition_fields(child)
        else:
            name, value = child
            fields.add(name.split("__")[0])
            if hasattr(value, "name"):  # F("other_field")
                fields.add(value.name)
    return fields


def profiles(customer) -> dict[str, dict]:
    """What each channel gave of the customer, blanks left out."""
    return {
        row.channel: {
            name: getattr(row, name) for name in services.PROFILE_FIELDS if getattr(row, name)
        }
        for row in CustomerChannelProfile.objects.filter(customer=customer)
    }


def test_each_channel_keeps_what_it_gave_of_a_customer():
    amazon, _ = services.customer_upsert(
        channel="amazon", external_id="amzn-1", family_name="松本", email="m@example.jp"
    )
    # the own site meets the same person by email and gives a phone number
    own, created = services.customer_upsert(
        channel="own_site", external_id="m-1", email="M@example.jp", phone="090-1111-2222"
    )
    assert (own.pk, created) == (amazon.pk, False)
    assert profiles(own) == {
        "amazon": {"family_name": "松本", "email": "m@example.jp"},
        "own_site": {"email": "M@example.jp", "phone": "090-1111-2222"},
    }
    assert CustomerChannelProfile.objects.get(channel="own_site").email_normalized == (
        "m@example.jp"
    )
    # a channel's later values overwrite its own, never another channel's
    services.customer_upsert(channel="own_site", external_id="m-1", family_name="松本（旧姓）")
    assert profiles(own)["own_site"]["family_name"] == "松本（旧姓）"
    assert profiles(own)["amazon"]["family_name"] == "松本"


def test_a_repeat_upsert_writes_the_channels_profile_when_only_it_differs():
    customer, _ = services.customer_upsert(
        channel="own_site", external_id="m1", family_name="佐藤", email="s@example.jp"
    )
    services.customer_upsert(channel="rakuten", external_id="r1", email="s@example.jp")
    services.customer_upsert(channel="rakuten", external_id="r1", family_name="加藤")
    customer.refresh_from_db()
    assert customer.family_name == "加藤"
    # the own site now sends the value the merged profile holds already
    services.customer_upsert(channel="own_site", external_id="m1", family_name="加藤")
    assert profiles(customer)["own_site"]["family_name"] == "加藤"
    assert profiles(customer)["rakuten"] == {"family_name": "加藤", "email": "s@example.jp"}


def test_a_value_a_person_clears_is_cleared_in_every_channels_profile(owner):
    customer = factories.customer(channel="own_site", phone="090-1111-2222", address="渋谷区1")
    services.customer_upsert(channel="amazon", external_id="a-1", email=customer.email, phone="")
    services.customer_update(customer=customer, actor=owner, phone="", family_name="山本")
    row = CustomerChannelProfile.objects.get(customer=customer, channel="own_site")
    assert (row.phone, row.phone_normalized, row.address) == ("", "", "渋谷区1")
    assert row.family_name == "山田"  # a changed value is the person's, not the channel's


def test_claimant_flag_needs_a_reason_and_sets_the_segment(colleague):
    customer = factories.customer()
    factories.order(customer=customer)
    with pytest.raises(ValidationError):
        services.customer_claimant_set(customer=customer, reason=" ", actor=colleague)
    flagged = services.customer_claimant_set(
        customer=customer, reason="90日で3回の強い苦情", actor=colleague
    )
    assert flagged.lifecycle_segment == LifecycleSegment.CLAIMANT
    assert flagged.claimant_set_by == colleague
    cleared = services.customer_claimant_clear(
        customer=flagged, actor=colleague, reason="誤解が解けた"
    )
    assert cleared.lifecycle_segment == LifecycleSegment.NEW
    kinds = set(CustomerEvent.objects.filter(customer=customer).values_list("kind", flat=True))
    assert {CustomerEventKind.CLAIMANT_FLAGGED, CustomerEventKind.CLAIMANT_CLEARED} <= kinds


def test_customer_update_by_a_person_overwrites_and_clears(owner):
    customer = factories.customer(phone="090-0000-1111")
    updated = services.customer_update(
        customer=customer, actor=owner, phone="", address="渋谷区1-2-3"
    )
    assert updated.phone == "" and updated.phone_normalized == ""
    assert updated.address == "渋谷区1-2-3"
    event = CustomerEvent.objects.filter(customer=customer, kind=CustomerEventKind.UPDATED).get()
    assert set(event.data["fields"]) == {"phone", "address"} and event.actor == owner
    assert not Customer.objects.filter(~Q(pk=customer.pk)).exists()
