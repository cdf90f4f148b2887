"""API key admin: created and revoked through core.services, secret shown once."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.db import connection
from django.urls import reverse

from core.models import ApiKey, ApiScope, api_key_hash
from core.services import api_key_rotate
from tests.conftest import make_api_key

pytestmark = pytest.mark.django_db

KEYS = reverse("admin:core_apikey_changelist")
ADD = reverse("admin:core_apikey_add")
SECRET = re.compile(r"mdg_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}")


def key_change(api_key) -> str:
    return reverse("admin:core_apikey_change", args=[api_key.pk])


def database_text_containing(needle: str) -> list[str]:
    """Every (table.column) of a text-like column that holds `needle`."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = current_schema()
              AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea')
            """
        )
        columns = cursor.fetchall()
        found = []
        for table, column in columns:
            cursor.execute(
                f'SELECT 1 FROM "{table}" WHERE position(%s in "{column}"::text) > 0 LIMIT 1',
                [needle],
            )
            if cursor.fetchone():
                found.append(f"{table}.{column}")
    return found


def test_adding_a_key_shows_it_once_and_stores_only_its_hash(client, owner):
    client.force_login(owner)

    response = client.post(
        ADD,
        {"label": "自社サイト", "scope": ApiScope.WRITE, "channels": ["own_site", "store"]},
        follow=True,
    )

    assert response.status_code == 200
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    secrets = [match for text in shown for match in SECRET.findall(text)]
    assert len(secrets) == 1
    secret = secrets[0]
    api_key = ApiKey.objects.get()
    assert api_key.key_hash == api_key_hash(secret)
    assert (api_key.label, api_key.scope, api_key.channels) == (
        "自社サイト",
        ApiScope.WRITE,
        ["own_site", "store"],
    )
    assert api_key.created_by == owner
    # Only the hash is kept: the random part (after mdg_<prefix>_, which may
    # itself hold "_") is in no column of any table
    # (the scan itself works: it finds the hash where it belongs).
    assert database_text_containing(secret.split("_", 2)[-1]) == []
    assert database_text_containing(api_key.key_hash) == ["core_apikey.key_hash"]
    # And it is never shown again.
    for url in (KEYS, key_change(api_key)):
        assert secret not in client.get(url).content.decode()


def test_adding_a_key_without_channels_is_a_form_error(client, owner):
    client.force_login(owner)

    response = client.post(ADD, {"label": "店舗", "scope": ApiScope.READ})

    assert response.status_code == 200
    assert "channels" in response.context["adminform"].form.errors
    assert not ApiKey.objects.exists()


def test_change_form_edits_only_the_label(client, owner):
    api_key, _ = make_api_key(scope=ApiScope.READ, channels=("own_site",), label="old")
    client.force_login(owner)

    response = client.post(
        key_change(api_key), {"label": "new", "scope": ApiScope.WRITE, "channels": ["amazon"]}
    )

    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.label == "new"
    assert api_key.scope == ApiScope.READ
    assert api_key.channels == ["own_site"]


def test_change_page_never_shows_the_hash(client, owner):
    api_key, secret = make_api_key()
    client.force_login(owner)

    html = client.get(key_change(api_key)).content.decode()

    assert api_key.prefix in html
    assert api_key.key_hash not in html
    assert secret not in html


def test_revoke_action_revokes_only_the_selected_keys(client, owner):
    revoked, _ = make_api_key(label="old site")
    kept, _ = make_api_key(label="new site")
    client.force_login(owner)

    response = client.post(
        KEYS, {"action": "revoke_keys", "_selected_action": [revoked.pk]}, follow=True
    )

    revoked.refresh_from_db()
    kept.refresh_from_db()
    assert revoked.revoked_at is not None and not revoked.is_active
    assert kept.revoked_at is None
    assert response.status_code == 200


def test_keys_cannot_be_deleted(admin_client):
    api_key, _ = make_api_key()

    response = admin_client.post(
        reverse("admin:core_apikey_delete", args=[api_key.pk]), {"post": "yes"}
    )

    assert response.status_code == 403
    assert ApiKey.objects.filter(pk=api_key.pk).exists()


def test_api_key_changelist_query_count_does_not_grow_with_rows(
    client, owner, django_assert_num_queries
):
    client.force_login(owner)
    for n in range(5):
        make_api_key(label=f"site {n}", channels=("own_site", "rakuten"))
    # session, user, permissions (2), page count, rows, the incident banner
    with django_assert_num_queries(7):
        response = client.get(KEYS)
    assert len(response.context["cl"].result_list) == 5

    for n in range(5, 15):
        api_key, _ = make_api_key(label=f"site {n}")
        if n % 2:  # rotated keys: an expiry column, and their successors
            api_key_rotate(key=api_key, grace_hours=24)
    with django_assert_num_queries(7):
        response = client.get(KEYS)
    assert len(response.context["cl"].result_list) == 20
    assert "expiry" in response.context["cl"].list_display


def test_outsider_is_sent_to_login_from_every_api_key_page(client, outsider):
    api_key, _ = make_api_key()
    client.force_login(outsider)

    for url in (KEYS, ADD, key_change(api_key)):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url
    client.post(KEYS, {"action": "revoke_keys", "_selected_action": [api_key.pk]})
    api_key.refresh_from_db()
    assert api_key.revoked_at is None


def test_agent_cannot_see_api_keys(client, colleague):
    api_key, _ = make_api_key()
    client.force_login(colleague)

    for url in (KEYS, ADD, key_change(api_key)):
        assert client.get(url).status_code == 403, url
    index = client.get(reverse("admin:index")).content.decode()
    assert KEYS not in index
    assert reverse("admin:crm_customer_changelist") in index
    client.post(KEYS, {"action": "revoke_keys", "_selected_action": [api_key.pk]})
    api_key.refresh_from_db()
    assert api_key.revoked_at is None


def key_rotate(api_key) -> str:
    return reverse("admin:core_apikey_rotate", args=[api_key.pk])


def test_rotating_in_the_admin_shows_the_new_key_once(client, owner):
    old, old_secret = make_api_key(label="自社サイト", channels=("own_site",))
    client.force_login(owner)
    change_page = client.get(key_change(old)).content.decode()
    assert key_rotate(old) in change_page
    assert "キーを更新（ローテーション）" in change_page

    response = client.post(key_rotate(old), {"grace_hours": "72"}, follow=True)

    assert response.status_code == 200
    new = ApiKey.objects.exclude(pk=old.pk).get()
    assert response.redirect_chain[-1][0] == key_change(new)
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    secrets = [match for text in shown for match in SECRET.findall(text)]
    assert len(secrets) == 1 and secrets[0] != old_secret
    assert new.key_hash == api_key_hash(secrets[0])
    assert (new.label, new.created_by, new.rotated_from) == ("自社サイト", owner, old)
    old.refresh_from_db()
    assert old.expires_at is not None and old.revoked_at is None
    # the key's history (the admin's log) says who rotated it
    history = LogEntry.objects.filter(object_id=str(old.pk), user=owner)
    assert [entry.get_change_message() for entry in history] == [
        f"キーを更新しました（新しいキー：{new}）。"
    ]
    # never shown again; the old key offers no second rotation
    for url in (KEYS, key_change(new), key_change(old)):
        assert secrets[0] not in client.get(url).content.decode()
    assert key_rotate(old) not in client.get(key_change(old)).content.decode()


def test_rotation_page_offers_grace_periods_defaulting_to_a_day(client, owner):
    api_key, _ = make_api_key()
    client.force_login(owner)

    response = client.get(key_rotate(api_key))

    assert response.status_code == 200
    field = response.context["form"]["grace_hours"]
    assert field.value() == 24
    assert [value for value, _label in field.field.choices] == [0, 1, 24, 72, 168]


def test_agent_and_outsider_cannot_rotate_keys(client, colleague, outsider):
    api_key, _ = make_api_key()

    client.force_login(colleague)
    assert client.get(key_rotate(api_key)).status_code == 403
    assert client.post(key_rotate(api_key), {"grace_hours": "24"}).status_code == 403
    client.force_login(outsider)
    response = client.post(key_rotate(api_key), {"grace_hours": "24"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert ApiKey.objects.count() == 1


def test_expired_keys_are_filtered_with_the_revoked(client, owner):
    active, _ = make_api_key(label="active")
    replaced, _ = make_api_key(label="replaced")
    successor = api_key_rotate(key=replaced, grace_hours=0)[0]
    client.force_login(owner)

    shown = client.get(KEYS, {"revoked": "yes"}).context["cl"].result_list
    assert [k.pk for k in shown] == [replaced.pk]
    shown = client.get(KEYS, {"revoked": "no"}).context["cl"].result_list
    assert {k.pk for k in shown} == {active.pk, successor.pk}


def test_the_key_list_says_a_key_never_expires_rather_than_a_dash(client, owner):
    make_api_key(label="kept")
    replaced, _ = make_api_key(label="replaced")
    api_key_rotate(key=replaced, grace_hours=24)
    client.force_login(owner)

    page = client.get(KEYS).content.decode()

    cells = re.findall(r'<td class="field-expiry">(.*?)</td>', page)
    assert sorted(cells)[-2:] == ["無期限", "無期限"]  # the kept key and the successor
    assert len(cells) == 3 and any("年" in cell for cell in cells)  # the replaced key: its end


def test_the_key_list_ticks_the_keys_that_work_and_crosses_revoked_or_expired_ones(client, owner):
    make_api_key(label="working")
    replaced, _ = make_api_key(label="replaced")
    api_key_rotate(key=replaced, grace_hours=0)  # expired at once
    client.force_login(owner)

    page = client.get(KEYS).content.decode()

    header = re.search(r'<th scope="col" class="column-active">.*?</th>', page, re.S)
    assert header and "有効" in header.group(0)
    icons = re.findall(r'<td class="field-active"><img src="[^"]*icon-(yes|no)\.svg"', page)
    assert sorted(icons) == ["no", "yes", "yes"]  # the working key and the successor work
