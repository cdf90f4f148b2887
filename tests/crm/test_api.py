import uuid

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import ApiKey, IdempotencyRecord
from core.services import api_key_revoke
from crm import services
from crm.models import ConsentState, Customer, CustomerEvent, Order
from tests.api_client import api_client
from tests.conftest import make_api_key
from tests.crm import factories

pytestmark = pytest.mark.django_db

ORDER = {
    "channel": "own_site",
    "order_number": "OS-20261122-0001",
    "customer": {
        "external_id": "member-77",
        "family_name": "高橋",
        "given_name": "陽菜",
        "family_name_kana": "タカハシ",
        "given_name_kana": "ヒナ",
        "email": "hina@example.jp",
        "phone": "080-2222-3333",
        "prefecture": "大阪府",
    },
    "status": "paid",
    "ordered_at": "2026-11-20T10:15:00+09:00",
    "total": 4980,
    "lines": [
        {"sku": "TOWEL-IMABARI-01", "name": "今治タオル", "quantity": 2, "unit_price": 1990},
        {"sku": "TEA-SENCHA-100", "name": "静岡煎茶 100g", "quantity": 1, "unit_price": 1000},
    ],
}


@pytest.fixture
def writer():
    return api_client(make_api_key(channels=["own_site"])[1])


@pytest.fixture
def reader():
    from core.models import ApiScope

    return api_client(make_api_key(scope=ApiScope.READ, channels=["own_site"])[1])


@pytest.fixture
def outsider_key():
    """A write key of another store site (the real shop's POS)."""
    return api_client(make_api_key(channels=["store"], label="pos")[1])


def assert_error_shape(response, status, code=None):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["status"] == status and error["message"]
    if code:
        assert error["code"] == code
    return error


# --- Authentication and scopes -------------------------------------------


