"""Reads for outreach that filter or join: who may receive a message
(eligibility, recipients), a send's progress, a segment's count and
preview. One module per area; import from here (modules of this package
import each other by their own names, never from here)."""

from outreach.selectors.dm import dm_labels
from outreach.selectors.journeys import (
    JourneyFunnel,
    StepFunnel,
    journey_funnel,
    journey_rows_withdrawn,
    journey_sends_due,
    order_id_of,
)
from outreach.selectors.progress import SendProgress, send_progress, sends_progress
from outreach.selectors.recipients import (
    eligibility_reason,
    recipient_address,
    recipients_checked,
    test_recipients,
)
from outreach.selectors.results import (
    CampaignResults,
    GroupResult,
    results_for_campaign,
    results_for_journey_steps,
)
from outreach.selectors.segments import (
    SegmentPreview,
    segment_count,
    segment_counts,
    segment_customers,
    segment_preview,
)

__all__ = [
    "CampaignResults",
    "GroupResult",
    "JourneyFunnel",
    "SegmentPreview",
    "SendProgress",
    "StepFunnel",
    "dm_labels",
    "eligibility_reason",
    "journey_funnel",
    "journey_rows_withdrawn",
    "journey_sends_due",
    "order_id_of",
    "recipient_address",
    "recipients_checked",
    "results_for_campaign",
    "results_for_journey_steps",
    "segment_count",
    "segment_counts",
    "segment_customers",
    "segment_preview",
    "send_progress",
    "sends_progress",
    "test_recipients",
]
