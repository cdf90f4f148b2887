import unicodedata

from django.db import migrations, models

from core.db import postgres_indexes_operation

# The inbox's word search reads Inquiry.search_text (the subject and the
# customer's messages, folded: tickets.search.search_fold), so that its
# indexes are on the inquiry and PostgreSQL can combine them with the
# inbox's order and filters; the subject's and the messages' own indexes
# (0021_search) are no longer read.
PG_INDEXES = {
    "tickets_inquiry_search_trgm": "tickets_inquiry USING gin (search_text gin_trgm_ops)",
    "tickets_inquiry_search_bigrams": "tickets_inquiry USING gin (search_bigrams(search_text))",
}
OLD_PG_INDEXES = {
    "tickets_inquiry_subject_trgm": "tickets_inquiry USING gin (subject gin_trgm_ops)",
    "tickets_message_inbound_trgm": (
        "tickets_inquirymessage USING gin (body_text gin_trgm_ops) WHERE kind = 'inbound'"
    ),
    "tickets_inquiry_subject_bigrams": "tickets_inquiry USING gin (search_bigrams(subject))",
    "tickets_message_inbound_bigrams": (
        "tickets_inquirymessage USING gin (search_bigrams(body_text)) WHERE kind = 'inbound'"
    ),
}

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


def old_indexes_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in OLD_PG_INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


def old_indexes_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, definition in OLD_PG_INDEXES.items():
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}")


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0022_assigncsat"),
    ]

    operations = [
        migrations.AddField(
            model_name="inquiry",
            name="search_text",
            field=models.TextField(
                blank=True, default="", editable=False, verbose_name="search text"
            ),
        ),
        migrations.AddIndex(
            model_name="inquiry",
            index=models.Index(
                models.OrderBy(
                    models.Case(
                        models.When(
                            first_replied_at__isnull=True, then=models.F("first_reply_due_at")
                        )
                    )
                ),
                models.OrderBy(models.F("last_inbound_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                name="tickets_inbox_deadline_all",
            ),
        ),
        migrations.RunPython(search_text_backfill, migrations.RunPython.noop, elidable=False),
        postgres_indexes_operation(PG_INDEXES),
        migrations.RunPython(old_indexes_drop, old_indexes_create, elidable=False),
    ]
