"""The indexes of Inquiry.search_text and the inbox's order over every
status, built CONCURRENTLY (the inquiry table is large: a plain CREATE
INDEX would stop the inbox, the API and the worker while it builds); the
subject's and the messages' own search indexes (0021_search) are no longer
read and go."""

from django.db import migrations, models

from core.db import add_index_concurrently, postgres_indexes_operation

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


def old_indexes_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in OLD_PG_INDEXES:
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def old_indexes_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, definition in OLD_PG_INDEXES.items():
            schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {definition}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tickets", "0023_search_text"),
    ]

    operations = [
        add_index_concurrently(
            "inquiry",
            models.Index(
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
        postgres_indexes_operation(PG_INDEXES, concurrently=True),
        migrations.RunPython(old_indexes_drop, old_indexes_create, elidable=False),
    ]
