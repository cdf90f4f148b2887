import threading

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.db import insert_if_absent
from crm.models import Tag

pytestmark = pytest.mark.django_db


def test_insert_if_absent_inserts_and_sets_the_key_and_the_timestamps():
    tag = Tag(name="VIP")
    with CaptureQueriesContext(connection) as queries:
        assert insert_if_absent(tag, unique_fields=["name"]) is True
    assert len(queries) == 1 and "ON CONFLICT" in queries[0]["sql"]
    stored = Tag.objects.get(name="VIP")
    assert (stored.pk, stored.created_at) == (tag.pk, tag.created_at)
    assert not tag._state.adding


def test_an_existing_row_is_no_error_and_the_transaction_goes_on():
    first = Tag.objects.create(name="VIP")
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        twin = Tag(name="VIP")
        assert insert_if_absent(twin, unique_fields=["name"]) is False
        assert twin.pk is None and twin._state.adding
        Tag.objects.create(name="常連")  # still usable: nothing was aborted
    assert not any("SAVEPOINT" in q["sql"] for q in queries)
    assert list(Tag.objects.values_list("pk", flat=True).filter(name="VIP")) == [first.pk]
    assert Tag.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_racing_insert_waits_for_the_first_to_commit_then_finds_its_row():
    inserted = threading.Event()
    commit = threading.Event()
    outcome = {}

    def first():
        try:
            with transaction.atomic():
                outcome["first"] = insert_if_absent(Tag(name="VIP"), unique_fields=["name"])
                inserted.set()
                commit.wait(timeout=10)
        finally:
            connection.close()

    def second():
        try:
            inserted.wait(timeout=10)
            outcome["second"] = insert_if_absent(Tag(name="VIP"), unique_fields=["name"])
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    threads[1].join(timeout=0.5)
    assert threads[1].is_alive()  # waiting on the unique index, not failing
    commit.set()
    for thread in threads:
        thread.join(timeout=10)
    assert outcome == {"first": True, "second": False}
    assert Tag.objects.filter(name="VIP").count() == 1
