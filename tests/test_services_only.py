"""Writes go through services (STYLE.md, habit 1): no admin, API, view,
form or serializer module writes to the database itself. The source of
every such module is walked (ast) for the calls that write: a model's
`.save()`, a manager's or queryset's `.create()`, `.update()`,
`.delete()`, `bulk_create`, `bulk_update`, `get_or_create`,
`update_or_create`, and Django's own default writes reached through
`super().save_model()` and its kind."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("core", "crm", "outreach", "tickets", "crisis", "reports")
# A module is one of these when its name or a package above it is the
# word, or has it as a part: tickets/admin/inbox.py, crm/admin_imports.py,
# crm/privacy_admin.py, tickets/admin/inquiry_forms.py, core/api/auth.py.
KINDS = ("admin", "api", "views", "forms", "serializers")

WRITES = frozenset(
    {
        "save",
        "create",
        "update",
        "delete",
        "bulk_create",
        "bulk_update",
        "get_or_create",
        "update_or_create",
    }
)
# ModelAdmin's defaults that save or delete the row themselves: calling
# them from an override writes without a service.
DJANGO_WRITES = frozenset(
    {"save_model", "delete_model", "delete_queryset", "save_related", "save_formset"}
)

# What is allowed, and why. `.update()` is also a dict's: these receivers
# are dicts that Django or DRF hand to our code, never a queryset.
ALLOWED_RECEIVERS = {
    # the template context Django's admin renders a page with
    "context": "a template context (dict)",
    "extra_context": "the extra_context dict Django's admin views take",
    # DRF's error detail, flattened to {"field.path": [messages]} (core/api/errors.py)
    "out": "a dict of error messages",
    # drf-spectacular's OpenAPI parameter object (core/api/pagination.py)
    "parameter['schema']": "an OpenAPI schema dict",
    # the choice labels the privacy page shows (crm/privacy_admin.py)
    "labels": "a dict of labels",
}


def _is_kind(path: Path) -> bool:
    parts = path.relative_to(ROOT).with_suffix("").parts[1:]
    return any(
        word == kind or word.startswith(f"{kind}_") or word.endswith(f"_{kind}")
        for word in parts
        for kind in KINDS
    )


def modules() -> list[Path]:
    return sorted(
        path
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and "services" not in path.parts and _is_kind(path)
    )


def writes(source: str) -> list[str]:
    """The writing calls in `source`, as "line: code", in line order."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = ast.unparse(node.func.value)
        name = node.func.attr
        if name in WRITES and receiver not in ALLOWED_RECEIVERS:
            found.append((node.lineno, f"{receiver}.{name}(...)"))
        elif name in DJANGO_WRITES and receiver == "super()":
            found.append((node.lineno, f"super().{name}(...)"))
    return [f"{line}: {call}" for line, call in sorted(found)]


def test_admin_api_view_form_and_serializer_modules_write_only_through_services():
    found = {
        str(path.relative_to(ROOT)): calls
        for path in modules()
        if (calls := writes(path.read_text(encoding="utf-8")))
    }
    assert found == {}, (
        "write through a service (tickets/services, crm/services...):\n"
        + "\n".join(f"{path}:{call}" for path, calls in found.items() for call in calls)
    )


def test_the_walk_covers_every_admin_and_api_module():
    walked = {str(path.relative_to(ROOT)) for path in modules()}
    expected = {
        "core/api/auth.py",
        "core/staff_admin.py",
        "crm/admin/customer_forms.py",
        "crm/admin/customers.py",
        "crm/admin/records.py",
        "crm/admin_imports.py",
        "crm/api.py",
        "crm/api_serializers.py",
        "crm/privacy_admin.py",
        "outreach/admin/campaigns.py",
        "tickets/admin/inquiry_page.py",
        "tickets/admin/inquiry_forms.py",
        "tickets/admin/settings_admin.py",
        "tickets/api.py",
        "tickets/views.py",
        "crisis/admin/incidents.py",
        "reports/admin.py",
    }
    assert expected <= walked, expected - walked
    assert not any("/services/" in path or "/migrations/" in path for path in walked)


def test_the_walk_finds_each_kind_of_write():
    source = """
def save_model(self, request, obj, form, change):
    obj.save()
    super().save_model(request, obj, form, change)
    Customer.objects.create(email="a@example.jp")
    Customer.objects.filter(pk=1).update(notes="")
    queryset.delete()
    Tag.objects.get_or_create(name="VIP")
    context.update(title="ok")
"""
    assert writes(source) == [
        "3: obj.save(...)",
        "4: super().save_model(...)",
        "5: Customer.objects.create(...)",
        "6: Customer.objects.filter(pk=1).update(...)",
        "7: queryset.delete(...)",
        "8: Tag.objects.get_or_create(...)",
    ]


# --- Django's own saves -------------------------------------------------------------

# Admins that let staff add or change rows with Django's own
# ModelAdmin.save_model, and why that is enough: configuration rows edited
# as they are, which the SPEC gives no rule beyond their model's
# constraints and no event. A row with a rule (reply approval, reply
# templates, campaigns...) is saved by a service and is not listed here.
DJANGO_SAVES = {
    "crm.Tag": "a label for customers: a name",
    "tickets.AssignmentRule": "which group takes a channel's or category's inquiries",
    "tickets.AgentAvailability": "a manager sets an agent's limit (presence: agent_presence_set)",
    "tickets.CsatSetting": "which channels ask for satisfaction: one switch a channel",
    "tickets.Category": "a category's name, code and order",
    "tickets.SlaPolicy": "targets read when an inquiry arrives; never deleted",
    "tickets.BusinessCalendar": "opening hours (checked by the form) and closures, inline",
    "tickets.AutoAcknowledgement": "a channel's text (variables checked by the form)",
    "crisis.Playbook": "a kind's steps, inline; an incident keeps the copy it opened with",
}
APP_LABELS = frozenset(APPS)


class _Superuser:
    """Whoever may do everything the admin allows at all."""

    is_active = is_staff = is_superuser = is_authenticated = True
    pk = 0

    def has_perm(self, *_args, **_kwargs) -> bool:
        return True

    def has_module_perms(self, *_args) -> bool:
        return True


def test_admins_saving_with_djangos_own_save_model_are_the_configuration_rows_listed():
    from django.contrib import admin
    from django.contrib.admin import ModelAdmin
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = _Superuser()
    default_saves = set()
    for model, model_admin in admin.site._registry.items():
        kind = type(model_admin)
        if model._meta.app_label not in APP_LABELS or kind.save_model is not ModelAdmin.save_model:
            continue
        adds = model_admin.has_add_permission(request) and kind.add_view is ModelAdmin.add_view
        changes = model_admin.has_change_permission(request) and set(
            model_admin.get_fields(request)
        ) - set(model_admin.get_readonly_fields(request))
        if adds or changes:
            default_saves.add(model._meta.label)
    assert default_saves == set(DJANGO_SAVES)
