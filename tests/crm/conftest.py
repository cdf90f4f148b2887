"""Fixtures shared by the crm tests."""

import pytest
from django.contrib.auth.models import Group

from core.roles import MARKETER


@pytest.fixture
def import_media(settings, tmp_path):
    """Uploaded import files go to a directory of the test's own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def import_marketer(django_user_model):
    user = django_user_model.objects.create_user("marketer", is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETER))
    return user
