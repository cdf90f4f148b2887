"""Database helpers the ORM does not offer."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connections, models, router, transaction
from django.db.models import Model
from django.db.models.fields import NOT_PROVIDED
from django.utils import timezone


def insert_if_absent(instance: Model, *, unique_fields: Sequence[str]) -> bool:
    """Insert `instance` unless a row with the same `unique_fields` exists:
    `INSERT ... ON CONFLICT (...) DO NOTHING RETURNING pk`, one statement.

    Unlike `save()` it neither raises IntegrityError on that conflict nor
    needs a savepoint to survive one, so it can run inside a transaction that
    must go on. A conflicting row that another transaction has not committed
    yet makes this wait for it, like any insert into a unique index.

    Returns True and sets the primary key (the instance is then saved) when
    the row was inserted; False when it existed (only the instance's
    `auto_now`/`auto_now_add` values were set then).
    `unique_fields` must match a unique constraint without a condition.
    Field defaults, `auto_now` and `auto_now_add` apply as in `save()`."""
    model = type(instance)
    opts = model._meta
    using = router.db_for_write(model, instance=instance)
    connection = connections[using]
    quote = connection.ops.quote_name
    fields = [
        field
        for field in opts.concrete_fields
        if field is not opts.auto_field and not field.generated
    ]
    values = [
        field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields
    ]
    conflict = ", ".join(quote(opts.get_field(name).column) for name in unique_fields)  # type: ignore[union-attr, arg-type]  # concrete fields, which have a column
    sql = (
        f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(f.column) for f in fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))})"
        f" ON CONFLICT ({conflict}) DO NOTHING RETURNING {quote(opts.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    instance.pk = row[0]
    instance._state.adding = False
    instance._state.db = using
    return True


# Fields whose Python value psycopg writes as the column wants it: no
# conversion by the field on the way (copy_insert).
_PLAIN_FIELDS = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.BooleanField,
    models.DateTimeField,
    models.DateField,
    models.ForeignKey,
)


def copy_insert(model: type[Model], rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert many new rows of `model` (each a mapping of field attnames —
    `customer_id` — to values) in one COPY, and return their primary keys
    in order. The keys are taken from the table's sequence first (one
    query); missing values get the field's default, `auto_now` and
    `auto_now_add` fields the time of the call, as `bulk_create` would, but
    without building model instances or an INSERT of thousands of
    parameters. The values must be valid already (no save(), no signals).
    Other databases than PostgreSQL: bulk_create."""
    if not rows:
        return []
    opts = model._meta
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        created = model._default_manager.bulk_create([model(**row) for row in rows])
        return [instance.pk for instance in created]
    quote = connection.ops.quote_name
    now = timezone.now()
    columns = []  # (attname, default maker, value converter)
    for field in opts.concrete_fields:
        if field.primary_key or field.generated:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            default = now
        elif field.has_default() or field.db_default is NOT_PROVIDED:
            default = field.get_default()  # "" or None when the field has none
        elif not any(field.attname in row for row in rows):
            continue  # the database's default
        else:
            default = None
        plain = isinstance(field, _PLAIN_FIELDS) and not isinstance(field, models.JSONField)
        convert = None if plain else field.get_db_prep_save
        columns.append((field, default, convert))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [opts.db_table, opts.pk.column, len(rows)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        names = ", ".join(
            quote(name) for name in [opts.pk.column, *(f.column for f, *_ in columns)]
        )
        with cursor.copy(f"COPY {quote(opts.db_table)} ({names}) FROM STDIN") as copy:
            for pk, row in zip(ids, rows, strict=True):
                values = [pk]
                for field, default, convert in columns:
                    value = row.get(field.attname, default)
                    values.append(value if convert is None else convert(value, connection))
                copy.write_row(values)
    return ids


def postgres_indexes_operation(
    indexes: dict[str, str], *, extensions: Sequence[str] = (), concurrently: bool = False
) -> Any:
    """A migration operation creating PostgreSQL-only indexes ({name: "table
    USING ... (...)"}, after CREATE INDEX name ON) and the extensions they
    need, dropping the indexes on the way back; nothing on another database
    (SQLite, for `make run`). `concurrently`: without locking the table
    against writes while the index builds — for large tables, in a
    migration with `atomic = False` (tests/test_migration_indexes.py)."""
    from django.db import migrations

    how = "CONCURRENTLY " if concurrently else ""

    def create(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for extension in extensions:
            schema_editor.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
        for name, definition in indexes.items():
            schema_editor.execute(f"CREATE INDEX {how}IF NOT EXISTS {name} ON {definition}")

    def drop(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for name in indexes:
            schema_editor.execute(f"DROP INDEX {how}IF EXISTS {name}")

    return migrations.RunPython(create, drop, elidable=False)


def add_index_concurrently(model_name: str, index: models.Index) -> Any:
    """AddIndexConcurrently on PostgreSQL (for large tables, in a migration
    with `atomic = False`), a plain AddIndex on another database (SQLite,
    for `make run`, which has no such thing)."""
    from django.contrib.postgres.operations import AddIndexConcurrently
    from django.db import migrations

    class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
        def database_forwards(self, app_label, schema_editor, from_state, to_state):
            if schema_editor.connection.vendor == "postgresql":
                return super().database_forwards(app_label, schema_editor, from_state, to_state)
            return migrations.AddIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )

        def database_backwards(self, app_label, schema_editor, from_state, to_state):
            if schema_editor.connection.vendor == "postgresql":
                return super().database_backwards(app_label, schema_editor, from_state, to_state)
            return migrations.AddIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )

        def deconstruct(self):
            _name, args, kwargs = super().deconstruct()
            return "django.contrib.postgres.operations.AddIndexConcurrently", args, kwargs

    return AddIndexConcurrentlyOnPostgres(model_name=model_name, index=index)


@contextmanager
def custom_plans(using: str = "default") -> Iterator[None]:
    """Within the block, PostgreSQL plans every statement for its own
    values, never with a generic plan. Prepared statements (settings:
    server-side binding) are planned once for any values after a few runs,
    which suits the hot paths, but not a search: the same statement text
    serves every word typed, and a plan good for a rare word walks a
    million rows for a common one (the inbox's 「返品」 went from 10 ms to
    500 ms on its sixth run). A transaction (SET LOCAL ends with it)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        yield
