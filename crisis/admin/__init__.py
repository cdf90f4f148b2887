# One module per screen group; importing them registers their ModelAdmins.
from crisis.admin import incidents, playbooks, suspensions  # noqa: F401
