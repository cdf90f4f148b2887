from django.db import migrations, models

# The autovacuum settings of crm_customer and crm_order this migration set
# live in 0022_storage_settings, kept after the squash.


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0006_order_total_validator"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(
                fields=["id"],
                include=(
                    "is_claimant",
                    "first_order_at",
                    "last_order_at",
                    "order_count",
                    "total_spent",
                    "lifecycle_segment",
                ),
                name="crm_customer_lifecycle",
            ),
        ),
    ]
