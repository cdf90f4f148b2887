# The monthly report's hand-computed month, for its tests and its browser test.
from tests.reports.monthly_fixture import clock, november  # noqa: F401
