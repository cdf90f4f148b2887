import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Customer
from tests.api_client import api_client
from tests.conftest import make_api_key
from tests.crm import factories as crm_factories
from tests.tickets import factories
from tickets.models import Inquiry, InquiryMessage

pytestmark = pytest.mark.django_db

FORM = {
    "name": "佐藤 花子",
    "name_kana": "サトウ ハナコ",
    "email": "hanako@example.jp",
    "category": "delivery_delay",
    "subject": "配送状況について",
    "text": "11月20日に注文した今治タオルがまだ届いていません。\n確認をお願いします。",
}


@pytest.fixture
def store():
    return api_client(make_api_key(channels=["own_site"])[1])


def test_contact_form_creates_customer_and_inquiry_with_a_deadline(store):
    response = store.post("/api/v1/inquiries/", FORM, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["reference"].startswith("Q-") and data["status"] == "new"
    assert data["category"] == "delivery_delay" and data["replied"] is False
    inquiry = Inquiry.objects.get(reference=data["reference"])
    assert inquiry.channel == "own_site" and inquiry.first_reply_due_at is not None
    assert inquiry.customer.family_name_kana == "サトウ"
    assert inquiry.messages.get().body_text.startswith("11月20日")


def test_retries_with_the_same_idempotency_key_make_one_inquiry(store):
    key = str(uuid.uuid4())
    first = store.post("/api/v1/inquiries/", FORM, format="json", HTTP_IDEMPOTENCY_KEY=key)
    second = store.post("/api/v1/inquiries/", FORM, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert Inquiry.objects.count() == 1 and InquiryMessage.objects.count() == 1


@pytest.mark.parametrize("email", ["taro..yamada.@docomo.ne.jp", ".hanako@ezweb.ne.jp"])
def test_the_contact_form_takes_an_old_carrier_address(store, email):
    response = store.post("/api/v1/inquiries/", {**FORM, "email": email}, format="json")

    assert response.status_code == 201, response.content
    assert Inquiry.objects.get().customer.email == email


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"text": "   "}, "text"),
        ({"category": "no-such-category"}, "category"),
        ({"name": ""}, "name"),
        ({"channel": "amazon"}, None),
    ],
)
def test_bad_input_gets_400_naming_the_field_and_creates_nothing(store, change, field):
    response = store.post("/api/v1/inquiries/", {**FORM, **change}, format="json")
    if field is None:  # a channel the key may not use
        assert response.status_code == 403
    else:
        assert response.status_code == 400, response.content
        assert field in response.json()["error"]["fields"]
    assert not Inquiry.objects.exists() and not Customer.objects.exists()


def test_the_order_number_links_the_senders_own_order(store):
    customer = crm_factories.customer(email=FORM["email"])
    order = crm_factories.order(customer=customer, order_number="OS-777")
    response = store.post("/api/v1/inquiries/", {**FORM, "order_number": "OS-777"}, format="json")
    assert response.status_code == 201
    assert response.json()["order_number"] == "OS-777"
    assert Inquiry.objects.get().order == order


def test_another_customers_order_number_is_kept_as_typed_but_not_linked(store):
    # a stranger's order on the key's own channel, with the number the sender types
    stranger = crm_factories.customer(email="stranger@example.jp")
    crm_factories.order(customer=stranger, order_number="OS-777")
    response = store.post("/api/v1/inquiries/", {**FORM, "order_number": " OS-777 "}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["order_number"] == "OS-777"  # what the customer typed
    inquiry = Inquiry.objects.get()
    assert inquiry.customer != stranger
    assert inquiry.order is None and inquiry.order_number_given == "OS-777"
    assert inquiry.order_number_unmatched


def test_an_unknown_order_number_still_makes_the_inquiry(store):
    response = store.post("/api/v1/inquiries/", {**FORM, "order_number": "NOPE-1"}, format="json")
    assert response.status_code == 201, response.content
    inquiry = Inquiry.objects.get()
    assert inquiry.order is None and inquiry.order_number_given == "NOPE-1"
    assert inquiry.messages.get().body_text.startswith("11月20日")


def test_an_order_linked_off_the_keys_channels_shows_no_number(store):
    # an agent linked the customer's Amazon order to an own-site inquiry
    customer = crm_factories.customer(email=FORM["email"])
    amazon = crm_factories.order(customer=customer, channel="amazon", order_number="250-1")
    inquiry = factories.inquiry(customer=customer, channel="own_site", order=amazon)
    data = store.get(f"/api/v1/inquiries/{inquiry.reference}/").json()
    assert data["order_number"] is None
    amazon_key = api_client(make_api_key(channels=["own_site", "amazon"], label="both")[1])
    data = amazon_key.get(f"/api/v1/inquiries/{inquiry.reference}/").json()
    assert data["order_number"] == "250-1"


def test_status_by_reference_for_the_my_inquiry_page(store):
    created = store.post("/api/v1/inquiries/", FORM, format="json").json()
    response = store.get(f"/api/v1/inquiries/{created['reference']}/")
    assert response.status_code == 200
    assert response.json()["status"] == "new"


def test_outsiders_see_nothing(store):
    created = store.post("/api/v1/inquiries/", FORM, format="json").json()
    pos = api_client(make_api_key(channels=["store"], label="pos")[1])
    assert pos.get(f"/api/v1/inquiries/{created['reference']}/").status_code == 404
    assert pos.get("/api/v1/inquiries/").json()["results"] == []
    assert api_client(None).get(f"/api/v1/inquiries/{created['reference']}/").status_code == 401
    email_inquiry = factories.inquiry(channel="email")
    assert store.get(f"/api/v1/inquiries/{email_inquiry.reference}/").status_code == 404


def test_inquiry_list_query_count_does_not_grow(store, django_assert_num_queries):
    for _ in range(3):
        factories.inquiry(channel="own_site", category=None)
    store.get("/api/v1/inquiries/")
    with CaptureQueriesContext(connection) as small:
        store.get("/api/v1/inquiries/")
    for _ in range(9):
        factories.inquiry(channel="own_site")
    with django_assert_num_queries(len(small)):
        assert len(store.get("/api/v1/inquiries/").json()["results"]) == 12
