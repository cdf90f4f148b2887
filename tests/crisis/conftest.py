from tests.outreach.conftest import smtp  # noqa: F401  (the in-process SMTP server)
