# The outreach admin, one module per area; importing a module registers its ModelAdmins.
from outreach.admin import campaigns, deliveries, journeys, segments, templates  # noqa: F401
