"""What each role may do with incidents, suspensions and playbooks.

Everyone sees incidents and suspensions (the banner points every agent to
them); agents tick the checklist steps that are theirs; managers run the
rest. Sending (broadcasts, notices) is decided in the services, for
managers only."""

from django.db import migrations

from core.roles import AGENT, MANAGER, MARKETER, role_permissions_grant

VIEW = [
    "view_incident",
    "view_incidentevent",
    "view_checklistitem",
    "view_incidentsend",
    "view_playbook",
    "view_playbookstep",
    "view_suspension",
    "view_suspensionnotice",
    "view_suspensionevent",
]
MANAGE = [
    "add_incident",
    "change_incident",
    "add_incidentevent",
    "change_checklistitem",
    "add_incidentsend",
    "add_playbook",
    "change_playbook",
    "delete_playbook",
    "add_playbookstep",
    "change_playbookstep",
    "delete_playbookstep",
    "add_suspension",
    "change_suspension",
    "add_suspensionnotice",
]


def grant(apps, schema_editor):
    role_permissions_grant(
        apps,
        "crisis",
        {
            AGENT: [*VIEW, "change_checklistitem", "add_incidentevent"],
            MARKETER: VIEW,
            MANAGER: [*VIEW, *MANAGE],
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("crisis", "0006_suspension_event_kinds_produced"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
