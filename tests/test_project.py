"""Project hygiene, run by `make test`: lint, format, types, migrations."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUFF = Path(sys.executable).with_name("ruff")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)


def test_ruff_finds_nothing():
    result = run(str(RUFF), "check", "--quiet", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_ruff_formatted():
    result = run(str(RUFF), "format", "--check", "--quiet", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_no_type_errors():
    # Which packages and how strictly: [tool.mypy] in pyproject.toml. The
    # cache stays in .mypy_cache, so a second run checks only what changed.
    result = run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_models_and_migrations_agree():
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_the_demo_builds_on_sqlite(tmp_path):
    """`make run` migrates and loads the demo into SQLite, while the tests
    run on PostgreSQL: one pass on SQLite catches SQL only PostgreSQL
    speaks (the SLA watch, claims, idempotency use their own SQL there)."""
    import os

    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "MADOGUCHI_VAR_DIR": str(tmp_path),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    for command in (["migrate", "--noinput"], ["demo_data", "--customers", "30"]):
        result = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]


def _marked_slow(marks: ast.expr | None) -> bool:
    return marks is not None and "mark.slow" in ast.unparse(marks)


def test_tests_that_start_chromium_or_the_worker_cluster_are_marked_slow():
    """`make test-fast` leaves out the tests marked slow: a test that drives
    Chromium or starts the real worker (the `cluster` fixture) takes 10 s to
    over a minute, so it carries the mark, on itself or its module."""
    unmarked = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        module = ast.parse(path.read_text())
        pytestmark = next(
            (
                node.value
                for node in module.body
                if isinstance(node, ast.Assign)
                and any(getattr(t, "id", None) == "pytestmark" for t in node.targets)
            ),
            None,
        )
        for node in module.body:
            if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
                continue
            names = {getattr(n, "id", getattr(n, "attr", None)) for n in ast.walk(node)}
            long_running = bool(names & {"chromium_browser", "sync_playwright", "chromium"})
            long_running |= "cluster" in [arg.arg for arg in node.args.args]
            marks = ast.List(elts=[*node.decorator_list])
            if long_running and not (_marked_slow(pytestmark) or _marked_slow(marks)):
                unmarked.append(f"{path.relative_to(ROOT)}::{node.name}")
    assert unmarked == []
