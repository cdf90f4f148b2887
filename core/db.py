"""Database helpers the ORM does not offer."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, router
from django.db.models import Model


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


def postgres_indexes_operation(indexes: dict[str, str], *, extensions: Sequence[str] = ()):
    """A migration operation creating PostgreSQL-only indexes ({name: "table
    USING ... (...)"}, after CREATE INDEX name ON) and the extensions they
    need, dropping the indexes on the way back; nothing on another database
    (SQLite, for `make run`)."""
    from django.db import migrations

    def create(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for extension in extensions:
            schema_editor.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
        for name, definition in indexes.items():
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}")

    def drop(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for name in indexes:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")

    return migrations.RunPython(create, drop, elidable=False)
