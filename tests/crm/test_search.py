"""Staff search for people (crm.search) in the customer list: names typed
without the space in any kana and width, phones in any format or their
last digits, the last digits of an order number, emails in any case; the
search keys every service that writes names keeps (and erasure and the
retention job blank); the indexes PostgreSQL reads them by."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from crm import services
from crm.models import Customer, OrderStatus
from crm.normalize import name_search_key
from crm.search import customer_search
from outreach.line_profiles import line_nicknames_fill
from tests.crm import factories
from tests.migrating import migrate

pytestmark = pytest.mark.django_db

CUSTOMERS = reverse("admin:crm_customer_changelist")
BEFORE_SEARCH = ("crm", "0017_linecall_line_profiles")


def found(response) -> list[Customer]:
    return list(response.context["cl"].result_list)


@pytest.fixture
def okada():
    customer = factories.customer(
        family_name="岡田",
        given_name="彩",
        family_name_kana="オカダ",
        given_name_kana="アヤ",
        email="Aya.Okada@Example.jp",
        phone="090-1234-5678",
    )
    factories.order(customer=customer, channel="amazon", order_number="123-4567890-1234567")
    return customer


@pytest.fixture
def others():
    """People a loose search would wrongly match: the same family name,
    a close reading, a phone and an order number one digit apart."""
    return [
        factories.customer(
            family_name="岡田",
            given_name="健",
            family_name_kana="オカダ",
            given_name_kana="ケン",
            phone="090-1234-5679",
        ),
        factories.customer(
            family_name="岡本",
            given_name="彩香",
            family_name_kana="オカモト",
            given_name_kana="アヤカ",
        ),
        factories.customer(family_name="佐藤", family_name_kana="サトウ"),
    ]


def test_the_search_key_folds_spaces_kana_width_and_case():
    assert name_search_key("岡田", "彩") == "岡田彩"
    for reading in ("オカダ アヤ", "おかだ　あや", "ｵｶﾀﾞ ｱﾔ", "オカダアヤ"):
        assert name_search_key(reading) == "オカダアヤ", reading
    assert name_search_key("Ｏｋａｄａ", "Aya") == "okadaaya"


@pytest.mark.parametrize(
    "term",
    [
        "岡田彩",  # the name without the space
        "岡田 彩",  # ... and with it
        "オカダアヤ",  # katakana
        "おかだあや",  # hiragana
        "ｵｶﾀﾞｱﾔ",  # half-width katakana
        "ダアヤ",  # three characters inside the reading
        "09012345678",  # the phone, digits only
        "1234-5678",  # its last digits
        "+81 90 1234 5678",  # international
        "1234567",  # the last digits of the order number
        "123-4567890-1234567",  # the whole order number
        "AYA.OKADA@EXAMPLE.JP",  # the email in upper case
    ],
)
def test_the_customer_list_finds_the_customer_by_each_kind_of_search(
    client, owner, okada, others, term
):
    client.force_login(owner)

    response = client.get(CUSTOMERS, {"q": term})

    assert found(response) == [okada]


def test_two_characters_find_the_names_that_start_with_them(client, owner, okada, others):
    client.force_login(owner)

    response = client.get(CUSTOMERS, {"q": "岡田"})
    assert {c.pk for c in found(response)} == {okada.pk, others[0].pk}
    response = client.get(CUSTOMERS, {"q": "おか"})
    assert {c.pk for c in found(response)} == {okada.pk, others[0].pk, others[1].pk}


def test_three_digits_are_too_few_for_a_phone_or_an_order_number(okada, others):
    assert list(customer_search(Customer.objects.all(), "567")) == []


def test_customer_search_query_count_does_not_grow_with_matches(
    client, owner, django_assert_num_queries
):
    client.force_login(owner)
    for index in range(3):
        factories.customer(family_name="岡田", given_name=f"彩{index}", family_name_kana="オカダ")
    # session, user, permissions (2), manager group, tag filter choices,
    # page count, rows, the incident banner, the audit row
    with django_assert_num_queries(10):
        response = client.get(CUSTOMERS, {"q": "おかだ"})
    assert len(found(response)) == 3

    for index in range(9):
        factories.customer(family_name="岡田", given_name=f"絢{index}", family_name_kana="オカダ")
    with django_assert_num_queries(10):
        response = client.get(CUSTOMERS, {"q": "おかだ"})
    assert len(found(response)) == 12


# --- The search keys follow the names ------------------------------------------------


def keys(customer: Customer) -> tuple[str, str]:
    customer.refresh_from_db()
    return customer.search_name, customer.search_kana


def test_a_new_customer_gets_the_keys_and_an_edit_moves_them(owner):
    customer = factories.customer(
        family_name="岡田", given_name="彩", family_name_kana="おかだ", given_name_kana="ｱﾔ"
    )
    assert keys(customer) == ("岡田彩", "オカダアヤ")

    services.customer_update(
        customer=customer, family_name="山口", family_name_kana="ヤマグチ", actor=owner
    )
    assert keys(customer) == ("山口彩", "ヤマグチアヤ")
    assert list(customer_search(Customer.objects.all(), "やまぐちあや")) == [customer]


def test_a_channel_that_sends_a_new_name_moves_the_keys():
    customer = factories.customer(channel="rakuten", external_id="r-1", family_name="岡田")
    services.customer_upsert(
        channel="rakuten", external_id="r-1", family_name="森", given_name="彩"
    )
    assert keys(customer)[0] == "森彩"


def test_a_customer_known_only_by_their_line_name_is_found_by_it():
    # given: a LINE friend with no name but the one LINE gives (「LINE: さくら」)
    friend = factories.customer(family_name="", given_name="", channel="line", external_id="U1")
    friend.identities.filter(channel="line").update(display_name="さくら")
    named = factories.customer(
        family_name="岡田", given_name="彩", channel="line", external_id="U2"
    )
    named.identities.filter(channel="line").update(display_name="あや")

    line_nicknames_fill()

    assert str(Customer.objects.get(pk=friend.pk)) == "LINE: さくら"
    assert list(customer_search(Customer.objects.all(), "さくら")) == [friend]
    # a typed name stays the key: the LINE name does not replace it
    assert keys(named)[0] == "岡田彩"


def test_a_merge_that_fills_the_winners_name_fills_its_keys(owner):
    winner, _ = services.customer_upsert(channel="email", email="aya@example.jp")
    loser = factories.customer(
        family_name="岡田", given_name="彩", family_name_kana="オカダ", given_name_kana="アヤ"
    )
    assert keys(winner) == ("", "")

    services.customer_merge(winner=winner, loser=loser, actor=owner)

    assert keys(winner) == ("岡田彩", "オカダアヤ")


def test_erasure_blanks_the_keys(owner, okada):
    services.customer_erase(customer=okada, actor=owner, reason="本人からの削除依頼")

    assert keys(okada) == ("", "")
    assert list(customer_search(Customer.objects.all(), "岡田彩")) == []


def _amazon_buyer_past_the_period(**profile) -> Customer:
    customer, _ = services.customer_upsert(
        channel="amazon",
        external_id="amano@marketplace.amazon.co.jp",
        email="amano@marketplace.amazon.co.jp",
        family_name="天野",
        given_name="花子",
        family_name_kana="アマノ",
        given_name_kana="ハナコ",
        **profile,
    )
    now = timezone.now()
    factories.order(
        customer=customer,
        channel="amazon",
        ordered_at=now - timedelta(days=45),
        status=OrderStatus.DELIVERED,
    )
    return customer


def test_the_retention_job_blanks_the_keys_of_a_buyer_known_only_there():
    buyer = _amazon_buyer_past_the_period()
    assert keys(buyer) == ("天野花子", "アマノハナコ")

    services.retention_anonymize(channel="amazon", days=30)

    assert keys(buyer) == ("", "")


def test_the_retention_job_gives_the_keys_of_the_name_another_channel_gave():
    buyer = _amazon_buyer_past_the_period()
    # Rakuten knows the same person by another name (blanks only: the
    # customer keeps Amazon's until the retention job).
    services.customer_upsert(
        channel="rakuten",
        external_id="kitagawa",
        email="amano@marketplace.amazon.co.jp",
        family_name="北川",
        given_name="誠",
    )
    services.customer_upsert(channel="rakuten", external_id="kitagawa", family_name_kana="キタガワ")
    assert keys(buyer)[0] == "天野花子"

    services.retention_anonymize(channel="amazon", days=30)

    buyer.refresh_from_db()
    assert (buyer.family_name, buyer.given_name) == ("北川", "誠")
    assert keys(buyer) == ("北川誠", "キタガワ")


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_keys_of_the_customers_already_there():
    old = migrate(BEFORE_SEARCH)
    try:
        before = old.get_model("crm", "Customer").objects.create(
            family_name="岡田", given_name="彩", family_name_kana="おかだ", given_name_kana="ｱﾔ"
        )
    finally:
        migrate()

    assert keys(Customer.objects.get(pk=before.pk)) == ("岡田彩", "オカダアヤ")


# --- PostgreSQL's indexes -------------------------------------------------------------

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's own indexes"
)

CUSTOMER_INDEXES = {
    "crm_customer_search_name",
    "crm_customer_search_kana",
    "crm_customer_search_name_trgm",
    "crm_customer_search_kana_trgm",
    "crm_customer_phone_trgm",
    "crm_order_number_suffix",
}


def plan_of(queryset) -> str:
    """EXPLAIN of the queryset's query with sequential scans priced out, as
    PostgreSQL plans it on a large table: the indexes it can use, it uses."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@needs_postgres
