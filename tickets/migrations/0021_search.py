from django.db import migrations

from core.db import postgres_indexes_operation

# PostgreSQL's own search indexes for the inbox (crm 0017_search creates the
# pg_trgm extension; SQLite, for `make run`, searches without them): the
# reference and the order number the customer typed reversed, so that their
# last digits (「00032」) are a prefix a B-tree finds, and trigrams for words
# of three characters or more in the subject and the customer's messages,
# character pairs for words of two.
PG_INDEXES = {
    "tickets_inquiry_reference_suffix": "tickets_inquiry (reverse(reference) text_pattern_ops)",
    "tickets_inquiry_order_given_suffix": (
        "tickets_inquiry (reverse(order_number_given) text_pattern_ops)"
    ),
    "tickets_inquiry_subject_trgm": "tickets_inquiry USING gin (subject gin_trgm_ops)",
    "tickets_message_inbound_trgm": (
        "tickets_inquirymessage USING gin (body_text gin_trgm_ops) WHERE kind = 'inbound'"
    ),
    # Two-character words (返品, 交換), which trigrams cannot narrow: the
    # text's character pairs as the lexemes of a tsvector (core.lookups,
    # search_contains).
    "tickets_inquiry_subject_bigrams": "tickets_inquiry USING gin (search_bigrams(subject))",
    "tickets_message_inbound_bigrams": (
        "tickets_inquirymessage USING gin (search_bigrams(body_text)) WHERE kind = 'inbound'"
    ),
}

# The character pairs of a text, lower-cased, as a tsvector's lexemes
# (array_to_tsvector keeps each once): 「返品です」 gives '返品' '品で' 'です'.
BIGRAMS_FUNCTION = """
CREATE OR REPLACE FUNCTION search_bigrams(value text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT array_to_tsvector(ARRAY(
    SELECT substr(lower(value), i, 2) FROM generate_series(1, length(value) - 1) AS i
  ))
$$
"""


def bigrams_function_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BIGRAMS_FUNCTION)


def bigrams_function_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS search_bigrams(text)")


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0020_inbox_excerpt_read_state"),
        ("crm", "0018_search"),
    ]

    operations = [
        migrations.RunPython(bigrams_function_create, bigrams_function_drop, elidable=False),
        postgres_indexes_operation(PG_INDEXES),
    ]
