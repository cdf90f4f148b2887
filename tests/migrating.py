"""Data-migration tests: move the test database to a migration and back.

The test database is built by the squashed migrations, whose graph no
longer has the old nodes these tests go back to. They go back through the
history instead (the squashed files left out, tests/migration_history.py):
the squash records every migration it replaces as applied, and builds the
same schema as the history (tests/test_migration_squash.py), so to the
history's graph the test database is one that came through it."""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from functools import cache
from pathlib import Path

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import override_settings

from tests.migration_history import history_migration_modules


@cache
def history_modules() -> dict[str, str]:
    directory = Path(tempfile.mkdtemp(prefix="madoguchi-history-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    sys.path.insert(0, str(directory))
    return history_migration_modules(directory)


def migrate(target: tuple[str, str] | None = None):
    """Migrate through the history to `target`, or (None) every app to its
    latest migration — apps that depend on the one under test (crisis on
    outreach and crm) are unapplied on the way back and must come back too;
    return the models as they are there."""
    with override_settings(MIGRATION_MODULES=history_modules()):
        executor = MigrationExecutor(connection)
        targets = [target] if target else executor.loader.graph.leaf_nodes()
        executor.migrate(targets)
        return MigrationExecutor(connection).loader.project_state(targets).apps
