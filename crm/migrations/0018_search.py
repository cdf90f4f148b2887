from django.db import migrations, models

from core.db import postgres_indexes_operation
from crm.normalize import name_search_key

# PostgreSQL's own search indexes (SQLite, for `make run`, searches the same
# columns without them): trigrams for three characters or more inside a
# name or a phone number, and the order number reversed, so that its last
# digits are a prefix a B-tree finds.
PG_INDEXES = {
    "crm_customer_search_name_trgm": "crm_customer USING gin (search_name gin_trgm_ops)",
    "crm_customer_search_kana_trgm": "crm_customer USING gin (search_kana gin_trgm_ops)",
    "crm_customer_phone_trgm": "crm_customer USING gin (phone_normalized gin_trgm_ops)",
    "crm_order_number_suffix": "crm_order (reverse(order_number) text_pattern_ops)",
}


def search_names_fill(apps, schema_editor):
    """The search columns of the customers already there."""
    customer_model = apps.get_model("crm", "Customer")
    batch = []
    rows = customer_model.objects.only(
        "pk", "family_name", "given_name", "family_name_kana", "given_name_kana", "nickname"
    )
    for customer in rows.iterator(chunk_size=2000):
        customer.search_name = name_search_key(
            customer.family_name, customer.given_name
        ) or name_search_key(customer.nickname)
        customer.search_kana = name_search_key(customer.family_name_kana, customer.given_name_kana)
        if customer.search_name or customer.search_kana:
            batch.append(customer)
        if len(batch) >= 2000:
            customer_model.objects.bulk_update(batch, ["search_name", "search_kana"])
            batch = []
    if batch:
        customer_model.objects.bulk_update(batch, ["search_name", "search_kana"])


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0017_linecall_line_profiles"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="search_kana",
            field=models.CharField(blank=True, editable=False, max_length=200),
        ),
        migrations.AddField(
            model_name="customer",
            name="search_name",
            field=models.CharField(blank=True, editable=False, max_length=200),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(
                fields=["search_name"],
                name="crm_customer_search_name",
                opclasses=["varchar_pattern_ops"],
            ),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(
                fields=["search_kana"],
                name="crm_customer_search_kana",
                opclasses=["varchar_pattern_ops"],
            ),
        ),
        migrations.RunPython(search_names_fill, migrations.RunPython.noop, elidable=True),
        postgres_indexes_operation(PG_INDEXES, extensions=["pg_trgm"]),
    ]
