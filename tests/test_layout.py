"""Which module may import which: read from the source (every import
statement, also those inside functions), so a cycle is caught before it is
worked around."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOMAIN_APPS = ("crm", "outreach", "tickets", "crisis", "reports")


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, by its dotted name (a relative import is
    resolved against the file's package)."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_core_imports_no_domain_app():
    """core is what the domain apps build on (the timeline record, API keys,
    roles, shared choices such as Channel): none of its modules imports
    them, so no app's models can meet core's in an import cycle."""
    modules = sorted(path for path in ROOT.glob("core/**/*.py") if "migrations" not in path.parts)
    assert len(modules) > 30
    offending = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_modules(path) if name.split(".")[0] in DOMAIN_APPS
        )
        for path in modules
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_services_and_selectors_do_not_import_tasks():
    """Tasks call services, never the other way round: a service that has
    work queued names the task by its dotted path (django-q2's async_task),
    so tasks.py stays a thin layer on top."""
    modules = [
        path
        for app in DOMAIN_APPS
        for pattern in ("services.py", "services/**/*.py", "selectors.py", "selectors/**/*.py")
        for path in ROOT.glob(f"{app}/{pattern}")
    ]
    assert ROOT / "tickets/services/sla.py" in modules
    offending = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in imported_modules(path)
            if name.split(".")[0] in DOMAIN_APPS and "tasks" in name.split(".")[1:2]
        )
        for path in modules
    }
    assert {path: names for path, names in offending.items() if names} == {}


def product_modules() -> list[Path]:
    return [
        path
        for package in ("config", "core", *DOMAIN_APPS)
        for path in ROOT.glob(f"{package}/**/*.py")
        if "migrations" not in path.parts
    ]


def test_one_template_engine_and_one_variable_check():
    """Message templates (outreach) and reply templates (tickets) are checked
    by one piece of code (core.templating.template_check): one engine, one
    wording of an unknown variable, so the two cannot drift apart."""
    engines, checks = set(), set()
    for path in product_modules():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Engine":
                engines.add(str(path.relative_to(ROOT)))
            if isinstance(node, ast.Constant) and str(node.value).startswith("Unknown variable"):
                checks.add(str(path.relative_to(ROOT)))
    assert engines == {"core/templating.py"}
    assert checks == {"core/templating.py"}


# Choices people pick in a form (every value is theirs to choose), and the
# postal DM consent channel, which the demo records and issue 20 builds on.
PICKED_BY_PEOPLE = {
    "Prefecture",
    "Priority",
    "AssignmentMode",
    "SuspensionReason",
    "StepRole",
    "StepCondition",
    "CountermeasureStatus",
    "ConsentChannel.DM",
    "DeliveryChannel",  # a campaign's channel, picked by the marketer
}
CHOICE_BASES = {"TextChoices", "IntegerChoices"}


def test_every_choice_the_system_sets_is_produced_by_product_code():
    """A value of a TextChoices that nothing produces is dead: a filter and
    a label for something that never happens (a consent source 「管理画面」
    beside the staff one that is really written). Each value is named as
    Class.MEMBER by product code (not tests, demo loaders or migrations)."""
    members: dict[str, set[str]] = {}
    named: set[tuple[str, str]] = set()
    for path in product_modules():
        if "demo" in path.name:
            continue
        tree = ast.parse(path.read_text(), str(path))
        aliases = {
            alias.asname: alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
            if alias.asname
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ClassDef)
                and {getattr(base, "attr", getattr(base, "id", "")) for base in node.bases}
                & CHOICE_BASES
            ):
                members[node.name] = {
                    target.id
                    for statement in node.body
                    if isinstance(statement, ast.Assign)
                    for target in statement.targets
                    if isinstance(target, ast.Name)
                }
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                named.add((aliases.get(node.value.id, node.value.id), node.attr))
    assert {"Channel", "ConsentSource", "InquiryEventKind", "SkipReason"} <= set(members)
    unproduced = sorted(
        f"{cls}.{member}"
        for cls, names in members.items()
        for member in names
        if (cls, member) not in named
        and cls not in PICKED_BY_PEOPLE
        and f"{cls}.{member}" not in PICKED_BY_PEOPLE
    )
    assert unproduced == []
