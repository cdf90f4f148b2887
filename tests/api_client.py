"""A DRF test client authenticated with a real API key."""

from __future__ import annotations

from rest_framework.test import APIClient


def api_client(secret: str | None) -> APIClient:
    client = APIClient()
    if secret:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client
