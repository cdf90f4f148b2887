"""Seed rows (roles, categories, SLA policies, playbooks) that a
`transaction=True` test's flush removes, put back for the tests after it."""

from __future__ import annotations

from importlib import import_module

# The data migrations kept after the squash, which seed rows tests rely on
# (roles, categories, SLA policies, playbooks, built-in journeys).
SEED_MIGRATIONS = (
    ("core.migrations.0002_roles", "grant"),
    ("core.migrations.0002_roles", "grant_audit_log"),
    ("crm.migrations.0002_roles", "grant"),
    ("crm.migrations.0016_retention_roles", "grant"),
    ("crm.migrations.0016_retention_roles", "grant_suppressions"),
    ("crm.migrations.0016_retention_roles", "grant_imports"),
    ("outreach.migrations.0002_roles", "grant"),
    ("outreach.migrations.0014_journeys_builtin", "create"),
    ("outreach.migrations.0014_journeys_builtin", "grant"),
    ("tickets.migrations.0002_seed", "seed"),
    ("tickets.migrations.0002_seed", "grant_assignment_and_surveys"),
    ("crisis.migrations.0002_roles", "grant"),
    ("crisis.migrations.0003_playbooks", "seed"),
    ("reports.migrations.0002_roles", "grant"),
)


def seed_data_restore() -> None:
    """Run the seeding migrations again where a flush emptied their rows,
    and warm the content-type cache (a flush empties it too; a long-running
    process has it warm, so query-count tests measure with it warm). For
    every test (tests/conftest.py) and for module-scoped data loaded before
    the first test's fixtures run (tests/crm/test_demo_data.py)."""
    from django.apps import apps as django_apps
    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType

    from core.roles import MANAGER
    from tickets.models import Category

    if not (Group.objects.filter(name=MANAGER).exists() and Category.objects.exists()):
        for module, function in SEED_MIGRATIONS:
            getattr(import_module(module), function)(django_apps, None)
    ContentType.objects.get_for_models(*django_apps.get_models())
