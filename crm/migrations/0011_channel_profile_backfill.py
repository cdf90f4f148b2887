"""Backfill the channel profiles (SPEC rule 17), and forget the stored
answers of customer upserts.

Before 0009 a customer held one merged profile and nobody recorded which
channel gave which value. Each live customer's current profile is
attributed to one channel: the channel of its first identity, or, without
identities, of its first order. For a customer known on one channel that is
exactly right; for a customer known on several it is conservative: the
other channels' API keys see no personal data of that customer until their
channel sends it again (their next upsert writes their own profile).

The idempotency records of customer upserts held answers composed from the
merged profile (possibly another channel's data): they are deleted. A
retried upsert then runs again, which leaves the same state (an upsert by
identity is idempotent by itself).
"""

from django.db import migrations

PROFILE_COLUMNS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "email",
    "email_normalized",
    "phone",
    "phone_normalized",
    "postal_code",
    "prefecture",
    "address",
    "birthday",
)


def backfill(apps, schema_editor):
    customer = apps.get_model("crm", "Customer")._meta.db_table
    profile = apps.get_model("crm", "CustomerChannelProfile")._meta.db_table
    identity = apps.get_model("crm", "ChannelIdentity")._meta.db_table
    order = apps.get_model("crm", "Order")._meta.db_table
    columns = ", ".join(PROFILE_COLUMNS)
    selected = ", ".join(f"c.{name}" for name in PROFILE_COLUMNS)
    # One INSERT ... SELECT (PostgreSQL and SQLite alike): no row in Python.
    schema_editor.execute(
        f"INSERT INTO {profile} (customer_id, channel, {columns}, created_at, updated_at)"
        f" SELECT c.id, COALESCE("
        f"(SELECT i.channel FROM {identity} i WHERE i.customer_id = c.id ORDER BY i.id LIMIT 1),"
        f" (SELECT o.channel FROM {order} o WHERE o.customer_id = c.id ORDER BY o.id LIMIT 1)"
        f"), {selected}, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP"
        f" FROM {customer} c"
        " WHERE c.merged_into_id IS NULL AND c.anonymized_at IS NULL"
        f" AND (EXISTS (SELECT 1 FROM {identity} i WHERE i.customer_id = c.id)"
        f" OR EXISTS (SELECT 1 FROM {order} o WHERE o.customer_id = c.id))"
    )
    record = apps.get_model("core", "IdempotencyRecord")
    record.objects.filter(path__startswith="/api/v1/customers").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0010_customer_channel_profile"),
        ("core", "0004_labels"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
