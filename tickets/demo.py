"""Demo inquiries for `manage.py demo_data` (discovered through DEMO_STEPS).

About forty Japanese inquiries across the channels, received over the last
two days so that after the SLA watch some are on track, some at risk and
some overdue; some assigned and categorised, some answered, resolved or
closed, with notes, a claimant's complaint and a phone call an agent wrote
down. Plus the reply templates and the email auto-acknowledgement.

Everything goes through the services. Safe to run again: each demo inquiry
carries a fixed Message-ID and is created only when missing. The texts are
Japanese data, not UI strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from core.choices import Channel
from tickets.demo_helpdesk import helpdesk_demo, helpdesk_settings_demo
from tickets.demo_history import customers_by_channel, history_demo
from tickets.models import Category, Inquiry, InquiryMessage, InquiryStatus, Priority
from tickets.reply_templates import (
    auto_acknowledgement_ensure,
    extra_from_date,
    reply_template_render,
    reply_templates_ensure,
)
from tickets.services import (
    AttachmentData,
    InboundMessage,
    inquiry_assign,
    inquiry_auto_acknowledge,
    inquiry_category_set,
    inquiry_create,
    inquiry_note_add,
    inquiry_reply,
    inquiry_solution_proposed,
    inquiry_status_set,
    reply_channel_for,
    sla_watch,
)

# Demo people flagged as claimants by crm's demo step (CLAIMANT_REASONS).
CLAIMANT_PEOPLE = (5, 17)


@dataclass(frozen=True)
class Scenario:
    channel: str
    category: str  # a Category code
    subject: str
    body: str
    hours_ago: float
    flow: str  # new | triaged | note | replied | solution | resolved | closed | waiting
    note: str = ""
    answer: str = ""  # the reply, when no reply template fits
    claimant: int | None = None  # the demo person number of a claimant
    priority: str = Priority.NORMAL
    video: bool = False  # with an attachment too large to keep


# channel|category|hours ago|flow|subject|body[|note[|answer[|options]]]
# options: claimant=<demo person number>, priority=<value>, video (an
# attachment too large to keep).
SCENARIO_TABLE = """
    rakuten|delivery_delay|22|new|注文した商品がまだ届きません|11月中に届くと思っていた静岡煎茶がまだ届いていません。発送状況を教えてください。贈答用なので週末までに必要です。
    amazon|delivery_delay|27|new|配送予定日を過ぎています|お届け予定日を2日過ぎても商品が届きません。追跡番号で確認しても「配達中」のままです。
    yahoo|product_defect|9|triaged|急須の蓋にひびが入っていました|届いた常滑焼の急須の蓋にひびが入っていました。写真をお送りしますので、交換をお願いできますか。
    own_site|out_of_stock|3|replied|抹茶の再入荷はいつですか|宇治抹茶30g缶が在庫切れになっていますが、再入荷の予定はありますか。
    line|other|1|new|ギフト包装はできますか|母の日のプレゼントにしたいのですが、のし紙とギフト包装はお願いできますか？
    email|payment|5|note|クレジットカードの二重請求について|先日の注文で、カード明細に同じ金額が2回請求されています。確認をお願いします。|決済代行会社に照会中。回答は明日午前の見込み。
    rakuten|return_exchange|20|closed|サイズ違いのため交換したい|今治タオルのバスタオルをフェイスタオルと間違えて注文してしまいました。交換は可能でしょうか。||未使用であれば交換を承ります。返送用の伝票をお送りしますので、到着後にご返送ください。
    phone|delivery_delay|0.5|triaged|【電話】配達日時の変更希望|お客様より電話。明日午前中の配達指定を、土曜日の19〜21時に変更したいとのこと。
    own_site|system_failure|2|replied|注文完了画面が表示されない|カード決済のあと、注文完了画面にならずエラーが出ました。注文できているのか分かりません。
    amazon|product_defect|15|triaged|湯呑みが欠けていました|波佐見焼の湯呑みの縁が欠けた状態で届きました。
    rakuten|delivery_delay|20.5|note|いつになったら届くのか|何度問い合わせても返事がない。今日中に届かなければ全額返金しろ。レビューにも書く。|クレーム対応方針に従い店長が対応。事実関係（出荷日・追跡状況）を確認してから返信する。||claimant=5,priority=high
    email|other|8|triaged|法人での大量注文について|会社の記念品として煎茶の贈答セットを200個注文したいのですが、見積もりをお願いできますか。
    line|delivery_delay|21|new|まだ届かないのですが|3日前に注文したせんべいがまだ届きません😢
    yahoo|delivery_delay|14|new|発送はいつになりますか|注文から5日経ちますが、発送のお知らせが届きません。
    own_site|return_exchange|40|closed|返品したい|イメージと色が違ったので、未開封のまま返品したいです。||未開封品のため返品を承ります。返送先と手順を別途メールでご案内いたします。
    store|product_defect|6|replied|店頭で購入した急須から水漏れ|先月渋谷店で購入した南部鉄器の急須の注ぎ口付近から水が漏れます。
    rakuten|out_of_stock|4|solution|ほうじ茶が欠品とのメールが来ました|注文したほうじ茶が欠品とのことですが、いつ発送されますか。キャンセルも検討しています。
    amazon|other|26|new|領収書の発行について|注文した商品の領収書を会社名で発行してもらえますか。
    email|system_failure|1.5|new|会員ページにログインできません|パスワードを再設定しても会員ページにログインできません。
    line|return_exchange|23|triaged|届いた商品が注文と違います|玄米茶を注文したのに煎茶が届きました。
    rakuten|delivery_delay|12|resolved|お届け日の確認|12月5日のお届け指定で注文しましたが、間に合いますか。
    own_site|payment|9|replied|コンビニ払いの期限が切れてしまいました|コンビニ払いの支払期限を過ぎてしまいました。もう一度支払うことはできますか。||お支払い期限を過ぎたご注文は自動でキャンセルとなっております。お手数ですが、再度ご注文をお願いいたします。在庫は確保しております。
    phone|product_defect|2|note|【電話】羊羹の賞味期限について|お客様より電話。届いた羊羹の賞味期限が残り1週間しかないとのご指摘。|倉庫に同ロットの在庫を確認中。期限の長い商品と交換で提案予定。
    yahoo|other|6|new|ポイントが付与されていません|先週の注文分のポイントがまだ付与されていません。
    amazon|return_exchange|18|triaged|返品の送料について|不良品の返品なのに、送料がこちらの負担になっています。
    email|other|30|closed|海外への発送は可能ですか|台湾に住む友人に贈りたいのですが、海外発送は対応していますか。||申し訳ございませんが、現在海外への発送は承っておりません。国内のお届け先であれば、ギフト包装にて発送いたします。
    rakuten|product_defect|19|replied|タオルに汚れがありました|届いたバスタオルに黒い汚れがついていました。
    own_site|other|48|closed|メールマガジンの配信停止|メールマガジンの配信を停止したいのですが、方法がわかりません。||配信停止の手続きを承りました。本日以降、メールマガジンは配信されません。
    line|other|0.3|new|店舗の営業時間|年末年始の渋谷店の営業時間を教えてください。
    rakuten|delivery_delay|7|waiting|配送業者の変更はできますか|置き配ができる配送業者に変更できますか。|配送業者に置き配の可否を確認中。
    amazon|delivery_delay|21.5|new|荷物が返送されたようです|不在で荷物が返送されたと表示されています。再配送をお願いします。
    email|product_defect|34|new|急須の茶こしが外れる|購入して1週間ですが、急須の茶こし部分が外れてしまいます。動画を添付します。|||video
    yahoo|return_exchange|3|triaged|ギフトセットの中身の変更|注文したギフトセットの中身を一部変更したいです。
    own_site|delivery_delay|0.8|new|届け先住所の変更|引っ越しのため、届け先住所を変更したいです。まだ発送前でしょうか。
    rakuten|system_failure|11|replied|クーポンが適用されません|お誕生日クーポンを入力してもエラーになり、適用されません。
    store|other|5|closed|取り置きのお願い|来週土曜日に渋谷店に伺うので、有田焼のペアマグを取り置きしていただけますか。||ペアマグを1点お取り置きいたしました。来週土曜日の閉店時間までお預かりいたします。
    yahoo|product_defect|9|note|また不良品です|前回に続いてまた不良品が届いた。交換だけでなく補償金を払うべきだ。|過去の経緯あり。補償金には応じない方針。交換・返金のみ案内する。||claimant=17
    line|out_of_stock|16|replied|八女玉露の入荷予定|八女玉露はいつ入荷しますか？入荷したら教えてほしいです。
    email|payment|23.5|solution|請求書払いはできますか|法人として請求書払いで購入したいのですが可能でしょうか。||法人のお客様は請求書払い（月末締め翌月末払い）をご利用いただけます。申込書をお送りしますので、ご記入のうえご返送ください。
    rakuten|delivery_delay|1|new|配達完了になっているのに届いていません|追跡では配達完了となっていますが、宅配ボックスにもポストにもありません。|||priority=urgent
