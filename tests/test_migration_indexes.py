"""Migrations after the first release build indexes on large tables
concurrently: a plain CREATE INDEX locks the table against writes for as
long as it takes (minutes on millions of inquiries or orders), and the
inbox, the API and the worker stop with it."""

from __future__ import annotations

import inspect
import re

import pytest
from django.apps import apps
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.migrations.loader import MigrationLoader

from core.db import add_index_concurrently, postgres_indexes_operation

# Tables that grow with the shop's traffic (rows per message, order, send or
# consent change). From the first release on, an index or a unique
# constraint on one of them is built in a migration of its own with
# `atomic = False`, by `AddIndexConcurrently` (a unique one by RunSQL
# `CREATE UNIQUE INDEX CONCURRENTLY`, then `AddConstraint` ... `USING INDEX`
# where needed); add a table here when it starts to grow the same way.
LARGE_MODELS = (
    "tickets.Inquiry",
    "tickets.InquiryMessage",
    "tickets.InquiryEvent",
    "tickets.Attachment",
    "crm.Customer",
    "crm.CustomerChannelProfile",
    "crm.CustomerEvent",
    "crm.ChannelIdentity",
    "crm.Order",
    "crm.OrderLine",
    "crm.ConsentEvent",
    "crm.ConsentState",
    "outreach.Delivery",
    "outreach.LineWebhookEvent",
    "outreach.JourneyEvent",
    "core.AuditEntry",
    "core.IdempotencyRecord",
)

# The highest migration number of each app at the first release (its
# squash, the data migrations kept after it, and the history the squash
# replaced): every migration numbered above it is held to the rule.
RELEASED = {
    "core": 9,
    "crisis": 6,
    "crm": 22,
    "outreach": 14,
    "reports": 2,
    "tickets": 22,
}

CREATE_INDEX = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?P<concurrently>CONCURRENTLY\s+)?"
    r"(?:IF\s+NOT\s+EXISTS\s+)?\S+\s+ON\s+(?:ONLY\s+)?\"?(?P<table>\w+)\"?",
    re.IGNORECASE,
)


def large_tables() -> dict[str, str]:
    """{lower-case model name with app: table} of LARGE_MODELS."""
    found = {}
    for label in LARGE_MODELS:
        model = apps.get_model(label)
        found[f"{model._meta.app_label}.{model._meta.model_name}"] = model._meta.db_table
    return found


def lock_problems(migration: migrations.Migration) -> list[str]:
    """What in `migration` builds an index on a large table while holding
    the write lock; empty when nothing does."""
    tables = large_tables()
    problems = []
    for operation in migration.operations:
        if isinstance(operation, migrations.AddIndex | migrations.AddConstraint):
            if f"{migration.app_label}.{operation.model_name.lower()}" not in tables:
                continue
            if isinstance(operation, migrations.AddConstraint) and not isinstance(
                operation.constraint, models.UniqueConstraint
            ):
                continue
            concurrent = isinstance(operation, AddIndexConcurrently)
            if not concurrent or migration.atomic:
                problems.append(f"{migration.name}: {operation.describe()}")
        elif isinstance(operation, migrations.RunSQL):
            statements = (
                operation.sql if isinstance(operation.sql, list | tuple) else [operation.sql]
            )
            for statement in statements:
                text = statement[0] if isinstance(statement, list | tuple) else statement
                for match in CREATE_INDEX.finditer(text):
                    if match["table"] not in tables.values():
                        continue
                    if not match["concurrently"] or migration.atomic:
                        problems.append(f"{migration.name}: {match.group(0)}")
        elif isinstance(operation, migrations.RunPython) and operation.code.__qualname__.startswith(
            postgres_indexes_operation.__name__
        ):
            # core.db.postgres_indexes_operation: concurrently only when asked, outside
            # a transaction
            closure = inspect.getclosurevars(operation.code).nonlocals
            concurrent = closure.get("how") == "CONCURRENTLY " and not migration.atomic
            for name, definition in closure["indexes"].items():
                if definition.split()[0] in tables.values() and not concurrent:
                    problems.append(f"{migration.name}: CREATE INDEX {name} ON {definition}")
    return problems


def after_release(loader: MigrationLoader):
    for (app_label, name), migration in sorted(loader.disk_migrations.items()):
        if app_label in RELEASED and int(name.split("_")[0]) > RELEASED[app_label]:
            yield migration


def test_migrations_after_the_release_build_indexes_on_large_tables_concurrently():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    problems = [p for migration in after_release(loader) for p in lock_problems(migration)]
    assert not problems, "\n".join(problems)


def test_every_app_of_ours_with_migrations_has_a_release_mark():
    from django.conf import settings

    loader = MigrationLoader(None, ignore_no_migrations=True)
    ours = {
        app
        for app, _ in loader.disk_migrations
        if apps.get_app_config(app).path.startswith(str(settings.BASE_DIR))
        and ".venv" not in apps.get_app_config(app).path
    }
    assert ours == set(RELEASED)


def migration(*operations, atomic=True, app_label="tickets"):
    built = migrations.Migration("0099_test", app_label)
    built.operations = list(operations)
    built.atomic = atomic
    return built


INDEX = models.Index(fields=["created_at"], name="tickets_test_idx")


@pytest.mark.parametrize(
    "bad",
    [
        migration(migrations.AddIndex("inquiry", INDEX)),
        migration(migrations.AddIndex("inquiry", INDEX), atomic=False),
        migration(AddIndexConcurrently("inquiry", INDEX)),
        migration(
            migrations.AddConstraint(
                "inquirymessage", models.UniqueConstraint(fields=["message_id"], name="u")
            )
        ),
        migration(migrations.RunSQL("CREATE INDEX x ON tickets_inquiry (subject)")),
        migration(
            migrations.RunSQL(["CREATE UNIQUE INDEX CONCURRENTLY x ON crm_order (id)"]),
        ),
        migration(
            migrations.AddIndex("order", models.Index(fields=["ordered_at"], name="crm_test_idx")),
            app_label="crm",
        ),
        migration(
            postgres_indexes_operation({"x": "crm_order USING gin (order_number gin_trgm_ops)"}),
            atomic=False,
            app_label="crm",
        ),
        migration(
            postgres_indexes_operation(
                {"x": "crm_order USING gin (order_number gin_trgm_ops)"}, concurrently=True
            ),
            app_label="crm",
        ),
    ],
)
def test_a_locking_index_on_a_large_table_is_found(bad):
    assert lock_problems(bad)


@pytest.mark.parametrize(
    "good",
    [
        migration(AddIndexConcurrently("inquiry", INDEX), atomic=False),
        migration(add_index_concurrently("inquiry", INDEX), atomic=False),
        migration(
            postgres_indexes_operation(
                {"x": "crm_order USING gin (order_number gin_trgm_ops)"}, concurrently=True
            ),
            atomic=False,
            app_label="crm",
        ),
        migration(
            migrations.RunSQL("CREATE INDEX CONCURRENTLY x ON tickets_inquiry (subject)"),
            atomic=False,
        ),
        migration(migrations.AddIndex("category", INDEX)),
        migration(
            postgres_indexes_operation({"x": "tickets_category USING gin (name gin_trgm_ops)"})
        ),
        migration(
            migrations.AddConstraint(
                "inquiry", models.CheckConstraint(condition=models.Q(id__gt=0), name="c")
            )
        ),
    ],
)
def test_a_concurrent_index_or_a_small_table_passes(good):
    assert not lock_problems(good)