def test_the_search_indexes_exist():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename IN ('crm_customer', 'crm_order')"
        )
        names = {row[0] for row in cursor.fetchall()}
    assert names >= CUSTOMER_INDEXES


@needs_postgres
@pytest.mark.parametrize(
    ("term", "index"),
    [
        ("おか", "crm_customer_search_kana"),  # two characters: the prefix index
        ("岡田", "crm_customer_search_name"),
        ("岡田彩", "crm_customer_search_name_trgm"),  # three: trigrams
        ("オカダアヤ", "crm_customer_search_kana_trgm"),
        ("1234-5678", "crm_customer_phone_trgm"),
        ("1234567", "crm_order_number_suffix"),
        ("09012345678", "crm_customer_phone_norm"),
        ("aya.okada@example.jp", "crm_customer_email_norm"),
    ],
)
def test_each_kind_of_search_reads_its_index(okada, others, term, index):
    Customer.objects.bulk_create(
        Customer(
            family_name=f"客{number}",
            search_name=f"客{number}",
            search_kana=f"キャク{number}",
            phone_normalized=f"035555{number:04d}",
            email_normalized=f"c{number}@example.jp",
        )
        for number in range(2000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_customer")
        cursor.execute("ANALYZE crm_order")

    plan = plan_of(customer_search(Customer.objects.all(), term))

    assert index in plan, plan
