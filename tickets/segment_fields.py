"""Segment rule fields that come from inquiries (SPEC rule 7: custom
segments on inquiry counts). Registered by TicketsConfig.ready()."""

from __future__ import annotations

from django.conf import settings
from django.utils.functional import lazy
from django.utils.translation import gettext as _

from outreach.segments import (
    NUMBER_OPERATORS,
    SegmentField,
    number_expression,
    related_count,
    segment_field_register,
)


def register() -> None:
    from tickets.models import Inquiry
    from tickets.selectors import complaints_recent

    segment_field_register(
        SegmentField(
            name="inquiry_count",
            label=_("inquiries"),
            operators=NUMBER_OPERATORS,
            build=number_expression(lambda now: related_count(Inquiry.objects.all())),
        )
    )
    days = settings.CLAIMANT_SUGGEST_DAYS
    segment_field_register(
        SegmentField(
            name="complaint_count_recent",
            label=lazy(lambda: _("complaints in the last %(days)d days") % {"days": days}, str)(),
            operators=NUMBER_OPERATORS,
            build=number_expression(lambda now: related_count(complaints_recent(now=now))),
        )
    )
