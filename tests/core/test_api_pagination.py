"""core.api.pagination: a bad page size or cursor is a 400 naming it."""

import base64

import pytest

from tests.api_client import api_client
from tests.conftest import make_api_key
from tests.crm import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader():
    from core.models import ApiScope

    return api_client(make_api_key(scope=ApiScope.READ)[1])


def _cursor(querystring: str) -> str:
    return base64.b64encode(querystring.encode()).decode()


@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "201", "1.5", "null", ""])
def test_a_bad_page_size_is_a_400_naming_it(reader, page_size):
    response = reader.get("/api/v1/customers/", {"page_size": page_size})
    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == ["page_size"]


@pytest.mark.parametrize("cursor", ["not-a-cursor", _cursor("p=abc"), _cursor("o=x")])
def test_a_bad_cursor_is_a_400_naming_it(reader, cursor):
    factories.customer()
    response = reader.get("/api/v1/customers/", {"cursor": cursor})
    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == ["cursor"]


def test_page_size_and_the_cursor_links_still_walk_the_pages(reader):
    for _ in range(3):
        factories.customer()
    first = reader.get("/api/v1/customers/", {"page_size": "2"}).json()
    assert len(first["results"]) == 2
    second = reader.get(first["next"]).json()
    assert len(second["results"]) == 1


@pytest.mark.parametrize("value", ["1.5", "abc", "0", str(2**63)])
def test_a_customer_filter_that_is_not_an_id_is_a_400_naming_it(reader, value):
    for url in ["/api/v1/orders/", "/api/v1/consent-events/", "/api/v1/inquiries/"]:
        response = reader.get(url, {"customer": value})
        assert response.status_code == 400, (url, response.content)
        assert list(response.json()["error"]["fields"]) == ["customer"]


def test_a_filter_given_empty_is_not_applied(reader):
    factories.order(customer=factories.customer())
    response = reader.get("/api/v1/orders/", {"customer": "", "status": "", "updated_since": ""})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1
