from django.db import migrations

from core.roles import MANAGER, MARKETER, role_permissions_grant


def grant(apps, schema_editor):
    """Managers read what each run of the retention job did."""
    role_permissions_grant(apps, "crm", {MANAGER: ["view_retentionevent"]})


def grant_suppressions(apps, schema_editor):
    """Marketers and managers see suppressed addresses and lift them."""
    codenames = ["view_suppression", "change_suppression"]
    role_permissions_grant(apps, "crm", {MARKETER: codenames, MANAGER: codenames})


def grant_imports(apps, schema_editor):
    """Managers and marketers import customers and orders from CSV."""
    perms = ["add_importjob", "view_importjob"]
    role_permissions_grant(apps, "crm", {MANAGER: perms, MARKETER: perms})


class Migration(migrations.Migration):
    dependencies = [("crm", "0002_roles")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop), migrations.RunPython(grant_suppressions, migrations.RunPython.noop), migrations.RunPython(grant_imports, migrations.RunPython.noop)]
