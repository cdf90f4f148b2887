import pytest
from django.contrib.auth.models import Group

from core.roles import AGENT

# The real SMTP server (aiosmtpd) fixture, shared with the outreach tests.
from tests.outreach.conftest import smtp  # noqa: F401


@pytest.fixture(params=["one statement", "portable"])
def watch_path(request, monkeypatch):
    """Run a watch test both ways: PostgreSQL's one statement a batch, and
    the ORM steps SQLite (`make run`) uses."""
    if request.param == "portable":
        monkeypatch.setattr("tickets.services.sla.ONE_STATEMENT_VENDORS", ())
    return request.param


@pytest.fixture
def misaki(django_user_model):
    """A colleague with a full name (佐藤 美咲), as the timeline names her."""
    user = django_user_model.objects.create_user(
        "misaki", is_staff=True, last_name="佐藤", first_name="美咲"
    )
    user.groups.add(Group.objects.get(name=AGENT))
    return user
