from django.db import migrations

from core.roles import AGENT, MANAGER, MARKETER, role_permissions_grant

VIEW_ALL = [
    "view_customer",
    "view_channelidentity",
    "view_order",
    "view_orderline",
    "view_consentevent",
    "view_consentstate",
    "view_customerevent",
    "view_tag",
]


def grant(apps, schema_editor):
    role_permissions_grant(
        apps,
        "crm",
        {
            AGENT: [*VIEW_ALL, "add_customer", "change_customer", "add_tag"],
            MARKETER: [*VIEW_ALL, "add_tag", "change_tag"],
            MANAGER: [
                *VIEW_ALL,
                "add_customer",
                "change_customer",
                "add_tag",
                "change_tag",
                "delete_tag",
            ],
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0021_consent_sources_produced"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
