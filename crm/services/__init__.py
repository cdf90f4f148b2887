"""Every write to customers, identities, orders and consent goes through
here; callers import from `crm.services`."""

from crm.services.consent import (
    NewConsent,
    consent_record,
    consent_state_rebuild,
    consent_withdraw,
    consents_record_bulk,
)
from crm.services.customer_edits import (
    customer_claimant_clear,
    customer_claimant_set,
    customer_test_recipient_set,
    customer_update,
)
from crm.services.customers import (
    PROFILE_FIELDS,
    Resolution,
    UpsertOutcome,
    customer_follow_merges,
    customer_resolve,
    customer_tags_add,
    customer_upsert,
    customer_upsert_outcome,
)
from crm.services.customers_bulk import NewCustomer, customers_create_bulk, customers_resolve_bulk
from crm.services.lifecycle import lifecycle_recompute
from crm.services.merge import customer_merge
from crm.services.orders import (
    NewOrder,
    OrderLineData,
    order_clean,
    order_upsert,
    order_upsert_outcome,
    orders_clean_bulk,
    orders_create_bulk,
)
from crm.services.privacy import privacy_customer_ids
from crm.services.privacy_erase import customer_erase
from crm.services.privacy_export import customer_export
from crm.services.retention import consent_ledger_prune, retention_anonymize, retention_run
from crm.services.suppression import bounce_record, suppression_add, suppression_lift

__all__ = [
    "PROFILE_FIELDS",
    "NewConsent",
    "NewCustomer",
    "NewOrder",
    "OrderLineData",
    "Resolution",
    "UpsertOutcome",
    "bounce_record",
    "consent_ledger_prune",
    "consent_record",
    "consent_state_rebuild",
    "consent_withdraw",
    "consents_record_bulk",
    "customer_claimant_clear",
    "customer_claimant_set",
    "customer_erase",
    "customer_export",
    "customer_follow_merges",
    "customer_merge",
    "customer_resolve",
    "customer_tags_add",
    "customer_test_recipient_set",
    "customer_update",
    "customer_upsert",
    "customer_upsert_outcome",
    "customers_create_bulk",
    "customers_resolve_bulk",
    "lifecycle_recompute",
    "order_clean",
    "order_upsert",
    "order_upsert_outcome",
    "orders_clean_bulk",
    "orders_create_bulk",
    "privacy_customer_ids",
    "retention_anonymize",
    "retention_run",
    "suppression_add",
    "suppression_lift",
]
