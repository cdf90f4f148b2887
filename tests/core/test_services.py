"""API key rotation (core.services.api_key_rotate) and how the API treats
the old and the new key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.models import ApiKey, ApiScope, api_key_hash
from core.services import api_key_revoke, api_key_rotate
from tests.api_client import api_client
from tests.conftest import make_api_key

pytestmark = pytest.mark.django_db

CUSTOMERS = "/api/v1/customers/"


def test_rotation_makes_a_new_key_like_the_old_one(owner):
    old, old_secret = make_api_key(scope=ApiScope.READ, channels=("own_site", "store"), label="POS")

    new, secret = api_key_rotate(key=old, grace_hours=24, actor=owner)

    assert new.pk != old.pk and secret != old_secret
    assert new.key_hash == api_key_hash(secret)
    assert (new.label, new.scope, new.channels) == ("POS", ApiScope.READ, ["own_site", "store"])
    assert new.created_by == owner
    assert new.rotated_from == old
    assert new.expires_at is None
    old.refresh_from_db()
    hours = (old.expires_at - timezone.now()) / timedelta(hours=1)
    assert 23.9 < hours <= 24
    assert old.revoked_at is None


def test_old_key_works_within_the_grace_period_and_not_after():
    old, old_secret = make_api_key()
    _new, secret = api_key_rotate(key=old, grace_hours=24)

    # within the grace period both keys work
    assert api_client(old_secret).get(CUSTOMERS).status_code == 200
    assert api_client(secret).get(CUSTOMERS).status_code == 200

    # the grace period is over
    ApiKey.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api_client(old_secret).get(CUSTOMERS)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["status"] == 401 and error["code"] == "authentication_failed"
    assert error["message"] == "このAPIキーは有効期限切れです。新しいキーに切り替えてください。"
    assert api_client(secret).get(CUSTOMERS).status_code == 200


def test_rotation_without_grace_refuses_the_old_key_at_once():
    old, old_secret = make_api_key()

    _new, secret = api_key_rotate(key=old, grace_hours=0)

    assert api_client(old_secret).get(CUSTOMERS).status_code == 401
    assert api_client(secret).get(CUSTOMERS).status_code == 200


def test_a_replaced_or_revoked_key_cannot_be_rotated_again():
    replaced, _ = make_api_key()
    api_key_rotate(key=replaced, grace_hours=24)
    revoked, _ = make_api_key()
    api_key_revoke(api_key=revoked)

    for api_key in (replaced, revoked):
        with pytest.raises(ValidationError):
            api_key_rotate(key=api_key, grace_hours=24)
    assert ApiKey.objects.count() == 3


@pytest.mark.parametrize("hours", [-1, 24 * 30 + 1])
def test_grace_period_out_of_range_is_refused(hours):
    api_key, _ = make_api_key()

    with pytest.raises(ValidationError) as raised:
        api_key_rotate(key=api_key, grace_hours=hours)

    assert "grace_hours" in raised.value.error_dict
    assert ApiKey.objects.count() == 1
