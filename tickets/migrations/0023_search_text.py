import unicodedata

from django.db import migrations, models

# The inbox's word search reads Inquiry.search_text (the subject and the
# customer's messages, folded: tickets.search.search_fold); its indexes
# come in 0024, built without locking the table.
# PostgreSQL: one UPDATE (lower(normalize(..., NFKC)) is search_fold).
BACKFILL_SQL = """
UPDATE tickets_inquiry i SET search_text = concat_ws(E'\\n', lower(normalize(i.subject, NFKC)), m.bodies)
FROM (
  SELECT inquiry_id, string_agg(lower(normalize(body_text, NFKC)), E'\\n' ORDER BY created_at, id)
    AS bodies
  FROM tickets_inquirymessage WHERE kind = 'inbound' GROUP BY inquiry_id
) m
WHERE m.inquiry_id = i.id
"""


def fold(text):
    return unicodedata.normalize("NFKC", text or "").lower()


def search_text_backfill(apps, schema_editor):
    """Every inquiry's search text from its subject and its customer's
    messages, as tickets.services.reading.search_text_with writes it."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKFILL_SQL)
        return
    Inquiry = apps.get_model("tickets", "Inquiry")
    InquiryMessage = apps.get_model("tickets", "InquiryMessage")
    bodies = {}
    inbound = InquiryMessage.objects.filter(kind="inbound").order_by("created_at", "id")
    for inquiry_id, body in inbound.values_list("inquiry_id", "body_text").iterator():
        bodies.setdefault(inquiry_id, []).append(fold(body))
    inquiries = list(Inquiry.objects.only("pk", "subject"))
    for inquiry in inquiries:
        parts = [fold(inquiry.subject), *bodies.get(inquiry.pk, [])]
        inquiry.search_text = "\n".join(filter(None, parts))
    Inquiry.objects.bulk_update(inquiries, ["search_text"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0022_assigncsat"),
        ("tickets", "0002_seed"),  # the app's last kept migration after the squash
    ]

    operations = [
        migrations.AddField(
            model_name="inquiry",
            name="search_text",
            field=models.TextField(
                blank=True, default="", editable=False, verbose_name="search text"
            ),
        ),
        migrations.RunPython(search_text_backfill, migrations.RunPython.noop, elidable=False),
    ]
