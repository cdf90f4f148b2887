"""Demo data for incidents (crisis/demo.py runs STEPS): one ongoing
楽天市場 outage during スーパーSALE, its checklist partly ticked, a few
updates on its timeline, and the inquiries it brought, some linked and
some still suggested for linking. Safe to run twice (found by title)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from core.choices import Channel
from crisis.models import Incident, IncidentKind
from crisis.services.incidents import incident_inquiries_link, incident_open, incident_update
from crisis.services.playbooks import checklist_step_tick
from tickets.models import InquiryMessage
from tickets.services import InboundMessage, inquiry_create

TITLE = "楽天市場 障害（スーパーSALE中）: 商品ページ・カートがエラー"
# (minutes after the start, subject, text, linked at once)
INQUIRIES = (
    (12, "カートに入れられません", "スーパーSALEの商品をカートに入れるとエラーになります。", True),
    (
        25,
        "決済画面に進めない",
        "購入手続きの途中で「システムエラー」と表示されて進めません。",
        True,
    ),
    (40, "クーポンが使えない", "SALE用のクーポンを使おうとしたら画面が真っ白になりました。", True),
    (
        70,
        "注文できたか分かりません",
        "エラーのあと注文履歴に出てきません。二重注文が心配です。",
        False,
    ),
    (85, "セール価格で買えますか", "復旧後もセール価格で購入できますか。", False),
)
UPDATES = (
    "楽天市場の出店者向けお知らせで、商品ページとカートの障害が告知された。復旧見込みは未定。",
    "楽天側の続報: {hour}時頃の復旧を目指しているとのこと。注文の取り込みは止まっている。",
    "自社サイトとYahoo!ショッピングで同じセール価格を用意。LINEでの案内文を準備中。",
)


def _message_id(number: int) -> str:
    return f"<demo-incident-{number}@madoguchi.example>"


def incident_demo(ctx) -> None:
    manager, agent = ctx.users.get("manager"), ctx.users.get("agent")
    if manager is None or Incident.objects.filter(title=TITLE).exists():
        ctx.kept["incidents"] += 1
        return
    now = timezone.now()
    started = (now - timedelta(hours=2)).replace(second=0, microsecond=0)
    recovery = (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    incident = incident_open(
        kind=IncidentKind.MALL_OUTAGE,
        title=TITLE,
        channel=Channel.RAKUTEN,
        started_at=started,
        expected_recovery_at=recovery,
        actor=manager,
    )
    ctx.created["incidents"] += 1
    # the mall's estimate, as the timeline tells it, is the recovery expected
    hour = timezone.localtime(recovery).hour
    for text in UPDATES:
        incident_update(incident=incident, text=text.format(hour=hour), actor=manager)
    steps = list(incident.checklist.order_by("position"))
    for step in steps[:2]:
        checklist_step_tick(item=step, actor=manager)
    if agent is not None and len(steps) > 2:
        checklist_step_tick(item=steps[2], actor=agent)
    rakuten = [c for c in ctx.customers if c.identities.filter(channel=Channel.RAKUTEN).exists()]
    pool = [c for c in rakuten if c.email] or rakuten
    if not pool:
        return
    rng = ctx.rng("incidents")
    seen = set(
        InquiryMessage.objects.filter(
            message_id__in=[_message_id(n) for n in range(len(INQUIRIES))]
        ).values_list("message_id", flat=True)
    )
    to_link = []
    for number, (minutes, subject, body, linked) in enumerate(INQUIRIES):
        if _message_id(number) in seen:
            continue
        inquiry = inquiry_create(
            customer=rng.choice(pool),
            channel=Channel.RAKUTEN,
            message=InboundMessage(
                subject=subject,
                body_text=body,
                message_id=_message_id(number),
                received_at=started + timedelta(minutes=minutes),
            ),
        )
        ctx.created["inquiries"] += 1
        if linked:
            to_link.append(inquiry)
    incident_inquiries_link(incident=incident, inquiries=to_link, actor=agent or manager)


STEPS: list = [incident_demo]
