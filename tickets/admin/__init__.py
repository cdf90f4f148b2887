# The tickets admin, one module per area; importing a module registers its ModelAdmins.
from tickets.admin import assignment_admin, inquiries, records, settings_admin  # noqa: F401
