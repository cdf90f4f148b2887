from django.db import migrations

from core.roles import MANAGER, role_permissions_grant


def grant(apps, schema_editor):
    role_permissions_grant(
        apps, "core", {MANAGER: ["view_apikey", "add_apikey", "change_apikey"]}
    )


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
