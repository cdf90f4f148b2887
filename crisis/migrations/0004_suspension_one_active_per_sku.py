"""One suspension of a SKU at a time (a partial unique index over the
suspensions not lifted): a double submit of the form never records a
second one, nor tells the customers twice."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("crisis", "0001_initial")]

    operations = [
        migrations.AddConstraint(
            model_name="suspension",
            constraint=models.UniqueConstraint(
                condition=models.Q(("lifted_at__isnull", True)),
                fields=("sku",),
                name="crisis_suspension_one_active_per_sku",
            ),
        ),
    ]
