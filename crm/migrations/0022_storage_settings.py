"""Storage settings of the large crm tables, kept as a migration of its own
after the squash (0001_squashed_0021): every install needs them, and setting
them again on a database that came through the history changes nothing."""

from django.db import migrations

# The nightly lifecycle_recompute reads every customer's metrics from the
# covering index crm_customer_lifecycle and every counted order from
# crm_order_customer, both by index-only scans: a row on a page the
# visibility map does not mark all-visible costs a heap visit. PostgreSQL's
# default autovacuum waits for 20 % of a table to change (200,000 customers
# of a million, 600,000 new orders of three million); these settings vacuum
# after about a day of traffic instead, so the map stays current.
AUTOVACUUM = {
    "crm_customer": "autovacuum_vacuum_scale_factor = 0.005, "
    "autovacuum_analyze_scale_factor = 0.02",
    "crm_order": "autovacuum_vacuum_insert_scale_factor = 0.005, "
    "autovacuum_vacuum_scale_factor = 0.01",
}


def autovacuum_set(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, options in AUTOVACUUM.items():
        schema_editor.execute(f"ALTER TABLE {table} SET ({options})")


def autovacuum_reset(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, options in AUTOVACUUM.items():
        names = ", ".join(option.split("=")[0].strip() for option in options.split(","))
        schema_editor.execute(f"ALTER TABLE {table} RESET ({names})")


class Migration(migrations.Migration):
    dependencies = [("crm", "0016_retention_roles")]

    operations = [migrations.RunPython(autovacuum_set, autovacuum_reset, elidable=False)]
