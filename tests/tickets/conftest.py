import pytest

# The real SMTP server (aiosmtpd) fixture, shared with the outreach tests.
from tests.outreach.conftest import smtp  # noqa: F401


@pytest.fixture(params=["one statement", "portable"])
def watch_path(request, monkeypatch):
    """Run a watch test both ways: PostgreSQL's one statement a batch, and
    the ORM steps SQLite (`make run`) uses."""
    if request.param == "portable":
        monkeypatch.setattr("tickets.services.sla.ONE_STATEMENT_VENDORS", ())
    return request.param
