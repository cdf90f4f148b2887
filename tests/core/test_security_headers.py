"""Security headers on every kind of page (issue 21): a
Content-Security-Policy without 'unsafe-inline' for scripts, no framing,
and the other headers browsers act on. Whether the pages still work under
the policy is shown by the browser tests, which fail on any violation
(tests/browser.py: watch_csp)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from crm.models import Customer
from outreach import services as outreach
from tests.api_client import api_client
from tests.conftest import make_api_key
from tests.crm import factories

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"
INLINE_HANDLER = re.compile(r"""\son[a-z]+\s*=\s*["']""", re.IGNORECASE)
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def directives(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: values for name, *values in parts}


def assert_security_headers(response) -> None:
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    permissions = response.headers["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in permissions


def assert_inline_scripts_carry_the_nonce(response) -> None:
    """Every <script> without src has the nonce the header allows, and
    the page has no inline event handler (which no nonce can allow)."""
    html = response.content.decode()
    nonces = [v for v in directives(response)["script-src"] if v.startswith("'nonce-")]
    for attributes in SCRIPT_TAG.findall(html):
        if "src=" in attributes or "application/json" in attributes:
            continue
        assert nonces, attributes
        nonce = nonces[0].removeprefix("'nonce-").removesuffix("'")
        assert f'nonce="{nonce}"' in attributes, attributes
    assert not INLINE_HANDLER.findall(html)


@pytest.fixture
def customer() -> Customer:
    return factories.customer()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(lambda c: reverse("admin:index"), id="home-with-charts"),
        pytest.param(lambda c: reverse("admin:crm_customer_changelist"), id="admin-list"),
        pytest.param(
            lambda c: reverse("admin:crm_customer_change", args=[c.pk]), id="admin-change"
        ),
        pytest.param(lambda c: reverse("admin:outreach_campaign_add"), id="campaign-add"),
        pytest.param(lambda c: reverse("admin:outreach_messagetemplate_add"), id="template-add"),
        pytest.param(lambda c: reverse("admin:outreach_segment_add"), id="segment-add"),
        pytest.param(lambda c: reverse("admin:crisis_incident_changelist"), id="crisis-list"),
        pytest.param(lambda c: reverse("admin:tickets_inquiry_changelist"), id="inbox"),
    ],
)
def test_admin_pages_send_the_security_headers(client, owner, customer, url):
    client.force_login(owner)
    response = client.get(url(customer))
    assert response.status_code == 200
    assert_security_headers(response)
    assert_inline_scripts_carry_the_nonce(response)


def test_the_login_page_sends_the_security_headers():
    response = Client().get(reverse("admin:login"))
    assert response.status_code == 200
    assert_security_headers(response)


def test_each_response_has_a_nonce_of_its_own(client, owner):
    client.force_login(owner)
    url = reverse("admin:outreach_campaign_add")
    first, second = (directives(client.get(url))["script-src"] for _ in range(2))
    assert first != second


def test_the_api_sends_the_security_headers(customer):
    _key, secret = make_api_key(scope="read", channels=("own_site",))
    response = api_client(secret).get(f"/api/v1/customers/{customer.pk}/")
    assert response.status_code == 200
    assert_security_headers(response)
    assert_security_headers(api_client(None).get("/api/v1/customers/"))  # a 401 too


def test_the_api_docs_load_their_script_from_this_server_not_inline():
    page = Client().get("/api/docs/")
    assert page.status_code == 200
    assert_security_headers(page)
    assert_inline_scripts_carry_the_nonce(page)
    script_url = re.search(r'<script src="([^"]*script=[^"]*)"', page.content.decode()).group(1)
    script = Client().get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


def test_the_unsubscribe_page_sends_the_security_headers(customer):
    token = outreach.unsubscribe_token(customer_id=customer.pk, channel="email")
    response = Client().get(reverse("outreach:unsubscribe", args=[token]))
    assert response.status_code == 200
    assert_security_headers(response)
    assert_inline_scripts_carry_the_nonce(response)


def test_a_missing_page_sends_the_security_headers():
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert_security_headers(response)


@pytest.mark.parametrize("path", sorted(TEMPLATES.rglob("*.html")), ids=str)
def test_templates_have_no_inline_script_without_the_nonce_nor_event_handlers(path):
    """Pages not opened above (the campaign panel, the broadcast panel)
    are checked in their templates: an inline script carries the nonce,
    and nothing uses onclick=/onsubmit= (use data-confirm, core/confirm.js)."""
    text = path.read_text()
    for attributes in SCRIPT_TAG.findall(text):
        if "src=" in attributes or "application/json" in attributes:
            continue
        assert 'nonce="{{ request.csp_nonce }}"' in attributes, f"{path}: <script{attributes}>"
    assert not INLINE_HANDLER.findall(text), path
