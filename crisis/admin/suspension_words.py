"""How a sales suspension reads in the admin: local times, channel names, what
became of each notice, the notice counts, the event lines of its history and
the column headers of the affected orders CSV.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from crisis.models import (
    Suspension,
    SuspensionEvent,
    SuspensionEventKind,
    SuspensionNoticeKind,
)
from crisis.selectors.suspensions import NoticeCounts
from outreach.models import Delivery, DeliveryStatus, MessageChannel

# The affected orders CSV for the mall back-office: its columns, in the
# words of a Japanese back-office (モール, 注文番号, お客様, 状態, …).
CSV_HEADERS = (
    _("Mall"),
    _("Order number"),
    _("Ordered at"),
    _("Customer name"),
    _("SKU"),
    _("Product name"),
    _("Quantity"),
    _("Order status"),
    _("Notice channel"),
    _("Notice result"),
)


def local_time(moment, format: str = "DATETIME_FORMAT") -> str:
    return date_format(timezone.localtime(moment), format) if moment else ""


def channel_names(codes) -> str:
    labels = dict(Channel.choices)
    return "、".join(str(labels.get(code, code)) for code in codes)


def delivery_outcome(row: Delivery) -> str:
    """What became of one message, in words for the manager: sent, waiting,
    why it was not sent, or why it failed."""
    error = row.last_error or ""
    if row.status == DeliveryStatus.SKIPPED:
        return gettext("Not sent: %(reason)s") % {"reason": row.get_skip_reason_display()}
    if row.status == DeliveryStatus.FAILED:
        if error.startswith("SMTP 5"):
            why = gettext("the customer's mail server refused it (a wrong or closed address)")
        elif error.startswith("LINE 4"):
            why = gettext("LINE refused it (the customer blocked the account or is not a friend)")
        elif error.startswith("Rendering failed"):
            why = gettext("the template could not be filled in for this customer")
        elif "UTF-16" in error:
            why = gettext("the message is too long for LINE")
        else:
            why = gettext("the provider refused it")
        return gettext("Failed: %(why)s") % {"why": why}
    if row.status == DeliveryStatus.UNKNOWN:
        return gettext(
            "Unknown: the connection broke while sending; it is not sent again, so that "
            "nobody gets it twice"
        )
    if row.status in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING) and error:
        return gettext("Waiting to retry after a temporary error")
    return row.get_status_display()


def notice_counts_text(counts: NoticeCounts | None) -> str:
    if counts is None:
        return ""
    parts = [gettext("%(n)s sent") % {"n": counts.sent}]
    if counts.pending:
        parts.append(gettext("%(n)s waiting") % {"n": counts.pending})
    if counts.failed:
        parts.append(gettext("%(n)s failed") % {"n": counts.failed})
    if counts.skipped:
        parts.append(gettext("%(n)s not reachable") % {"n": counts.skipped})
    return "・".join(parts)


def event_text(event: SuspensionEvent, suspension: Suspension) -> str:
    """A timeline line in words."""
    data = event.data or {}
    if event.kind == SuspensionEventKind.RECORDED:
        text = gettext("Recorded: %(reason)s, expected to resume %(at)s") % {
            "reason": dict(Suspension._meta.get_field("reason").choices).get(  # type: ignore[arg-type]  # the reason field has choices
                data.get("reason"), ""
            ),
            "at": local_time(suspension.expected_resume_at),
        }
        if data.get("sales_stopped"):
            text += gettext("; sales stopped on %(channels)s") % {
                "channels": channel_names(data.get("channels") or [])
            }
        return text
    if event.kind == SuspensionEventKind.NOTICE_SENT:
        return gettext("“%(notice)s” by %(channel)s to %(count)s customer(s) (%(template)s).") % {
            "notice": dict(SuspensionNoticeKind.choices).get(data.get("notice", ""), ""),
            "channel": dict(MessageChannel.choices).get(data.get("channel", ""), ""),
            "count": data.get("recipients", 0),
            "template": data.get("template", ""),
        }
    if event.kind == SuspensionEventKind.INQUIRY_LINKED:
        count = len(data.get("inquiries") or [])
        return ngettext("%(count)d inquiry linked.", "%(count)d inquiries linked.", count) % {
            "count": count
        }
    return event.get_kind_display()
