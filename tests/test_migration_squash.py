"""The squashed migrations build the same PostgreSQL schema as the history
they replace (issue 22 point 6). A fresh install runs the squash; every
database made before it came through the history; both must end up alike,
down to the indexes, constraints, triggers and extensions that
makemigrations does not write and the squash carries by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from tests.migration_history import history_migration_modules

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

# Runs `migrate` with MIGRATION_MODULES from the environment (the history
# copy), the database from DATABASE_URL, as config/settings.py reads it.
MIGRATE = """
import json, os, sys
import django
from django.conf import settings
django.setup()
settings.MIGRATION_MODULES = json.loads(os.environ["MIGRATION_MODULES_JSON"])
from django.core.management import call_command
call_command("migrate", "--noinput", verbosity=0)
"""

CATALOGUE = {
    "extensions": "SELECT extname FROM pg_extension",
    "tables": """
        SELECT c.relname, c.relkind, coalesce(c.reloptions, '{}')::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')""",
    "columns": """
        SELECT table_name, column_name, data_type, udt_name, character_maximum_length,
               numeric_precision, numeric_scale, is_nullable, column_default, is_identity,
               is_generated, generation_expression
        FROM information_schema.columns WHERE table_schema = 'public'""",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace""",
    "functions": """
        SELECT proname, pg_get_functiondef(oid) FROM pg_proc
        WHERE pronamespace = 'public'::regnamespace AND prokind = 'f'""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
        FROM pg_trigger WHERE NOT tgisinternal""",
}


def server(database: str | None = None) -> dict:
    settings = connection.settings_dict
    return {
        "host": settings["HOST"] or "localhost",
        "port": settings["PORT"] or 5432,
        "user": settings["USER"],
        "password": settings["PASSWORD"],
        "dbname": database or settings["NAME"],
    }


def database_url(database: str) -> str:
    s = server(database)
    return f"postgres://{s['user']}:{s['password']}@{s['host']}:{s['port']}/{database}"


def migrate(database: str, modules: dict[str, str], pythonpath: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(database),
        "MIGRATION_MODULES_JSON": json.dumps(modules),
        "PYTHONPATH": os.pathsep.join([str(pythonpath), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", MIGRATE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]


def catalogue(database: str) -> dict[str, set[tuple]]:
    with psycopg.connect(**server(database)) as conn:
        return {
            part: {tuple(row) for row in conn.execute(query).fetchall()}
            for part, query in CATALOGUE.items()
        }


def differences(squashed: dict[str, set[tuple]], history: dict[str, set[tuple]]) -> list[str]:
    lines = []
    for part in CATALOGUE:
        for row in sorted(squashed[part] - history[part], key=str):
            lines.append(f"{part}: only by the squash: {row}")
        for row in sorted(history[part] - squashed[part], key=str):
            lines.append(f"{part}: only by the history: {row}")
    return lines


@pytest.fixture
def two_databases():
    base = connection.settings_dict["NAME"]
    names = (f"{base}_squashed", f"{base}_history")
    with psycopg.connect(**server(), autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    yield names
    with psycopg.connect(**server(), autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_fresh_migrate_and_the_history_give_the_same_schema(two_databases, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the schema compared is PostgreSQL's")
    squashed, history = two_databases
    modules = history_migration_modules(tmp_path)
    assert modules, "no squashed migrations to hide"

    migrate(squashed, {}, tmp_path)
    migrate(history, modules, tmp_path)

    found = differences(catalogue(squashed), catalogue(history))
    assert not found, "\n".join(found)


def test_the_history_copy_holds_no_squash(tmp_path):
    modules = history_migration_modules(tmp_path)
    for module in modules.values():
        files = [p.name for p in (tmp_path / module).iterdir()]
        assert files and not [name for name in files if "squashed" in name]
