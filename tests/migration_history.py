"""The migration history the squash replaced, as migration modules of its
own: for the schema comparison (tests/test_migration_squash.py) and the
data-migration tests, which move a database built through the history to
the old nodes and back."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("core", "crisis", "crm", "outreach", "reports", "tickets")
REPLACES = re.compile(r"^\s+replaces\s*=", re.MULTILINE)


def is_squash(path: Path) -> bool:
    return bool(REPLACES.search(path.read_text(encoding="utf-8")))


def history_migration_modules(directory: Path) -> dict[str, str]:
    """Copy each app's migrations but the squashed ones into `directory`
    (to be put on sys.path) and return MIGRATION_MODULES for them; only the
    apps that have a squash."""
    modules = {}
    for app in APPS:
        source = ROOT / app / "migrations"
        files = sorted(source.glob("[0-9]*.py"))
        if not any(is_squash(path) for path in files):
            continue
        module = f"{app}_history_migrations"
        target = directory / module
        target.mkdir(parents=True)
        (target / "__init__.py").write_text("")
        for path in files:
            if not is_squash(path):
                shutil.copy(path, target / path.name)
        modules[app] = module
    return modules
