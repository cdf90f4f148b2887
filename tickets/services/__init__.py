"""Writes for inquiries. One module per area; import from here."""

from tickets.services.approval_rules import reply_approval_rule_delete, reply_approval_rule_save
from tickets.services.assignment import agent_presence_set, inquiry_auto_assign
from tickets.services.calls import inquiry_call_create, inquiry_call_log
from tickets.services.contact_form import inquiry_submit
from tickets.services.csat import (
    csat_answer,
    csat_comment,
    csat_line_postback,
    csat_offer,
    csat_token_read,
)
from tickets.services.inquiries import (
    event_add,
    inquiries_bulk_assign,
    inquiries_bulk_close,
    inquiry_assign,
    inquiry_category_set,
    inquiry_note_add,
    inquiry_priority_set,
    inquiry_solution_proposed,
    inquiry_status_set,
    reference_next,
    staff_notifications_mark_read,
)
from tickets.services.intake import (
    AttachmentData,
    InboundMessage,
    inquiry_create,
    inquiry_inbound_add,
)
from tickets.services.merge import (
    inquiries_merge,
    inquiry_split,
    merge_refusal,
    merge_survivor_default,
)
from tickets.services.notices import staff_notifications_email
from tickets.services.reading import inquiry_read_mark
from tickets.services.replies import (
    ReplyCollision,
    inquiry_auto_acknowledge,
    inquiry_reply,
    inquiry_reply_approve,
    inquiry_reply_return,
    reply_channel_for,
    reply_channels_for,
    reply_needs_approval,
)
from tickets.services.reply_outcomes import reply_outcomes_settle
from tickets.services.sla import (
    calendar_for,
    policy_clock_minutes,
    sla_policy_for,
    sla_state_live,
    sla_state_live_q,
    sla_times,
    sla_watch,
)
from tickets.services.triage import triage_due, triage_late_q, triage_watch

__all__ = [
    "AttachmentData",
    "InboundMessage",
    "ReplyCollision",
    "agent_presence_set",
    "calendar_for",
    "csat_answer",
    "csat_comment",
    "csat_line_postback",
    "csat_offer",
    "csat_token_read",
    "event_add",
    "inquiries_bulk_assign",
    "inquiries_bulk_close",
    "inquiries_merge",
    "inquiry_assign",
    "inquiry_auto_acknowledge",
    "inquiry_auto_assign",
    "inquiry_call_create",
    "inquiry_call_log",
    "inquiry_category_set",
    "inquiry_create",
    "inquiry_inbound_add",
    "inquiry_note_add",
    "inquiry_priority_set",
    "inquiry_read_mark",
    "inquiry_reply",
    "inquiry_reply_approve",
    "inquiry_reply_return",
    "inquiry_solution_proposed",
    "inquiry_split",
    "inquiry_status_set",
    "inquiry_submit",
    "merge_refusal",
    "merge_survivor_default",
    "policy_clock_minutes",
    "reference_next",
    "reply_approval_rule_delete",
    "reply_approval_rule_save",
    "reply_channel_for",
    "reply_channels_for",
    "reply_needs_approval",
    "reply_outcomes_settle",
    "sla_policy_for",
    "sla_state_live",
    "sla_state_live_q",
    "sla_times",
    "sla_watch",
    "staff_notifications_email",
    "staff_notifications_mark_read",
    "triage_due",
    "triage_late_q",
    "triage_watch",
]
