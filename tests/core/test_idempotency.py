import uuid

import pytest

from crm.models import Order
from tests.api_client import api_client
from tests.concurrency import at_once
from tests.conftest import make_api_key
from tests.crm.test_api import ORDER


@pytest.mark.django_db(transaction=True)
def test_two_identical_requests_racing_create_one_order_and_get_one_answer():
    _key, secret = make_api_key()
    key = str(uuid.uuid4())
    responses = []

    def post():
        client = api_client(secret)
        responses.append(
            client.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY=key)
        )

    assert at_once(post, 4) == []
    assert [r.status_code for r in responses] == [201] * 4
    assert len({r.content for r in responses}) == 1
    assert sum(r.get("Idempotent-Replayed") == "true" for r in responses) == 3
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_idempotency_key_too_long_is_400():
    client = api_client(make_api_key()[1])
    response = client.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert not Order.objects.exists()
