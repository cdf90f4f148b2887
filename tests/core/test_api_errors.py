"""Every answer under /api/ is JSON in the error shape, whatever fails."""

import json
import re

import pytest
from django.test import Client

from tests.api_client import api_client
from tests.conftest import make_api_key
from tests.crm import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader():
    from core.models import ApiScope

    return api_client(make_api_key(scope=ApiScope.READ)[1])


def assert_json_error(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json", response.content[:200]
    error = response.json()["error"]
    assert error["status"] == status and error["code"] and error["message"]
    return error


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/customers/false/orders/",
        "/api/v1/customers/1.5/orders/",
        "/api/v1/customers/false/",
        "/api/v1/orders/null/",
        "/api/v1/customers/-1/",
    ],
)
def test_a_non_integer_id_in_a_route_is_a_json_404(reader, path):
    factories.customer()
    assert_json_error(reader.get(path), 404)


def test_an_id_beyond_the_integer_range_is_a_json_404(reader):
    assert_json_error(reader.get(f"/api/v1/customers/{10**30}/orders/"), 404)
    assert_json_error(reader.get(f"/api/v1/orders/{10**30}/"), 404)


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    "path", ["/api/v1/nothing/", "/api/v2/customers/", "/api/", "/api/v1/customers/1/x/"]
)
def test_an_unknown_api_address_is_a_json_404_with_or_without_debug(settings, path, debug):
    settings.DEBUG = debug
    assert_json_error(Client().get(path), 404)
    assert_json_error(Client(enforce_csrf_checks=True).post(path, {}), 404)


def test_a_missing_trailing_slash_is_a_json_404_that_names_the_right_address(reader):
    error = assert_json_error(reader.get("/api/v1/customers"), 404)
    assert "/api/v1/customers/" in error["message"]


def test_a_non_api_404_is_still_a_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_server_error_under_the_api_is_a_json_500(settings):
    settings.ROOT_URLCONF = "tests.core.failing_urls"
    error = assert_json_error(Client(raise_request_exception=False).get("/api/v1/fails/"), 500)
    assert "a bug" not in error["message"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"channel": "own_site",\n "order_number": }', "2"),
        (b"{not json", "1"),
        (b'{"total": NaN}', None),
        (b"\xff\xfe{}", None),
    ],
)
def test_malformed_json_is_a_400_in_the_error_shape_in_japanese(body, where):
    client = api_client(make_api_key()[1])
    response = client.generic("POST", "/api/v1/orders/", body, content_type="application/json")
    error = assert_json_error(response, 400)
    assert error["code"] == "parse_error"
    assert "JSON" in error["message"] or "UTF-8" in error["message"]
    assert "リクエスト" in error["message"], error["message"]
    assert "Expecting" not in error["message"] and "parse error" not in error["message"]
    if where:
        assert f"{where}行目" in error["message"]


JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _all_messages(error):
    return [error["message"]] + [m for ms in error.get("fields", {}).values() for m in ms]


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (b"null", "non_field_errors", "null"),
        # Django's own ja for this one says "enter some characters"
        (b'{"channel": "own_site", "order_number": "A\\u0000B"}', "order_number", "ヌル文字"),
        (b'{"channel": "own_site", "order_number": "A\\ud800"}', "order_number", "サロゲート"),
        (
            json.dumps({"channel": "own_site", "customer": {"tags": ["t"] * 51}}).encode(),
            "customer.tags",
            "50",
        ),
    ],
)
def test_the_framework_s_own_messages_come_in_japanese_too(body, field, says):
    client = api_client(make_api_key()[1])
    response = client.generic("POST", "/api/v1/orders/", body, content_type="application/json")
    error = assert_json_error(response, 400)
    assert field in error["fields"], error
    for message in _all_messages(error):
        assert JAPANESE.search(message), message
    assert says in " ".join(error["fields"][field])


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"null", "null"),
        (b'["own_site"]', "JSONのオブジェクト"),
        (b'"own_site"', "JSONのオブジェクト"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_told_so_without_internal_names(body, says):
    client = api_client(make_api_key()[1])
    response = client.generic("POST", "/api/v1/orders/", body, content_type="application/json")
    error = assert_json_error(response, 400)
    assert says in error["message"], error["message"]
    assert "non_field_errors" not in error["message"] and "辞書" not in error["message"]


def test_a_json_404_is_readable_utf8_not_escapes():
    response = Client().get("/api/v1/nothing/")
    assert "エンドポイント".encode() in response.content


def test_a_site_mounted_under_a_prefix_still_answers_api_404s_in_json(settings):
    settings.FORCE_SCRIPT_NAME = "/support"
    response = Client().get("/api/v1/customers", SCRIPT_NAME="/support")
    error = assert_json_error(response, 404)
    assert "/support/api/v1/customers/" in error["message"]
