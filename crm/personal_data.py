"""The one inventory of the personal data the system holds about customers
(SPEC rule 17): every column of every model that holds a person's values,
and the files under MEDIA_ROOT, each with how its rows reach a customer.

A plain description, importable anywhere: export and erasure
(`crm.services.privacy`) read it, and the anonymisation of Amazon buyers
may read it too. `tests/crm/test_privacy.py` fails when a model of the
apps in CHECKED_APPS gains a text, char, JSON, binary or file column that
is neither in PERSONAL nor in NOT_PERSONAL, so that no new column slips
through unnoticed.

`reach` lists ORM lookup paths from a row to the id of its customer
(`inquiry__customer`); rows found another way say so in `how` and are
handled by name in the privacy service (LINE events by user id, inbound
mail by sender address, stored API answers by the customer they name,
Django's admin history by object).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# What a personal value becomes where the column must not be empty (a
# required subject, a claimant's reason).
ERASED_MARKER = "匿名"

# The apps whose models the inventory covers (the test walks them all).
# Third-party apps hold no customer data, save Django's admin history.
CHECKED_APPS = ("admin", "core", "crm", "tickets", "outreach", "crisis", "reports")

PERSON_COLUMNS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "email",
    "email_normalized",
    "phone",
    "phone_normalized",
    "postal_code",
    "prefecture",
    "address",
    "birthday",
)


@dataclass(frozen=True)
class PersonalTable:
    model: str  # "app_label.ModelName"
    columns: tuple[str, ...]  # personal values: exported, blanked on erasure
    reach: tuple[str, ...]  # ORM paths from a row to its customer's id
    how: str  # how a row reaches a customer, in words
    files: tuple[str, ...] = ()  # file fields: the files on disk are personal too
    # Only these rows of the model hold personal values (filter kwargs).
    where: Mapping[str, Any] = field(default_factory=dict)
    # What a column becomes on erasure where blank ("", {}, None) will not do.
    erased: Mapping[str, Any] = field(default_factory=dict)
    # Erasure deletes the rows instead of blanking them.
    delete_rows: bool = False


PERSONAL: tuple[PersonalTable, ...] = (
    PersonalTable(
        "crm.Customer",
        (*PERSON_COLUMNS, "notes", "claimant_reason", "nickname", "search_name", "search_kana"),
        reach=("id",),
        how="The person's merged profile (and the stubs merged into it, merged_into).",
        erased={"claimant_reason": ERASED_MARKER},  # where is_claimant (a check constraint)
    ),
    PersonalTable(
        "crm.CustomerChannelProfile",
        PERSON_COLUMNS,
        reach=("customer",),
        how="What each channel gave of the person's profile.",
    ),
    PersonalTable(
        "crm.ChannelIdentity",
        ("external_id", "display_name", "picture_url"),
        reach=("customer",),
        how="The person's id on a channel: member id, email, phone, LINE userId.",
        # Deleted, not blanked: a LINE identity is the address a LINE message
        # goes to, and no placeholder may stand in for one.
        delete_rows=True,
    ),
    PersonalTable(
        "crm.ConsentEvent",
        ("note",),
        reach=("customer",),
        how="The consent ledger: the fact, channel and time stay as proof; the note goes.",
    ),
    PersonalTable(
        "crm.CustomerEvent",
        ("data",),
        reach=("customer",),
        how="The customer's timeline: details quote ids and reasons.",
    ),
    PersonalTable(
        "tickets.Inquiry",
        ("subject", "order_number_given", "last_message_excerpt", "search_text"),
        reach=("customer",),
        how="The person's inquiries.",
        erased={"subject": ERASED_MARKER},
    ),
    PersonalTable(
        "tickets.InquiryMessage",
        (
            "subject",
            "body_text",
            "visible_text",
            "body_html",
            "message_id",
            "in_reply_to",
            "references",
            "line_reply_token",
            "review_note",
        ),
        reach=("inquiry__customer",),
        how="Messages of the person's inquiries, theirs and ours (replies quote them).",
    ),
    PersonalTable(
        "tickets.InquiryEvent",
        ("data",),
        reach=("inquiry__customer",),
        how="The timeline of the person's inquiries: a returned reply's note quotes it.",
    ),
    PersonalTable(
        "tickets.Attachment",
        ("filename", "file"),
        reach=("message__inquiry__customer",),
        how="Files the person sent (under MEDIA_ROOT/attachments/) and their names.",
        files=("file",),
    ),
    PersonalTable(
        "tickets.CsatSurvey",
        ("comment",),
        reach=("inquiry__customer",),
        how="The comment the person wrote with their satisfaction answer.",
    ),
    PersonalTable(
        "crm.Suppression",
        ("address", "detail", "note"),
        reach=(),
        how=(
            "An address no marketing goes to (a bounce, a complaint, staff), found by "
            "being one of the person's addresses. Deleted on erasure: the erased "
            "person has no address left to mail."
        ),
        delete_rows=True,
    ),
    PersonalTable(
        "crm.MailBounce",
        ("address", "diagnostic"),
        reach=(),
        how="Bounce and complaint reports about one of the person's addresses.",
        delete_rows=True,
    ),
    PersonalTable(
        "tickets.InboundMail",
        ("from_address", "subject", "reason", "raw", "message_id"),
        reach=("inquiry_message__inquiry__customer",),
        how=(
            "Every mail received: by the inquiry message it became, or, for mail that "
            "became none (failed, ignored), by its sender being one of the person's "
            "addresses."
        ),
    ),
    PersonalTable(
        "outreach.Delivery",
        ("address", "last_error"),
        reach=("customer",),
        how="The delivery ledger's rows to the person: the address snapshot, the error.",
    ),
    PersonalTable(
        "outreach.Send",
        ("content",),
        reach=("deliveries__customer",),
        how="A reply's send carries the reply's text; it has one delivery, to the person.",
        where={"kind": "reply"},
    ),
    PersonalTable(
        "outreach.LineWebhookEvent",
        ("user_id", "reply_token", "payload", "error"),
        reach=("customer",),
        how=(
            "LINE webhook events as received: by the customer they were applied to, or "
            "by their userId being one of the person's LINE identities."
        ),
    ),
    PersonalTable(
        "core.IdempotencyRecord",
        ("response_body",),
        reach=(),
        how=(
            "A POST's answer kept for its Idempotency-Key: by the customer it names "
            '("customer", or "id" for /customers/).'
        ),
    ),
    PersonalTable(
        "crm.ImportRowError",
        ("row", "reason"),
        reach=(),
        how=(
            "A CSV row an import refused, kept for its error CSV: by one of the person's "
            "email addresses in the row."
        ),
    ),
    PersonalTable(
        "admin.LogEntry",
        ("object_repr", "change_message"),
        reach=(),
        how="Django's admin history of the person's customer rows and inquiries.",
    ),
)

_ID = "an opaque identifier, not about the person"
_CODE = "a code or choice from a fixed list"
_SHOP = "the shop's own text, not about one person"
_STAFF = "about staff, not customers"

# Every other text, char, JSON, binary and file column, and why it holds no
# personal data of a customer.
NOT_PERSONAL: dict[str, dict[str, str]] = {
    "admin.LogEntry": {"object_id": _ID},
    "core.ApiKey": {
        "label": _SHOP,
        "prefix": _ID,
        "key_hash": _ID,
        "scope": _CODE,
        "channels": _CODE,
    },
    # A proxy of auth.User (the admin's 「スタッフ」 page): staff, not customers.
    "core.StaffMember": {
        name: "a staff member's account, not a customer's"
        for name in ("password", "username", "first_name", "last_name", "email")
    },
    # The audit trail is append-only (the database refuses UPDATE and
    # DELETE): it is the record of who reached whose data, kept as proof,
    # and holds ids, paths and what staff typed into a list's search, never
    # a customer's record.
    "core.AuditEntry": {
        "action": _CODE,
        "where": "an admin page or API address (ids at most)",
        "what": "a list's query as staff typed it, a count, an export's reason",
        "ip": _STAFF,
    },
    "core.IdempotencyRecord": {
        "key": "chosen by the store site per request",
        "method": _CODE,
        "path": "an API address (ids at most)",
        "request_hash": "a hash of the request",
    },
    "crm.Tag": {"name": _SHOP},
    "crm.Customer": {"lifecycle_segment": _CODE, "nickname_channel": _CODE},
    "crm.ChannelIdentity": {"channel": _CODE, "profile_error": "LINE's answer: a status"},
    "crm.CustomerChannelProfile": {"channel": _CODE},
    "crm.Order": {
        "channel": _CODE,
        "order_number": "the shop's order number: the order stub stays",
        "status": _CODE,
    },
    "crm.OrderLine": {"sku": _SHOP, "name": "the product's name"},
    "crm.ConsentEvent": {
        "channel": _CODE,
        "action": _CODE,
        "source": _CODE,
        "wording_version": "which of the shop's wordings was agreed to",
    },
    "crm.ConsentState": {"channel": _CODE},
    "crm.Suppression": {"channel": _CODE, "reason": _CODE},
    "crm.MailBounce": {"kind": _CODE, "status": "an SMTP status code (5.1.1)"},
    "crm.CustomerEvent": {"kind": _CODE},
    "crm.ImportJob": {
        "file": "the uploaded file's path; the file itself is deleted once the import has run",
        "file_name": "the name the uploader gave the file",
        "preset": _CODE,
        "status": _CODE,
        "encoding": _CODE,
        "header": "the file's column names",
        "counts": "a run's counts: no customer is named",
        "failure": "why the file could not be read: an encoding or a missing column",
    },
    "crm.RetentionEvent": {
        "kind": _CODE,
        "channel": _CODE,
        "data": "a run's counts and period: no customer is named",
    },
    "tickets.Category": {"code": _SHOP, "name": _SHOP},
    "tickets.BusinessCalendar": {"name": _SHOP, "time_zone": _CODE, "hours": _SHOP},
    "tickets.CalendarClosure": {"reason": _SHOP},
    "tickets.SlaPolicy": {"name": _SHOP, "channel": _CODE, "priority": _CODE, "clock": _CODE},
    "tickets.Inquiry": {
        "reference": _ID,
        "channel": _CODE,
        "priority": _CODE,
        "status": _CODE,
        "sla_state": _CODE,
        "next_reply_state": _CODE,
        "resolution_state": _CODE,
    },
    "tickets.ReferenceCounter": {"month": _CODE},
    "tickets.InquiryMessage": {"kind": _CODE, "channel": _CODE, "outbound_state": _CODE},
    "tickets.Attachment": {"content_type": "a file type"},
    "tickets.InquiryEvent": {"kind": _CODE, "old": "a status or reference", "new": _CODE},
    "tickets.ReplyTemplate": {"name": _SHOP, "body": _SHOP, "line_body": _SHOP},
    "tickets.StaffNotification": {"kind": _CODE, "key": _ID, "email_error": _STAFF},
    "tickets.InboundMail": {
        "source": "where mail was read from",
        "dedupe_key": "Message-ID or hash: kept so that the mail is never read in again",
        "status": _CODE,
    },
    "tickets.MailboxState": {"name": _SHOP},
    "tickets.AutoAcknowledgement": {"channel": _CODE, "body": _SHOP},
    "tickets.AssignmentRule": {"channel": _CODE, "mode": _CODE},
    "tickets.CsatSetting": {"channel": _CODE},
    "tickets.CsatSurvey": {"channel": _CODE},
    "outreach.MessageTemplate": {
        "name": _SHOP,
        "channel": _CODE,
        "purpose": _CODE,
        "description": _SHOP,
        "subject": _SHOP,
        "body_text": _SHOP,
        "body_html": _SHOP,
        "line_messages": _SHOP,
    },
    "outreach.Segment": {
        "name": _SHOP,
        "kind": _CODE,
        "lifecycle_segment": _CODE,
        "rule": _SHOP,
        "description": _SHOP,
    },
    "outreach.Send": {"kind": _CODE, "channel": _CODE, "purpose": _CODE, "status": _CODE},
    "outreach.Campaign": {"name": _SHOP, "channel": _CODE, "status": _CODE},
    "outreach.CampaignEvent": {"data": "ids and counts", "kind": _CODE},
    "outreach.Delivery": {
        "channel": _CODE,
        "context_key": _ID,
        "status": _CODE,
        "skip_reason": _CODE,
        "provider_message_id": _ID,
    },
    "outreach.MulticastRequest": {"delivery_ids": _ID},
    "outreach.RateBucket": {"name": _CODE},
    "outreach.LineWebhookEvent": {"webhook_event_id": _ID, "event_type": _CODE},
    "outreach.Journey": {
        "name": _SHOP,
        "description": _SHOP,
        "trigger": _CODE,
        "channel": _CODE,
        "next_channel": _CODE,
        "order_channels": _CODE,
        "lifecycle_segments": _CODE,
    },
    "outreach.JourneyStep": {"name": _SHOP, "condition": _CODE},
    "outreach.JourneyEvent": {"data": "ids and counts", "kind": _CODE},
    "crisis.Suspension": {
        "sku": _SHOP,
        "product_name": _SHOP,
        "channels": _CODE,
        "reason": _SHOP,
        "note": _SHOP,
    },
    "crisis.SuspensionNotice": {"kind": _CODE, "channel": _CODE},
    "crisis.SuspensionEvent": {"data": "ids and counts", "kind": _CODE},
    "crisis.Incident": {
        "kind": _CODE,
        "title": _SHOP,
        "channel": _CODE,
        "system": _CODE,
        "status": _CODE,
        "root_cause": _SHOP,
        "countermeasure": _SHOP,
    },
    "crisis.IncidentEvent": {"data": "ids and counts", "kind": _CODE, "text": _SHOP},
    "crisis.Playbook": {"kind": _CODE, "name": _SHOP, "signs": _SHOP, "contact_flow": _SHOP},
    "crisis.PlaybookStep": {"title": _SHOP, "description": _SHOP, "role": _CODE},
    "crisis.ChecklistItem": {"title": _SHOP, "description": _SHOP, "role": _CODE},
    "crisis.IncidentSend": {
        "kind": _CODE,
        "channel": _CODE,
        "quiet_hours_override_reason": _SHOP,
    },
    "reports.Countermeasure": {
        "channel": _CODE,
        "cause": _SHOP,
        "action": _SHOP,
        "status": _CODE,
    },
}


def personal_table(model_label: str) -> PersonalTable:
    """The inventory entry of `model_label` ("tickets.Attachment")."""
    for table in PERSONAL:
        if table.model == model_label:
            return table
    raise LookupError(model_label)
