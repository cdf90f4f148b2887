"""The interactive API docs work without internet."""

import re

from django.contrib.staticfiles import finders
from django.test import Client


def test_api_docs_load_swagger_ui_from_this_server_not_a_cdn():
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
    for asset in assets:
        if asset.startswith("/api/docs/?"):
            continue  # the page's own script, served here (no inline script: CSP)
        assert asset.startswith("/static/"), asset
        # collectstatic (or runserver) serves what a finder finds
        assert finders.find(asset.removeprefix("/static/")), asset
