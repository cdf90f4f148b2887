"""Customer 360 and the read-only views of orders and the consent ledger.

Display only: every write (profile edit, claimant flag, merge, lifecycle
recompute, adding a customer, consent given to staff) calls `crm.services`.
Orders come from the store sites through the API and consent events are an
append-only ledger, so both are read-only here; staff add to the ledger
from the customer's page ("Record consent"), through `consent_record`.

A package: importing it registers every CRM admin page (Django's admin
autodiscovery imports `crm.admin`).
"""

import crm.admin_imports  # noqa: F401  (the CSV import pages register themselves)
from crm import suppression_admin  # noqa: F401  (registers Suppression)
from crm.admin import customers, records  # noqa: F401  (register Customer, Order, consent...)
from crm.admin.display import yen

__all__ = ["yen"]
