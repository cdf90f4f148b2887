"""Inquiries, their messages and timeline, SLA policies and calendars,
categories, reply templates, staff notifications and inbound mail.

A package: one module per area; every name is re-exported here, so
`from tickets.models import X` works for all of them."""

from tickets.models.assignment import AgentAvailability, AssignmentMode, AssignmentRule
from tickets.models.configuration import (
    AutoAcknowledgement,
    Category,
    ReplyApprovalRule,
    ReplyTemplate,
)
from tickets.models.csat import CsatSetting, CsatSurvey
from tickets.models.events import InquiryEvent, InquiryEventKind
from tickets.models.inbound import InboundMail, InboundStatus, MailboxState
from tickets.models.inquiry import (
    OPEN_STATUS_VALUES,
    OPEN_STATUSES,
    Inquiry,
    InquiryReadState,
    InquiryStatus,
    ReferenceCounter,
)
from tickets.models.messages import (
    UNDELIVERED_STATUSES,
    Attachment,
    InquiryMessage,
    MessageKind,
    OutboundState,
    attachment_path,
)
from tickets.models.notifications import NotificationKind, StaffNotification
from tickets.models.sla import (
    BusinessCalendar,
    CalendarClosure,
    Priority,
    SlaClock,
    SlaPolicy,
    SlaState,
)

__all__ = [
    "OPEN_STATUSES",
    "OPEN_STATUS_VALUES",
    "UNDELIVERED_STATUSES",
    "AgentAvailability",
    "AssignmentMode",
    "AssignmentRule",
    "Attachment",
    "AutoAcknowledgement",
    "BusinessCalendar",
    "CalendarClosure",
    "Category",
    "CsatSetting",
    "CsatSurvey",
    "InboundMail",
    "InboundStatus",
    "Inquiry",
    "InquiryEvent",
    "InquiryEventKind",
    "InquiryMessage",
    "InquiryReadState",
    "InquiryStatus",
    "MailboxState",
    "MessageKind",
    "NotificationKind",
    "OutboundState",
    "Priority",
    "ReferenceCounter",
    "ReplyApprovalRule",
    "ReplyTemplate",
    "SlaClock",
    "SlaPolicy",
    "SlaState",
    "StaffNotification",
    "attachment_path",
]
