from django.db import migrations

from core.roles import AGENT, MANAGER, MARKETER, role_permissions_grant

MARKETING = [
    "view_messagetemplate",
    "add_messagetemplate",
    "change_messagetemplate",
    "view_segment",
    "add_segment",
    "change_segment",
    "delete_segment",
    "view_campaign",
    "add_campaign",
    "change_campaign",
    "view_send",
    "view_delivery",
]


def grant(apps, schema_editor):
    role_permissions_grant(
        apps,
        "outreach",
        {
            AGENT: ["view_messagetemplate", "view_delivery", "view_send", "view_linewebhookevent"],
            MARKETER: MARKETING,
            MANAGER: [*MARKETING, "delete_messagetemplate", "view_linewebhookevent"],
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("outreach", "0013_journeys_models"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
