"""Data-migration tests: move the test database to a migration and back."""

from __future__ import annotations

from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(target: tuple[str, str] | None = None):
    """Migrate to `target`, or (None) every app to its latest migration —
    apps that depend on the one under test (crisis on outreach and crm) are
    unapplied on the way back and must come back too; return the models as
    they are there."""
    executor = MigrationExecutor(connection)
    targets = [target] if target else executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps
