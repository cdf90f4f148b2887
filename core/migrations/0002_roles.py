from django.db import migrations

from core.roles import MANAGER, role_permissions_grant


def grant(apps, schema_editor):
    role_permissions_grant(
        apps, "core", {MANAGER: ["view_apikey", "add_apikey", "change_apikey"]}
    )


def grant_audit_log(apps, schema_editor):
    # Managers read the audit log; nobody may add, change or delete a row.
    role_permissions_grant(apps, "core", {MANAGER: ["view_auditentry"]})


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0009_import_audit_action"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop), migrations.RunPython(grant_audit_log, migrations.RunPython.noop)]
