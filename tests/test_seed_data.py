"""Seed rows (roles, categories, SLA policies) survive a transactional test's flush
(tests/conftest.py restores them); the order of these two tests matters."""

import pytest
from django.contrib.auth.models import Group

from tickets.models import Category


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_runs_first():
    assert Group.objects.filter(name="manager").exists()


@pytest.mark.django_db
def test_seeds_are_back_after_the_flush():
    assert Group.objects.get(name="manager").permissions.exists()
    assert Category.objects.filter(code="delivery_delay").exists()
