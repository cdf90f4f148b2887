"""Customers, their channel identities, orders, tags and the consent ledger.

A package: one module per area; every name is re-exported here, so
`from crm.models import X` works for all of them."""

from crm.models.consent import (
    STORE_SITE_CONSENT_SOURCES,
    ConsentAction,
    ConsentChannel,
    ConsentEvent,
    ConsentSource,
    ConsentState,
)
from crm.models.customers import Customer, LifecycleSegment, PersonalData, Tag, address_indexes
from crm.models.events import CustomerEvent, CustomerEventKind, RetentionEvent, RetentionEventKind
from crm.models.identities import ChannelIdentity, CustomerChannelProfile
from crm.models.import_jobs import (
    ImportJob,
    ImportPreset,
    ImportRowError,
    ImportStatus,
    import_file_path,
)
from crm.models.orders import (
    NON_COUNTING_ORDER_STATUSES,
    UNSHIPPED_ORDER_STATUSES,
    Order,
    OrderLine,
    OrderStatus,
    order_dates_errors,
)
from crm.models.prefectures import Prefecture
from crm.models.suppression import BounceKind, MailBounce, Suppression, SuppressionReason

__all__ = [
    "NON_COUNTING_ORDER_STATUSES",
    "STORE_SITE_CONSENT_SOURCES",
    "UNSHIPPED_ORDER_STATUSES",
    "BounceKind",
    "ChannelIdentity",
    "ConsentAction",
    "ConsentChannel",
    "ConsentEvent",
    "ConsentSource",
    "ConsentState",
    "Customer",
    "CustomerChannelProfile",
    "CustomerEvent",
    "CustomerEventKind",
    "ImportJob",
    "ImportPreset",
    "ImportRowError",
    "ImportStatus",
    "LifecycleSegment",
    "MailBounce",
    "Order",
    "OrderLine",
    "OrderStatus",
    "PersonalData",
    "Prefecture",
    "RetentionEvent",
    "RetentionEventKind",
    "Suppression",
    "SuppressionReason",
    "Tag",
    "address_indexes",
    "import_file_path",
    "order_dates_errors",
]
