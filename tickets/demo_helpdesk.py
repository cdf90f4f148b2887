"""Demo data of the helpdesk rules (SPEC rule 13, issue 19): assignment
rules and the agents' presence, satisfaction-survey settings per channel
(before the scenarios resolve their inquiries, so that those are asked)
with a few answers, an inquiry owing a next reply, one waiting on the
customer, a merged pair and a split. Safe to run twice: the settings are
found or made, and each inquiry below is marked by its first message's
Message-ID and left alone once there."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from core.choices import Channel
from tickets.models import (
    AssignmentMode,
    AssignmentRule,
    Category,
    CsatSetting,
    CsatSurvey,
    InquiryMessage,
    InquiryStatus,
)
from tickets.services import (
    InboundMessage,
    inquiries_merge,
    inquiry_create,
    inquiry_inbound_add,
    inquiry_reply,
    inquiry_split,
    inquiry_status_set,
)
from tickets.services.assignment import agent_presence_set
from tickets.services.csat import csat_answer, csat_comment

# Resolved inquiries whose customers are asked for satisfaction.
CSAT_INQUIRIES = [
    ("ポイントの付与について", "先月の注文のポイントが付与されていません。"),
    ("配送日時の変更", "お届け日を土曜日に変更できますか。"),
]
# The answers to the first surveys sent, in their order.
CSAT_ANSWERS = [
    (5, "丁寧に対応していただきありがとうございました。"),
    (4, ""),
    (2, "返信が遅かったです。"),
]


def _message_id(name: str) -> str:
    return f"<demo-helpdesk-{name}@madoguchi.example>"


def helpdesk_settings_demo(ctx) -> None:
    """Round robin for LINE and for product defects; the agent and the
    manager present; satisfaction asked on every channel but Amazon."""
    for lookup in (
        {"channel": Channel.LINE},
        {"category": Category.objects.get(code="product_defect")},
    ):
        _rule, created = AssignmentRule.objects.get_or_create(
            is_active=True, **lookup, defaults={"mode": AssignmentMode.ROUND_ROBIN}
        )
        ctx.created["assignment rules"] += created
    for name in ("agent", "manager"):
        if user := ctx.users.get(name):
            agent_presence_set(user=user, is_present=True, actor=user)
    for channel in Channel.values:
        _setting, created = CsatSetting.objects.get_or_create(
            channel=channel, defaults={"is_active": channel != Channel.AMAZON}
        )
        ctx.created["satisfaction settings"] += created


def helpdesk_demo(ctx) -> None:
    """The inquiries that show the clocks, a merge and a split, and
    resolved ones whose customers answered the satisfaction question."""
    agent = ctx.users.get("agent")
    customers = [c for c in ctx.customers if c.email and c.orders.exists()]
    if agent is None or len(customers) < 4 + len(CSAT_INQUIRIES):
        return
    done = set(
        InquiryMessage.objects.filter(message_id__startswith="<demo-helpdesk-").values_list(
            "message_id", flat=True
        )
    )
    now = timezone.now()

    def create(name, customer, hours_ago, subject, body):
        return inquiry_create(
            customer=customer,
            channel=Channel.EMAIL,
            message=InboundMessage(
                subject=subject,
                body_text=body,
                message_id=_message_id(name),
                received_at=now - timedelta(hours=hours_ago),
            ),
            order=customer.orders.order_by("-ordered_at", "-id").first(),
        )

    if _message_id("next-reply") not in done:
        # answered once, then the customer wrote again: the next reply is due
        inquiry = create(
            "next-reply", customers[0], 6, "ギフト包装について", "ギフト包装は可能ですか。"
        )
        inquiry_reply(
            inquiry=inquiry, body="ギフト包装は可能です。ご希望をお知らせください。", actor=agent
        )
        inquiry_inbound_add(
            inquiry=inquiry, message=InboundMessage(body_text="のし紙もお願いできますか。")
        )
        ctx.created["inquiries"] += 1
    if _message_id("waiting") not in done:
        # answered with a question: waiting for the customer, the resolution clock paused
        inquiry = create(
            "waiting", customers[1], 3, "サイズ交換の希望", "Mサイズに交換できますか。"
        )
        inquiry_reply(
            inquiry=inquiry,
            body="交換いたします。お手元の商品の状態をお知らせください。",
            actor=agent,
        )
        ctx.created["inquiries"] += 1
    if _message_id("merge-1") not in done:
        first = create(
            "merge-1", customers[2], 12, "商品が届きません", "注文した商品がまだ届きません。"
        )
        second = create(
            "merge-2",
            customers[2],
            10,
            "再度のお問い合わせ",
            "先ほどの件、配送状況を教えてください。",
        )
        inquiries_merge(inquiries=[first, second], actor=agent)
        ctx.created["inquiries"] += 2
    if _message_id("split") not in done:
        inquiry = create("split", customers[3], 10, "返品と領収書", "届いた商品を返品したいです。")
        inquiry_inbound_add(
            inquiry=inquiry,
            message=InboundMessage(
                body_text="別件ですが、前回の注文の領収書を発行していただけますか。",
                received_at=now - timedelta(hours=9),
            ),
        )
        later = inquiry.messages.order_by("-created_at", "-id").first()
        inquiry_split(message=later, subject="領収書の発行", actor=agent)
        ctx.created["inquiries"] += 2
    for number, (subject, body) in enumerate(CSAT_INQUIRIES):
        if _message_id(f"csat-{number}") not in done:
            # answered and resolved: the customer is asked for satisfaction
            inquiry = create(f"csat-{number}", customers[4 + number], 30, subject, body)
            inquiry_reply(inquiry=inquiry, body="ご案内いたします。ご確認ください。", actor=agent)
            inquiry_status_set(inquiry=inquiry, status=InquiryStatus.RESOLVED, actor=agent)
            ctx.created["inquiries"] += 1
    _csat_answers()


def _csat_answers() -> None:
    """The customers' answers to the first surveys sent, once each."""
    unanswered = CsatSurvey.objects.filter(score__isnull=True).order_by("inquiry_id")
    answered = CsatSurvey.objects.filter(score__isnull=False).count()
    for survey, (score, comment) in zip(unanswered, CSAT_ANSWERS[answered:], strict=False):
        csat_answer(inquiry_id=survey.inquiry_id, score=score)
        if comment:
            csat_comment(inquiry_id=survey.inquiry_id, comment=comment)
