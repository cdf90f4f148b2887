from django.db import migrations

from core.roles import MANAGER, role_permissions_grant


def grant(apps, schema_editor):
    """Managers read what each run of the retention job did."""
    role_permissions_grant(apps, "crm", {MANAGER: ["view_retentionevent"]})


class Migration(migrations.Migration):
    dependencies = [("crm", "0015_retention")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