"""


def _scenario(line: str) -> Scenario:
    channel, category, hours, flow, subject, body, *rest = line.strip().split("|")
    note, answer, options = (*rest, "", "", "")[:3]
    values = dict(option.partition("=")[::2] for option in options.split(",") if option)
    return Scenario(
        channel=channel,
        category=category,
        subject=subject,
        body=body,
        hours_ago=float(hours),
        flow=flow,
        note=note,
        answer=answer,
        claimant=int(values["claimant"]) if "claimant" in values else None,
        priority=values.get("priority") or Priority.NORMAL,
        video="video" in values,
    )


SCENARIOS: tuple[Scenario, ...] = tuple(
    _scenario(line) for line in SCENARIO_TABLE.splitlines() if line.strip()
)

GENERIC_REPLY = (
    "{name}様\n\nお問い合わせいただき、誠にありがとうございます。\n\n{answer}\n\n"
    "ご不明な点がございましたら、本メールにご返信ください。\n"
)
# The date a template's extra values are filled with, in days from today.
TEMPLATE_DAYS = {"delivery_delay": 3, "out_of_stock": 10, "system_failure": 0, "product_defect": 0}


def _message_id(number: int) -> str:
    return f"<demo-inquiry-{number:03d}@madoguchi.example>"


def _reply_body(scenario: Scenario, inquiry: Inquiry, templates: dict) -> str:
    template = next(
        (
            t
            for t in templates.values()
            if t.category is not None and t.category.code == scenario.category
        ),
        None,
    )
    uses_order = template is not None and "order.order_number" in template.body
    if scenario.answer or template is None or (uses_order and inquiry.order is None):
        answer = scenario.answer or "内容を確認いたしました。担当者より改めてご案内いたします。"
        return GENERIC_REPLY.format(name=inquiry.customer.display_name, answer=answer)
    # A concrete date (and, for an outage, an hour) as the agent would pick.
    at = timezone.localtime().replace(minute=0, second=0, microsecond=0, tzinfo=None)
    at += timedelta(hours=3)
    day = at.date() + timedelta(days=TEMPLATE_DAYS.get(scenario.category, 3))
    extra = extra_from_date(day, at if scenario.category == "system_failure" else None)
    return reply_template_render(
        template=template,
        inquiry=inquiry,
        order=inquiry.order,
        extra=extra,
        channel=reply_channel_for(inquiry),
    ).body


def _play(scenario: Scenario, inquiry: Inquiry, ctx, templates: dict) -> None:
    """Take the inquiry as far as its flow goes, as the staff would."""
    agent, manager = ctx.users.get("agent"), ctx.users.get("manager")
    handler = manager if scenario.claimant is not None else agent
    if scenario.flow == "new":
        return
    inquiry = inquiry_assign(inquiry=inquiry, assignee=handler, actor=handler)
    category = Category.objects.filter(code=scenario.category).first()
    inquiry = inquiry_category_set(inquiry=inquiry, category=category, actor=handler)
    if scenario.note:
        inquiry_note_add(inquiry=inquiry, body=scenario.note, actor=handler)
    if scenario.flow == "waiting":
        inquiry_status_set(inquiry=inquiry, status=InquiryStatus.WAITING_THIRD_PARTY, actor=handler)
    if scenario.flow not in ("replied", "solution", "resolved", "closed"):
        return
    try:
        inquiry_reply(
            inquiry=inquiry, body=_reply_body(scenario, inquiry, templates), actor=handler
        )
    except ValidationError:  # no address on the reply channel
        inquiry_note_add(inquiry=inquiry, body="お電話で回答済み。", actor=handler)
    if scenario.flow in ("solution", "resolved"):
        inquiry_solution_proposed(inquiry=inquiry, actor=handler)
    if scenario.flow == "resolved":
        inquiry_status_set(inquiry=inquiry, status=InquiryStatus.RESOLVED, actor=handler)
    if scenario.flow == "closed":
        inquiry_status_set(inquiry=inquiry, status=InquiryStatus.CLOSED, actor=handler)


def tickets_demo(ctx) -> None:
    templates, created = reply_templates_ensure(actor=ctx.users.get("manager"))
    ctx.created["reply templates"] += created
    _ack, ack_created = auto_acknowledgement_ensure()
    ctx.created["auto acknowledgements"] += ack_created
    if not ctx.customers:
        return
    existing = set(
        InquiryMessage.objects.filter(
            message_id__in=[_message_id(n) for n in range(len(SCENARIOS))]
        ).values_list("message_id", flat=True)
    )
    by_channel = customers_by_channel(ctx.customers)
    anyone = by_channel[Channel.EMAIL] or ctx.customers
    now = timezone.now()
    for number, scenario in enumerate(SCENARIOS):
        if _message_id(number) in existing:
            ctx.kept["inquiries"] += 1
            continue
        if scenario.claimant is not None:
            if scenario.claimant >= len(ctx.customers):
                continue
            customer = ctx.customers[scenario.claimant]
        else:
            pool = by_channel.get(scenario.channel) or anyone
            if scenario.channel != Channel.LINE:  # replies go by email
                pool = [c for c in pool if c.email] or pool
            customer = ctx.rng("tickets", number).choice(pool)
        order = customer.orders.order_by("-ordered_at", "-id").first()
        inquiry = inquiry_create(
            customer=customer,
            channel=scenario.channel,
            message=InboundMessage(
                subject=scenario.subject,
                body_text=scenario.body,
                message_id=_message_id(number),
                received_at=now - timedelta(hours=scenario.hours_ago),
                attachments=[
                    AttachmentData("不具合の様子.mp4", "video/mp4", None, 48 * 1024 * 1024)
                ]
                if scenario.video
                else (),
            ),
            order=order,
            priority=scenario.priority,
            author=ctx.users.get("agent") if scenario.channel == Channel.PHONE else None,
        )
        if scenario.channel == Channel.EMAIL:
            inquiry_auto_acknowledge(inquiry=inquiry)
        _play(scenario, inquiry, ctx, templates)
        ctx.created["inquiries"] += 1
    sla_watch()


# The past first, so that this month's references run in time order.
DEMO_STEPS = [history_demo, helpdesk_settings_demo, tickets_demo, helpdesk_demo]
