"""Templates, segments, campaigns and the delivery ledger.

Every outbound message of the product is a Delivery row of a Send: a
campaign, a test send, an inquiry reply, an emergency broadcast or a
journey step. The ledger, not the queue, decides what has been sent.
One module per area; import from here.
"""

from outreach.models.campaigns import (
    CAMPAIGN_EDITABLE,
    Campaign,
    CampaignEvent,
    CampaignEventKind,
    CampaignStatus,
    Send,
    SendKind,
    SendStatus,
)
from outreach.models.deliveries import (
    Delivery,
    DeliveryStatus,
    LineWebhookEvent,
    MulticastRequest,
    RateBucket,
    SkipReason,
    new_retry_key,
)
from outreach.models.journeys import (
    ORDER_TRIGGERS,
    Journey,
    JourneyEvent,
    JourneyEventKind,
    JourneyStep,
    JourneyTrigger,
    StepCondition,
)
from outreach.models.templates import (
    DeliveryChannel,
    MessageChannel,
    MessageTemplate,
    Purpose,
    Segment,
    SegmentKind,
)

__all__ = [
    "CAMPAIGN_EDITABLE",
    "ORDER_TRIGGERS",
    "Campaign",
    "CampaignEvent",
    "CampaignEventKind",
    "CampaignStatus",
    "Delivery",
    "DeliveryChannel",
    "DeliveryStatus",
    "Journey",
    "JourneyEvent",
    "JourneyEventKind",
    "JourneyStep",
    "JourneyTrigger",
    "LineWebhookEvent",
    "MessageChannel",
    "MessageTemplate",
    "MulticastRequest",
    "Purpose",
    "RateBucket",
    "Segment",
    "SegmentKind",
    "Send",
    "SendKind",
    "SendStatus",
    "SkipReason",
    "StepCondition",
    "new_retry_key",
]
