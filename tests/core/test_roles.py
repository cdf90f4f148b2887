"""Who counts as a manager: for permissions, superusers too; for being
told of held replies and breaches, the manager group only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from core.roles import MANAGER, is_manager, managers

pytestmark = pytest.mark.django_db


def test_superusers_act_as_managers_but_only_the_group_is_notified(
    owner, colleague, outsider, django_user_model
):
    root = django_user_model.objects.create_superuser("root")
    retired = django_user_model.objects.create_user("retired", is_staff=True, is_active=False)
    retired.groups.add(Group.objects.get(name=MANAGER))

    assert [is_manager(user) for user in (owner, root, colleague, outsider, None)] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert list(managers()) == [owner]


def test_a_user_is_asked_once_whether_they_are_a_manager(owner, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert is_manager(owner) and is_manager(owner)
