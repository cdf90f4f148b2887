# The in-process SMTP server, and the real worker with its servers (a
# qcluster for the test database: tests/outreach/test_worker_faults.py).
from tests.outreach.conftest import smtp  # noqa: F401
from tests.outreach.test_worker_faults import cluster, line, smtp_server  # noqa: F401
