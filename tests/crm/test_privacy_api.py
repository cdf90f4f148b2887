"""Export and erasure through the API: keys with the privacy scope only,
reasons required, errors in the one JSON shape, channels respected."""

from __future__ import annotations

import pytest
from django.utils import translation
from django.utils.translation import gettext

from core.models import ApiScope
from crm.models import Customer, CustomerEvent, CustomerEventKind
from crm.services import customer_upsert
from tests.api_client import api_client
from tests.conftest import make_api_key
from tests.crm import factories

pytestmark = pytest.mark.django_db


def ja(text: str) -> str:
    with translation.override("ja"):
        return gettext(text)


def export_url(customer: Customer, reason: str = "依頼") -> str:
    return f"/api/v1/customers/{customer.pk}/personal-data/?reason={reason}"


def erase_url(customer: Customer) -> str:
    return f"/api/v1/customers/{customer.pk}/personal-data/erase/"


@pytest.fixture
def customer() -> Customer:
    person = factories.customer(
        channel="own_site", family_name="削除", given_name="次郎", email="jiro.api@example.jp"
    )
    # What Amazon gave of the same person never leaves through an own-site key.
    customer_upsert(
        channel="amazon", external_id="amzn-seed-1", email="jiro.api@example.jp", address="尼住所"
    )
    return person


def privacy_client():
    return api_client(make_api_key(scope=ApiScope.PRIVACY, channels=["own_site"])[1])


@pytest.mark.parametrize("scope", [ApiScope.READ, ApiScope.WRITE])
def test_keys_without_the_privacy_scope_are_refused_with_403(customer, scope):
    client = api_client(make_api_key(scope=scope, channels=["own_site"])[1])
    for response in (
        client.get(export_url(customer)),
        client.post(erase_url(customer), {"reason": "依頼"}, format="json"),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    assert Customer.objects.get(pk=customer.pk).email == "jiro.api@example.jp"


def test_no_key_is_refused_with_401(customer):
    response = api_client(None).get(export_url(customer))
    assert response.status_code == 401


def test_a_missing_reason_is_a_400_naming_the_field(customer):
    response = privacy_client().post(erase_url(customer), {}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()["error"]["fields"]
    response = privacy_client().get(export_url(customer, reason=""))
    assert response.status_code == 400
    assert "reason" in response.json()["error"]["fields"]
    assert Customer.objects.get(pk=customer.pk).email == "jiro.api@example.jp"


def test_the_export_holds_what_the_keys_channels_gave_and_is_recorded(customer):
    response = privacy_client().get(export_url(customer, reason="会員の開示請求"))
    assert response.status_code == 200
    document = response.json()
    assert [p["channel"] for p in document["channel_profiles"]] == ["own_site"]
    assert "jiro.api@example.jp" in str(document) and "尼住所" not in str(document)
    event = CustomerEvent.objects.get(customer=customer, kind=CustomerEventKind.EXPORTED)
    assert event.data["reason"] == "会員の開示請求" and "store" in event.data["api_key"]


def test_a_customer_the_key_does_not_see_is_a_404(customer):
    client = api_client(make_api_key(scope=ApiScope.PRIVACY, channels=["rakuten"])[1])
    assert client.post(erase_url(customer), {"reason": "依頼"}, format="json").status_code == 404


def test_erase_through_the_api_erases_and_answers_the_counts(customer):
    response = privacy_client().post(
        erase_url(customer), {"reason": "会員の削除請求"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["customer"] == customer.pk
    assert response.json()["erased"]["crm.customer"] == 1
    erased = Customer.objects.get(pk=customer.pk)
    assert (erased.family_name, erased.email) == ("", "")
    assert not erased.channel_profiles.exclude(address="").exists()


def test_the_schema_documents_both_operations_and_their_403():
    schema = api_client(None).get("/api/schema/?format=json").json()
    operations = [
        schema["paths"]["/api/v1/customers/{id}/personal-data/"]["get"],
        schema["paths"]["/api/v1/customers/{id}/personal-data/erase/"]["post"],
    ]
    for operation in operations:
        assert {"200", "400", "401", "403", "404"} <= set(operation["responses"])
        assert operation["responses"]["403"]["description"] == ja(
            "The key does not have the privacy scope."
        )


def test_a_retried_erase_with_its_idempotency_key_replays_the_answer_and_records_once(customer):
    client = privacy_client()
    first = client.post(
        erase_url(customer), {"reason": "削除請求"}, format="json", HTTP_IDEMPOTENCY_KEY="erase-1"
    )
    again = client.post(
        erase_url(customer), {"reason": "削除請求"}, format="json", HTTP_IDEMPOTENCY_KEY="erase-1"
    )
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert CustomerEvent.objects.filter(kind=CustomerEventKind.ERASED).count() == 1
