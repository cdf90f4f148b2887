"""The satisfaction survey (CSAT): one question, 「今回の対応はいかがでしたか」
(1–5), asked once when an inquiry is resolved, by email (five signed links
to a public page, no login) or by LINE (quick reply buttons whose postback
comes back through the webhook).

Asked only where the channel's CsatSetting is on, and never for Amazon,
whatever the setting says (Amazon's rules for buyer messages): the check is
here, not only in the setting's form. The question goes out through the
outreach ledger as a transactional notice, once per inquiry (CsatSurvey is
one row per inquiry). An answer is taken once, a comment once after it; a
link or a button used again changes nothing."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core.choices import Channel
from core.types import Actor, StrOrPromise
from crm.models import ChannelIdentity, Customer
from outreach.models import MessageChannel, Purpose, SendKind
from outreach.services import deliveries_snapshot, send_create, send_enqueue
from tickets.models import CsatSetting, CsatSurvey, Inquiry, InquiryEventKind
from tickets.services.inquiries import event_add
from tickets.services.replies import reply_channel_reachable

logger = logging.getLogger(__name__)

SCORES = (5, 4, 3, 2, 1)
COMMENT_MAX_CHARS = 2000
# What a LINE postback of the survey starts with (the rest is a signed token).
POSTBACK_PREFIX = "csat:"


def csat_score_label(score: int) -> str:
    return {
        5: _("Very satisfied"),
        4: _("Satisfied"),
        3: _("Neither satisfied nor dissatisfied"),
        2: _("Dissatisfied"),
        1: _("Very dissatisfied"),
    }[score]


def csat_question() -> str:
    return _("How was our support this time?")


def csat_token(*, inquiry_id: int, score: int) -> str:
    """The signed, dated answer `score` to the survey of `inquiry_id`."""
    return signing.dumps([inquiry_id, score], salt=settings.CSAT_SALT)


def csat_token_read(token: str) -> tuple[int, int]:
    """(inquiry id, score) of a token made by csat_token within
    CSAT_LINK_DAYS. Raises signing.SignatureExpired for an old one and
    signing.BadSignature for anything else not made here."""
    value = signing.loads(
        token, salt=settings.CSAT_SALT, max_age=settings.CSAT_LINK_DAYS * 24 * 3600
    )
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(item, int) and not isinstance(item, bool) for item in value)
        or value[1] not in SCORES
    ):
        raise signing.BadSignature("not a survey answer")
    return value[0], value[1]


def csat_url(*, inquiry_id: int, score: int) -> str:
    from django.urls import reverse

    token = csat_token(inquiry_id=inquiry_id, score=score)
    return settings.SITE_URL + reverse("tickets-csat", args=[token])


def csat_allowed(inquiry: Inquiry) -> bool:
    """Whether the inquiry's channel asks for satisfaction: its setting is
    on, and it is not Amazon (never, whatever the setting)."""
    if inquiry.channel == Channel.AMAZON:
        return False
    return CsatSetting.objects.filter(channel=inquiry.channel, is_active=True).exists()


def csat_offer(*, inquiry: Inquiry, actor: Actor = None) -> CsatSurvey | None:
    """Ask the customer of a resolved inquiry the satisfaction question, if
    its channel asks and it was never asked; None when not asked. Runs in
    the caller's transaction (inquiry_status_set, with the inquiry locked)."""
    if not csat_allowed(inquiry) or CsatSurvey.objects.filter(inquiry=inquiry).exists():
        return None
    channel = reply_channel_reachable(inquiry)
    if channel is None:
        return None
    content_of = _email_content if channel == MessageChannel.EMAIL else _line_content
    content = content_of(inquiry)
    with transaction.atomic():
        send = send_create(
            kind=SendKind.NOTICE,
            channel=channel,
            purpose=Purpose.TRANSACTIONAL,
            content=content,
            actor=actor,
        )
        survey = CsatSurvey.objects.create(inquiry=inquiry, channel=channel, send=send)
        deliveries_snapshot(
            send=send,
            audience=Customer.objects.filter(pk=inquiry.customer_id),
            now=timezone.now(),
            context_key=f"csat-{inquiry.pk}",
            new_send=True,
        )
        event_add(inquiry, InquiryEventKind.CSAT_SENT, actor, new=channel)
        send_enqueue(send, parallel=1)
    return survey


