"""Managers run the improvement cycle; agents and marketers read it."""

from django.db import migrations

from core.roles import AGENT, MANAGER, MARKETER, role_permissions_grant


def grant(apps, schema_editor):
    role_permissions_grant(
        apps,
        "reports",
        {
            AGENT: ["view_countermeasure"],
            MARKETER: ["view_countermeasure"],
            MANAGER: ["view_countermeasure", "add_countermeasure", "change_countermeasure"],
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