@pytest.mark.parametrize(
    "url", ["/api/v1/customers/", "/api/v1/orders/", "/api/v1/consent-events/"]
)
def test_missing_key_is_401_with_the_error_shape(url):
    response = api_client(None).get(url)
    assert_error_shape(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_unknown_malformed_and_revoked_keys_are_401():
    key, secret = make_api_key()
    assert_error_shape(api_client("mdg_deadbeef_nope").get("/api/v1/customers/"), 401)
    bad_scheme = api_client(None)
    bad_scheme.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert_error_shape(bad_scheme.get("/api/v1/customers/"), 401)
    assert api_client(secret).get("/api/v1/customers/").status_code == 200
    api_key_revoke(api_key=key)
    error = assert_error_shape(api_client(secret).get("/api/v1/customers/"), 401)
    assert error["message"] == "このAPIキーは無効化されています。"  # Japanese by default
    english = api_client(secret).get("/api/v1/customers/", HTTP_ACCEPT_LANGUAGE="en")
    assert english.json()["error"]["message"] == "This API key has been revoked."


def test_last_used_is_recorded_without_a_write_per_request():
    key, secret = make_api_key()
    client = api_client(secret)
    client.get("/api/v1/customers/")
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/v1/customers/")
    assert not any(q["sql"].startswith("UPDATE") for q in queries.captured_queries)
    key.refresh_from_db()
    assert key.last_used_at == first


def test_read_scoped_key_cannot_write(reader):
    response = reader.post("/api/v1/orders/", ORDER, format="json")
    assert_error_shape(response, 403, "permission_denied")
    assert not Order.objects.exists() and not Customer.objects.exists()
    assert reader.get("/api/v1/orders/").status_code == 200


# --- Customers ----------------------------------------------------------------


def test_customer_upsert_creates_then_updates_by_channel_identity(writer):
    body = {
        "channel": "own_site",
        "external_id": "m-1",
        "family_name": "佐藤",
        "email": "sato@example.jp",
    }
    created = writer.post("/api/v1/customers/", body, format="json")
    assert created.status_code == 201, created.content
    updated = writer.post(
        "/api/v1/customers/", {**body, "family_name_kana": "さとう"}, format="json"
    )
    assert updated.status_code == 200
    data = updated.json()
    assert data["id"] == created.json()["id"]
    assert data["family_name_kana"] == "サトウ"
    assert data["identities"] == [{"channel": "own_site", "external_id": "m-1", "display_name": ""}]


def test_a_customer_with_an_old_carrier_address_is_upserted(writer):
    body = {"channel": "own_site", "external_id": "m-2", "email": "taro..yamada.@docomo.ne.jp"}

    response = writer.post("/api/v1/customers/", body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["email"] == "taro..yamada.@docomo.ne.jp"


def test_customer_search_by_kana_email_and_phone(writer):
    factories.customer(
        external_id="a",
        family_name="鈴木",
        family_name_kana="スズキ",
        email="suzuki@example.jp",
        phone="090-1111-2222",
    )
    factories.customer(
        external_id="b", family_name="田中", family_name_kana="タナカ", email="tanaka@example.jp"
    )
    for term in ["すずき", "ｽｽﾞｷ", "鈴木", "SUZUKI@example.jp", "+81 90 1111 2222"]:
        results = writer.get("/api/v1/customers/", {"q": term}).json()["results"]
        assert [c["family_name"] for c in results] == ["鈴木"], term


def test_outsider_key_sees_nothing_of_another_channel(writer, outsider_key):
    created = writer.post("/api/v1/orders/", ORDER, format="json")
    customer_id = created.json()["customer"]
    assert outsider_key.get("/api/v1/customers/").json()["results"] == []
    assert outsider_key.get("/api/v1/orders/").json()["results"] == []
    assert outsider_key.get(f"/api/v1/customers/{customer_id}/").status_code == 404
    assert outsider_key.get(f"/api/v1/customers/{customer_id}/orders/").status_code == 404
    assert outsider_key.get(f"/api/v1/orders/{created.json()['id']}/").status_code == 404
    # nor can it write to that channel, or attach consent to that customer
    assert_error_shape(
        outsider_key.post("/api/v1/orders/", {**ORDER, "order_number": "X"}, format="json"), 403
    )
    response = outsider_key.post(
        "/api/v1/consent-events/",
        {
            "customer_id": customer_id,
            "channel": "email",
            "action": "opt_out",
            "wording_version": "v1",
        },
        format="json",
    )
    assert_error_shape(response, 404)
    assert Order.objects.count() == 1


def test_identities_on_other_channels_are_not_shown(writer):
    customer = factories.customer(channel="own_site", external_id="m-9", email="x@example.jp")
    services.customer_upsert(channel="amazon", external_id="amzn-buyer-1", email="x@example.jp")
    data = writer.get(f"/api/v1/customers/{customer.pk}/").json()
    assert [i["channel"] for i in data["identities"]] == ["own_site"]


# --- What a key reads of a person known on other channels (SPEC rule 17) ---------------

AMAZON_BUYER = {
    "external_id": "amzn1.buyer.X7",
    "family_name": "松本",
    "given_name": "美咲",
    "family_name_kana": "マツモト",
    "given_name_kana": "ミサキ",
    "email": "misaki.matsumoto@example.jp",
    "phone": "090-7777-8888",
    "postal_code": "530-0001",
    "prefecture": "大阪府",
    "address": "大阪市北区梅田1-1-1 梅田ハイツ305",
    "birthday": "1990-04-01",
}
# What only Amazon gave: none of it may reach a key of another channel.
AMAZON_ONLY = [
    "松本",
    "美咲",
    "マツモト",
    "ミサキ",
    "090-7777-8888",
    "530-0001",
    "大阪府",
    "梅田",
    "1990-04-01",
    "250-1234567-7654321",
    "12800",
]


@pytest.fixture
def amazon():
    """Amazon's key, and the customer id of a buyer known only on Amazon."""
    client = api_client(make_api_key(channels=["amazon"], label="amazon")[1])
    response = client.post(
        "/api/v1/orders/",
        {
            "channel": "amazon",
            "order_number": "250-1234567-7654321",
            "customer": AMAZON_BUYER,
            "ordered_at": "2026-11-02T09:00:00+09:00",
            "total": 12800,
            "lines": [{"sku": "KETTLE-01", "name": "南部鉄器", "quantity": 1, "unit_price": 12800}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return client, response.json()["customer"]


def assert_nothing_from_amazon(response):
    assert response.status_code in (200, 201), response.content
    text = response.content.decode()
    assert [value for value in AMAZON_ONLY if value in text] == []


@pytest.mark.parametrize(
    "probe",
    [{"email": "Misaki.Matsumoto@example.jp"}, {"phone": "09077778888"}],
    ids=["by-email", "by-phone"],
)
def test_a_key_probing_with_an_amazon_buyers_address_reads_nothing_amazon_gave(
    writer, amazon, probe
):
    amazon_client, buyer_id = amazon
    key = str(uuid.uuid4())
    body = {"channel": "own_site", "external_id": "probe-1", **probe}
    answer = writer.post("/api/v1/customers/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    # identity resolution links the person (the customer 360) ...
    assert answer.json()["id"] == buyer_id
    # ... but the key is shown only what it gave, and no sign of a known person
    assert_nothing_from_amazon(answer)
    assert answer.status_code == 201
    data = answer.json()
    assert (data["order_count"], data["total_spent"], data["lifecycle_segment"]) == (
        0,
        0,
        "prospect",
    )
    assert data["first_order_at"] is None and data["last_order_at"] is None
    assert data["family_name"] == "" and data["address"] == "" and data["birthday"] is None
    assert [i["channel"] for i in data["identities"]] == ["own_site"]
    replayed = writer.post("/api/v1/customers/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert replayed["Idempotent-Replayed"] == "true"
    assert_nothing_from_amazon(replayed)

    # then it reads, and searches and filters on what it must not read
    for url, params in [
        (f"/api/v1/customers/{buyer_id}/", {}),
        (f"/api/v1/customers/{buyer_id}/orders/", {}),
        ("/api/v1/customers/", {}),
        ("/api/v1/orders/", {}),
        ("/api/v1/consent-events/", {}),
    ]:
        assert_nothing_from_amazon(writer.get(url, params))
    for params in [
        {"q": "マツモト"},
        {"q": "松本"},
        {"q": "090-7777-8888" if "email" in probe else "misaki.matsumoto@example.jp"},
        {"prefecture": "大阪府"},
        {"lifecycle_segment": "new"},
        {"channel": "amazon"},
    ]:
        results = writer.get("/api/v1/customers/", params).json()["results"]
        assert results == [], params

    # Amazon's own key still reads everything Amazon gave
    data = amazon_client.get(f"/api/v1/customers/{buyer_id}/").json()
    assert (data["family_name"], data["phone"], data["prefecture"]) == (
        "松本",
        "090-7777-8888",
        "大阪府",
    )
    assert (data["order_count"], data["total_spent"], data["lifecycle_segment"]) == (
        1,
        12800,
        "new",
    )
    assert data["birthday"] == "1990-04-01"
    assert [i["channel"] for i in data["identities"]] == ["amazon"]


def test_a_key_reads_what_its_channel_gave_and_its_channels_order_figures(writer, amazon):
    _amazon_client, buyer_id = amazon
    body = {
        "channel": "own_site",
        "order_number": "OS-1",
        "customer": {"external_id": "m-5", "email": AMAZON_BUYER["email"], "family_name": "松本"},
        "ordered_at": "2026-11-20T10:00:00+09:00",
        "total": 3000,
    }
    assert writer.post("/api/v1/orders/", body, format="json").json()["customer"] == buyer_id
    data = writer.get(f"/api/v1/customers/{buyer_id}/").json()
    assert (data["family_name"], data["given_name"], data["email"]) == (
        "松本",
        "",
        AMAZON_BUYER["email"],
    )
    assert (data["order_count"], data["total_spent"], data["lifecycle_segment"]) == (
        1,
        3000,
        "new",
    )
    assert data["last_order_at"].startswith("2026-11-20")
    # a known own-site customer is "updated", not "created"
    again = writer.post(
        "/api/v1/customers/", {"channel": "own_site", "external_id": "m-5"}, format="json"
    )
    assert again.status_code == 200


# --- Orders -------------------------------------------------------------------------


def test_order_post_creates_customer_order_lines_and_metrics(writer):
    response = writer.post("/api/v1/orders/", ORDER, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert [line["sku"] for line in data["lines"]] == ["TOWEL-IMABARI-01", "TEA-SENCHA-100"]
    customer = Customer.objects.get(pk=data["customer"])
    assert (customer.order_count, customer.total_spent, customer.lifecycle_segment) == (
        1,
        4980,
        "new",
    )
    again = writer.post("/api/v1/orders/", {**ORDER, "status": "shipped"}, format="json")
    assert again.status_code == 200 and again.json()["status"] == "shipped"
    assert Order.objects.count() == 1


def test_order_post_answers_with_the_lines_it_wrote_without_reading_them_back(writer):
    with CaptureQueriesContext(connection) as queries:
        response = writer.post("/api/v1/orders/", ORDER, format="json")
    assert [line["sku"] for line in response.json()["lines"]] == [
        "TOWEL-IMABARI-01",
        "TEA-SENCHA-100",
    ]
    reads = [q["sql"] for q in queries if q["sql"].startswith('SELECT "crm_orderline"')]
    assert reads == []
    # an update without lines keeps them and shows them, read once
    without_lines = {key: value for key, value in ORDER.items() if key != "lines"}
    with CaptureQueriesContext(connection) as queries:
        again = writer.post("/api/v1/orders/", without_lines, format="json")
    assert again.status_code == 200
    assert [line["sku"] for line in again.json()["lines"]] == [
        "TOWEL-IMABARI-01",
        "TEA-SENCHA-100",
    ]
    reads = [q["sql"] for q in queries if q["sql"].startswith('SELECT "crm_orderline"')]
    assert len(reads) == 1


def test_retried_post_with_same_idempotency_key_creates_nothing(writer):
    key = str(uuid.uuid4())
    first = writer.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY=key)
    second = writer.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1 and Customer.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


def test_a_retry_runs_nothing_that_stays(writer):
    """The record is written last: a retry's own work is rolled back."""
    key = str(uuid.uuid4())
    writer.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY=key)
    order = Order.objects.get()
    events = CustomerEvent.objects.count()
    again = writer.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.get().updated_at == order.updated_at
    assert CustomerEvent.objects.count() == events


def test_a_retry_that_would_now_be_refused_still_gets_the_first_answer(writer):
    customer = factories.customer(channel="own_site", external_id="m-1")
    key = str(uuid.uuid4())
    body = {
        "customer_id": customer.pk,
        "channel": "email",
        "action": "opt_in",
        "wording_version": "v1",
    }
    first = writer.post("/api/v1/consent-events/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == 201
    services.customer_merge(winner=factories.customer(), loser=customer, actor=None)
    # The customer is gone from the key's view now: run afresh this is a 404.
    assert writer.post("/api/v1/consent-events/", body, format="json").status_code == 404
    again = writer.post("/api/v1/consent-events/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert (again.status_code, again.json()) == (201, first.json())
    assert again["Idempotent-Replayed"] == "true"
    other = writer.post(
        "/api/v1/consent-events/",
        {**body, "wording_version": "v2"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    assert_error_shape(other, 422, "idempotency_key_reused")


def test_an_order_of_a_returning_buyer_is_seven_statements_without_savepoint(writer):
    writer.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    second = {**ORDER, "order_number": "OS-20261122-0002"}
    with CaptureQueriesContext(connection) as queries:
        response = writer.post("/api/v1/orders/", second, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert response.status_code == 201
    statements = [" ".join(q["sql"].split()[:3]) for q in queries]
    # Inside the test's transaction the request's own transaction is a
    # savepoint (BEGIN and COMMIT in production): the only one.
    assert statements.pop(1).startswith("SAVEPOINT")
    assert statements.pop().startswith("RELEASE SAVEPOINT")
    assert statements == [
        "SELECT * FROM",  # the key
        "SELECT c.*, i.channel",  # the buyer, by identity
        'INSERT INTO "crm_order"',  # ... ON CONFLICT DO NOTHING: no lock, no savepoint
        'INSERT INTO "crm_orderline"',
        "UPDATE crm_customer AS",  # the buyer's lifecycle metrics
        # the journeys its triggers start (none due: nothing written)
        'SELECT "outreach_journeystep"."id", "outreach_journeystep"."journey_id",',
        'INSERT INTO "core_idempotencyrecord"',  # the answer, last
    ]
    assert Customer.objects.get().order_count == 2


def test_same_idempotency_key_with_another_body_is_refused(writer):
    key = str(uuid.uuid4())
    writer.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY=key)
    other = writer.post(
        "/api/v1/orders/", {**ORDER, "total": 1}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert_error_shape(other, 422, "idempotency_key_reused")
    assert Order.objects.get().total == 4980


def test_refused_request_is_not_remembered_so_a_corrected_retry_works(writer):
    key = str(uuid.uuid4())
    bad = writer.post(
        "/api/v1/orders/", {**ORDER, "total": -5}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    good = writer.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert good.status_code == 201


def test_idempotency_keys_are_per_api_key(writer):
    other_writer = api_client(make_api_key(channels=["own_site"], label="second site")[1])
    key = str(uuid.uuid4())
    writer.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY=key)
    response = other_writer.post(
        "/api/v1/orders/",
        {**ORDER, "order_number": "OS-2"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    assert response.status_code == 201
    assert Order.objects.count() == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"total": -1}, "total"),
        ({"ordered_at": "昨日"}, "ordered_at"),
        ({"channel": "mercari"}, "channel"),
        (
            {"lines": [{"sku": "A", "name": "x", "quantity": 0, "unit_price": 100}]},
            "lines.0.quantity",
        ),
        ({"lines": [{"name": "x", "quantity": 1, "unit_price": 100}]}, "lines.0.sku"),
        ({"customer": {"family_name": "名無し"}}, "customer.external_id"),
        ({"customer": {"external_id": "m", "email": "not-mail"}}, "customer.email"),
        ({"customer": {"external_id": "m", "postal_code": "12"}}, "postal_code"),
    ],
)
def test_malformed_order_is_400_naming_the_field_and_writes_nothing(writer, change, field):
    response = writer.post("/api/v1/orders/", {**ORDER, **change}, format="json")
    error = assert_error_shape(response, 400, "invalid")
    assert field in error["fields"], error
    assert field in error["message"]
    assert not Order.objects.exists() and not Customer.objects.exists()


def test_not_json_is_400():
    client = api_client(make_api_key()[1])
    response = client.generic(
        "POST", "/api/v1/orders/", "{not json", content_type="application/json"
    )
    assert_error_shape(response, 400, "parse_error")


def test_orders_list_by_customer(writer):
    customer = factories.customer()
    other = factories.customer()
    mine = [factories.order(customer=customer) for _ in range(3)]
    factories.order(customer=other)
    by_filter = writer.get("/api/v1/orders/", {"customer": customer.pk}).json()["results"]
    nested = writer.get(f"/api/v1/customers/{customer.pk}/orders/").json()["results"]
    assert {o["id"] for o in by_filter} == {o["id"] for o in nested} == {o.pk for o in mine}


def test_cursor_pagination_walks_every_row_once(writer):
    for _ in range(7):
        factories.customer()
    seen, url = [], "/api/v1/customers/?page_size=3"
    while url:
        page = writer.get(url).json()
        seen += [c["id"] for c in page["results"]]
        url = page["next"]
    assert sorted(seen) == sorted(Customer.objects.values_list("pk", flat=True))
    assert len(seen) == 7


# --- Consent --------------------------------------------------------------------------


def test_consent_event_create_and_list(writer):
    customer = factories.customer()
    body = {
        "customer_id": customer.pk,
        "channel": "email",
        "action": "opt_in",
        "wording_version": "privacy-2025-04",
    }
    response = writer.post("/api/v1/consent-events/", body, format="json")
    assert response.status_code == 201, response.content
    assert ConsentState.objects.get(customer=customer, channel="email").granted
    opt_out = writer.post("/api/v1/consent-events/", {**body, "action": "opt_out"}, format="json")
    assert opt_out.status_code == 201
    assert not ConsentState.objects.get(customer=customer, channel="email").granted
    listed = writer.get("/api/v1/consent-events/", {"customer": customer.pk}).json()["results"]
    assert [e["action"] for e in listed] == ["opt_out", "opt_in"]
    assert_error_shape(
        writer.post("/api/v1/consent-events/", {**body, "source": "unsubscribe"}, format="json"),
        400,
    )


def test_a_staff_note_on_consent_given_by_phone_never_reaches_a_store_site_key(writer, owner):
    # given an opt-out a customer gave staff by phone, with staff's own note
    customer = factories.customer()
    note = "電話で配信停止の依頼。入院中のため連絡は控えること"
    services.consent_record(
        customer=customer,
        channel="email",
        action="opt_out",
        source="staff",
        note=note,
        actor=owner,
    )
    written = writer.post(
        "/api/v1/consent-events/",
        {
            "customer_id": customer.pk,
            "channel": "line",
            "action": "opt_in",
            "wording_version": "v1",
            "note": "会員登録フォーム",
        },
        format="json",
    )
    assert written.status_code == 201, written.content
    assert written.json()["note"] == "会員登録フォーム"
    # when a store site's key lists the customer's consent events
    listed = writer.get("/api/v1/consent-events/", {"customer": customer.pk})
    # then it reads the opt-out (the consent it must respect), not staff's note
    assert note not in listed.content.decode()
    events = {event["channel"]: event for event in listed.json()["results"]}
    assert (events["email"]["action"], events["email"]["note"]) == ("opt_out", "")
    # what a store site wrote itself still comes back
    assert events["line"]["note"] == "会員登録フォーム"


# --- Query counts -----------------------------------------------------------------------


def _customers_with_everything(n):
    for i in range(n):
        customer = factories.customer(tags=["ギフト", f"t{i % 3}"])
        services.customer_upsert(
            channel="own_site", external_id=f"second-{i}", email=customer.email
        )
        factories.order(customer=customer)
        services.consent_record(customer=customer, channel="email", action="opt_in", source="api")


def _count_queries(client, url):
    client.get(url)  # the key's last-used time is written once a minute, not counted here
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), len(response.json()["results"])


@pytest.mark.parametrize(
    "url", ["/api/v1/customers/", "/api/v1/orders/", "/api/v1/consent-events/"]
)
def test_list_query_count_does_not_grow_with_rows(writer, url, django_assert_num_queries):
    _customers_with_everything(3)
    small, rows_small = _count_queries(writer, url)
    _customers_with_everything(9)
    large, rows_large = _count_queries(writer, url)
    assert rows_large > rows_small >= 3
    assert large == small
    with django_assert_num_queries(small):
        writer.get(url)


def test_customer_list_query_count_is_fixed(writer, django_assert_num_queries):
    _customers_with_everything(6)
    writer.get("/api/v1/customers/")
    # key lookup, the audit row (the list's query), customers page (with the
    # key's order figures), identities, consent states, tags, the key's
    # channel profiles
    with django_assert_num_queries(7):
        assert len(writer.get("/api/v1/customers/").json()["results"]) == 6


def test_customers_known_on_several_channels_are_listed_in_seven_queries_with_the_keys_figures(
    writer, django_assert_num_queries
):
    for i in range(6):
        customer = factories.customer(channel="own_site", family_name=f"自社{i}")
        services.customer_upsert(
            channel="amazon", external_id=f"amzn-{i}", email=customer.email, address="大阪市"
        )
        factories.order(customer=customer, total=1000)
        factories.order(customer=customer, channel="amazon", total=90000)
    writer.get("/api/v1/customers/")
    # key lookup, the audit row (the list's query), customers page (with the
    # key's order figures), identities, consent states, tags, the key's
    # channel profiles
    with django_assert_num_queries(7):
        results = writer.get("/api/v1/customers/").json()["results"]
    assert len(results) == 6
    assert {(c["order_count"], c["total_spent"], c["address"]) for c in results} == {(1, 1000, "")}
    assert sorted(c["family_name"] for c in results) == [f"自社{i}" for i in range(6)]


def test_order_list_query_count_is_fixed(writer, django_assert_num_queries):
    _customers_with_everything(6)
    writer.get("/api/v1/orders/")
    # key lookup, orders page (with customer), lines
    with django_assert_num_queries(3):
        assert len(writer.get("/api/v1/orders/").json()["results"]) == 6


# --- Schema -----------------------------------------------------------------------------------


def test_openapi_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert "Idempotency-Key" in text and "/api/v1/orders/" in text


def test_docs_and_schema_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


def test_api_key_model_stores_no_secret():
    key, secret = make_api_key()
    stored = ApiKey.objects.filter(pk=key.pk).values().get()
    assert all(secret not in str(value) for value in stored.values())