def _email_content(inquiry: Inquiry) -> dict:
    lines = [
        _("Dear %(name)s,") % {"name": inquiry.customer.display_name},
        "",
        _("Thank you for contacting us about 「%(subject)s」 (%(reference)s).")
        % {"subject": inquiry.subject, "reference": inquiry.reference},
        csat_question(),
        _("Please choose one of the links below; no login is needed."),
        "",
    ]
    for score in SCORES:
        lines.append(f"{score} {csat_score_label(score)}")
        lines.append(csat_url(inquiry_id=inquiry.pk, score=score))
        lines.append("")
    lines.append(
        _("The links work for %(days)d days. This message is sent once; there is no need to reply.")
        % {"days": settings.CSAT_LINK_DAYS}
    )
    return {
        "subject": f"[{inquiry.reference}] {csat_question()}",
        "body_text": "\n".join(lines),
        "reply_to": settings.DEFAULT_FROM_EMAIL,
        "headers": {"Auto-Submitted": "auto-generated"},
    }


def _line_content(inquiry: Inquiry) -> dict:
    text = "\n".join(
        [
            _("Thank you for contacting us (%(reference)s).") % {"reference": inquiry.reference},
            csat_question(),
            _("Please choose 1 (very dissatisfied) to 5 (very satisfied) below."),
        ]
    )
    return {
        "line_messages": [text],
        "line_quick_reply": [
            {
                "label": f"{score} {csat_score_label(score)}"[:20],
                "data": POSTBACK_PREFIX + csat_token(inquiry_id=inquiry.pk, score=score),
                "display_text": f"{score} {csat_score_label(score)}",
            }
            for score in SCORES
        ],
    }


def csat_answer(*, inquiry_id: int, score: int) -> tuple[CsatSurvey | None, bool]:
    """Record the answer to the survey of `inquiry_id`. Returns the survey
    (None when the inquiry was never asked) and whether this answer was
    recorded: a second answer leaves the first as it is."""
    if score not in SCORES:
        raise ValidationError({"score": [_("Choose from 1 to 5.")]})
    with transaction.atomic():
        survey = CsatSurvey.objects.select_for_update().filter(inquiry_id=inquiry_id).first()
        if survey is None:
            return None, False
        if survey.score is not None:
            return survey, False
        survey.score = score
        survey.answered_at = timezone.now()
        survey.save(update_fields=["score", "answered_at"])
        event_add(survey.inquiry, InquiryEventKind.CSAT_ANSWERED, new=str(score))
    return survey, True


def csat_comment(*, inquiry_id: int, comment: str) -> bool:
    """The customer's comment after their answer, once. False when there is
    no answer yet, a comment already, or nothing written."""
    comment = (comment or "").strip()[:COMMENT_MAX_CHARS]
    if not comment:
        return False
    with transaction.atomic():
        survey = CsatSurvey.objects.select_for_update().filter(inquiry_id=inquiry_id).first()
        if survey is None or survey.score is None or survey.commented_at is not None:
            return False
        survey.comment = comment
        survey.commented_at = timezone.now()
        survey.save(update_fields=["comment", "commented_at"])
        event_add(survey.inquiry, InquiryEventKind.CSAT_COMMENTED)
    return True


def csat_line_postback(*, user_id: str, data: str) -> bool | None:
    """A LINE postback from the webhook. None: not the survey's; False: the
    survey's, but forged, expired, from someone other than the inquiry's
    customer, or answered already; True: the answer was recorded."""
    if not data.startswith(POSTBACK_PREFIX):
        return None
    try:
        inquiry_id, score = csat_token_read(data[len(POSTBACK_PREFIX) :])
    except signing.BadSignature:
        logger.warning("LINE survey postback from %s refused: bad or expired token", user_id)
        return False
    customer_id = (
        Inquiry.objects.filter(pk=inquiry_id).values_list("customer_id", flat=True).first()
    )
    owners = ChannelIdentity.objects.filter(channel=Channel.LINE, external_id=user_id)
    if customer_id is None or not _same_customer(customer_id, owners):
        logger.warning("LINE survey postback from %s refused: not the customer", user_id)
        return False
    _survey, recorded = csat_answer(inquiry_id=inquiry_id, score=score)
    return recorded


def _same_customer(customer_id: int, owners: QuerySet[ChannelIdentity]) -> bool:
    """The LINE user is the inquiry's customer, or the customer the
    inquiry's customer was merged into."""
    owner_ids = set(owners.values_list("customer_id", flat=True))
    if customer_id in owner_ids:
        return True
    merged_into = Customer.objects.filter(pk=customer_id).values_list("merged_into", flat=True)
    return bool(owner_ids & set(merged_into))


def csat_event_labels() -> dict[str, dict[str, StrOrPromise]]:
    """How the survey's events read on a timeline: the channel it was asked
    by, the answer with its words."""
    return {
        InquiryEventKind.CSAT_SENT: dict(MessageChannel.choices),
        InquiryEventKind.CSAT_ANSWERED: {
            str(score): f"{score} {csat_score_label(score)}" for score in SCORES
        },
    }
