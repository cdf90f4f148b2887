from django.db import migrations

from core.db import postgres_indexes_operation

# PostgreSQL's own search indexes for the inbox (crm 0017_search creates the
# pg_trgm extension; SQLite, for `make run`, searches without them): the
# reference and the order number the customer typed reversed, so that their
# last digits (「00032」) are a prefix a B-tree finds, and trigrams for words
# of three characters or more in the subject and the customer's messages.
PG_INDEXES = {
    "tickets_inquiry_reference_suffix": "tickets_inquiry (reverse(reference) text_pattern_ops)",
    "tickets_inquiry_order_given_suffix": (
        "tickets_inquiry (reverse(order_number_given) text_pattern_ops)"
    ),
    "tickets_inquiry_subject_trgm": "tickets_inquiry USING gin (subject gin_trgm_ops)",
    "tickets_message_inbound_trgm": (
        "tickets_inquirymessage USING gin (body_text gin_trgm_ops) WHERE kind = 'inbound'"
    ),
}


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0016_message_held_index"),
        ("crm", "0017_search"),
    ]

    operations = [
        postgres_indexes_operation(PG_INDEXES),
    ]
