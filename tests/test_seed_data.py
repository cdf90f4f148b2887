"""Seed rows (roles, categories, SLA policies) survive a transactional test's flush
(tests/conftest.py restores them). The module starts with that flush itself, so
each test here proves the restore whatever ran before it and in any order."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from tickets.models import Category


@pytest.fixture(scope="module", autouse=True)
def _flushed_like_after_a_transactional_test(django_db_setup, django_db_blocker):
    """Empty every table the way a `transaction=True` test ends, before this
    module's first test; the tests' own setup must put the seed rows back."""
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)
        assert not Group.objects.filter(name="manager").exists()


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_finds_the_seed_rows_after_a_flush():
    assert Group.objects.filter(name="manager").exists()


@pytest.mark.django_db
def test_seeds_are_back_after_the_flush():
    assert Group.objects.get(name="manager").permissions.exists()
    assert Category.objects.filter(code="delivery_delay").exists()
