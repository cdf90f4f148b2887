"""Shared fixtures. Three users (owner, colleague, outsider) per STYLE.md."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from hypothesis import HealthCheck, settings

from core.models import ApiKey, ApiScope
from core.roles import AGENT, MANAGER
from core.services import api_key_create

settings.register_profile(
    "default",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("default")


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """PBKDF2 costs ~1 s a hash here; tests need no slow hashing."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        # still verifies hashes made by module-scoped fixtures before this one
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]


@pytest.fixture(autouse=True)
def _admin_without_second_factor(settings):
    """Admin tests log in with force_login; tests/core/test_otp.py turns the
    second factor on and proves it."""
    settings.ADMIN_REQUIRE_OTP = False


# Data migrations that seed rows tests rely on (roles, categories, SLA policies).
SEED_MIGRATIONS = (
    ("core.migrations.0002_roles", "grant"),
    ("crm.migrations.0002_roles", "grant"),
    ("outreach.migrations.0002_roles", "grant"),
    ("tickets.migrations.0002_seed", "seed"),
)


@pytest.fixture(autouse=True)
def _seed_data_present(request):
    """A `transaction=True` test ends by flushing every table, seed rows
    included; put them back for the tests that follow, and warm the
    content-type cache."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    transactional = marker.kwargs.get("transaction", False)
    request.getfixturevalue("transactional_db" if transactional else "db")
    from importlib import import_module

    from django.apps import apps as django_apps

    from tickets.models import Category

    if not (Group.objects.filter(name=MANAGER).exists() and Category.objects.exists()):
        for module, function in SEED_MIGRATIONS:
            getattr(import_module(module), function)(django_apps, None)
    # A flush also empties Django's content-type cache; a long-running
    # process has it warm, so query-count tests measure with it warm.
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.get_for_models(*django_apps.get_models())


@pytest.fixture
def owner(django_user_model):
    user = django_user_model.objects.create_user(
        "owner", password="pw-owner-1234", is_staff=True, last_name="店長"
    )
    user.groups.add(Group.objects.get(name=MANAGER))
    return user


@pytest.fixture
def colleague(django_user_model):
    user = django_user_model.objects.create_user(
        "colleague", password="pw-colleague-1234", is_staff=True, last_name="佐藤"
    )
    user.groups.add(Group.objects.get(name=AGENT))
    return user


@pytest.fixture
def outsider(django_user_model):
    """Logged in, but neither staff nor in any group."""
    return django_user_model.objects.create_user("outsider", password="pw-outsider-1234")


def make_api_key(
    *, scope: str = ApiScope.WRITE, channels=("own_site",), label: str = "store"
) -> tuple[ApiKey, str]:
    return api_key_create(label=label, scope=scope, channels=channels)
