"""The built-in journeys (Japanese), with their templates (the open Send of
each step is made when someone first enters it: outreach.services.journeys): order
confirmation and shipping notice (transactional, on), and, off until a
marketer turns them on, the follow-up after delivery, the review request,
the win-back of sleeping customers and one sequence per lifecycle segment
(seed 004: new → welcome and product guide; regular → related products;
VIP → a personal note from the shop; claimant → none)."""

from django.db import migrations

from core.roles import MANAGER, MARKETER, role_permissions_grant

FOOTER = "\n\n{{ shop.name }}"

TEMPLATES = {
    "order_confirmation": (
        "【自動】ご注文確認",
        "transactional",
        "ご注文ありがとうございます（注文番号 {{ order.order_number }}）",
        "{{ customer.family_name }}様\n\nこのたびはご注文いただき、ありがとうございます。\n"
        "注文番号：{{ order.order_number }}\nご注文金額：{{ order.total }}円\n\n"
        "発送しましたら、あらためてお知らせいたします。",
    ),
    "shipping_notice": (
        "【自動】発送のご連絡",
        "transactional",
        "ご注文の商品を発送しました（注文番号 {{ order.order_number }}）",
        "{{ customer.family_name }}様\n\nご注文の商品を本日発送いたしました。\n"
        "注文番号：{{ order.order_number }}\n\nお届けまでいましばらくお待ちください。",
    ),
    "follow_up": (
        "【自動】到着後のフォロー",
        "marketing",
        "商品はお手元に届きましたか",
        "{{ customer.family_name }}様\n\n先日お届けした商品はいかがでしょうか。\n"
        "使い方やお手入れでご不明な点があれば、このメールにご返信ください。",
    ),
    "review_request": (
        "【自動】レビューのお願い",
        "transactional",
        "ご購入いただいた商品のご感想をお聞かせください",
        "{{ customer.family_name }}様\n\nご購入いただいた商品はいかがでしたか。\n"
        "よろしければ、率直なご感想をレビューでお聞かせください。\n"
        "今後の商品づくりの参考にさせていただきます。",
    ),
    "win_back": (
        "【自動】休眠のお客様へ",
        "marketing",
        "{{ customer.family_name }}様、お久しぶりです",
        "{{ customer.family_name }}様\n\nしばらくご利用がございませんが、お変わりありませんか。\n"
        "新しい商品も入荷しておりますので、ぜひまたお立ち寄りください。",
    ),
    "welcome": (
        "【自動】はじめてのお客様へ",
        "marketing",
        "はじめてのご購入ありがとうございます",
        "{{ customer.family_name }}様\n\nはじめてのご購入、ありがとうございます。\n"
        "当店のこだわりや、お問い合わせ窓口をご案内いたします。",
    ),
    "product_guide": (
        "【自動】商品の楽しみ方ガイド",
        "marketing",
        "商品をもっと楽しんでいただくために",
        "{{ customer.family_name }}様\n\nご購入いただいた商品の楽しみ方や、"
        "長く使っていただくためのコツをご紹介します。",
    ),
    "related_products": (
        "【自動】おすすめ商品のご案内",
        "marketing",
        "{{ customer.family_name }}様へのおすすめ",
        "{{ customer.family_name }}様\n\nいつもご利用ありがとうございます。\n"
        "前回のご購入に合わせて、おすすめの商品をご案内いたします。",
    ),
    "vip_note": (
        "【自動】店主からのお手紙",
        "marketing",
        "いつもありがとうございます",
        "{{ customer.family_name }}様\n\nいつも当店をご愛顧いただき、心より御礼申し上げます。\n"
        "今後とも変わらぬお付き合いをよろしくお願いいたします。",
    ),
}

# name, trigger, transactional, active, lifecycle segments, steps
# (template key, delay days, is review request)
JOURNEYS = [
    ("ご注文確認", "order_placed", True, True, [], [("order_confirmation", 0, False)]),
    ("発送のお知らせ", "order_shipped", True, True, [], [("shipping_notice", 0, False)]),
    ("到着後のフォロー", "order_delivered", False, False, [], [("follow_up", 3, False)]),
    ("レビューのお願い", "order_delivered", True, False, [], [("review_request", 7, True)]),
    ("休眠のお客様へ", "became_sleeping", False, False, [], [("win_back", 0, False)]),
    (
        "新規のお客様へ（ようこそ）",
        "first_order",
        False,
        False,
        [],
        [("welcome", 1, False), ("product_guide", 6, False)],
    ),
    (
        "常連のお客様へ（関連商品）",
        "order_delivered",
        False,
        False,
        ["regular"],
        [("related_products", 10, False)],
    ),
    (
        "VIPのお客様へ（店主より）",
        "order_delivered",
        False,
        False,
        ["vip"],
        [("vip_note", 3, False)],
    ),
]


def create(apps, schema_editor):
    MessageTemplate = apps.get_model("outreach", "MessageTemplate")
    Journey = apps.get_model("outreach", "Journey")
    JourneyStep = apps.get_model("outreach", "JourneyStep")
    templates = {}
    for key, (name, purpose, subject, body) in TEMPLATES.items():
        templates[key], _ = MessageTemplate.objects.get_or_create(
            name=name,
            defaults={
                "channel": "email",
                "purpose": purpose,
                "subject": subject,
                "body_text": body + FOOTER,
                "description": "ステップ配信（組み込み）",
                "is_personal": True,
            },
        )
    for name, trigger, transactional, active, segments, steps in JOURNEYS:
        if Journey.objects.filter(name=name).exists():
            continue
        journey = Journey.objects.create(
            name=name,
            trigger=trigger,
            channel="email",
            is_transactional=transactional,
            is_builtin=True,
            active=active,
            lifecycle_segments=segments,
        )
        for position, (key, days, review) in enumerate(steps, start=1):
            template = templates[key]
            JourneyStep.objects.create(
                journey=journey,
                position=position,
                name=template.name.removeprefix("【自動】"),
                delay_days=days,
                template=template,
                is_review_request=review,
            )


def remove(apps, schema_editor):
    Journey = apps.get_model("outreach", "Journey")
    Send = apps.get_model("outreach", "Send")
    JourneyStep = apps.get_model("outreach", "JourneyStep")
    builtin = Journey.objects.filter(is_builtin=True)
    sends = list(JourneyStep.objects.filter(journey__in=builtin).values_list("send_id", flat=True))
    builtin.delete()
    Send.objects.filter(pk__in=sends).delete()


JOURNEY_PERMISSIONS = [
    "view_journey",
    "add_journey",
    "change_journey",
    "view_journeystep",
    "add_journeystep",
    "change_journeystep",
    "delete_journeystep",
    "view_journeyevent",
]


def grant(apps, schema_editor):
    role_permissions_grant(
        apps, "outreach", {MARKETER: JOURNEY_PERMISSIONS, MANAGER: JOURNEY_PERMISSIONS}
    )


class Migration(migrations.Migration):
    dependencies = [
        ("outreach", "0013_journeys_models"),
        ("outreach", "0002_roles"),
    ]

    operations = [
        migrations.RunPython(create, remove),
        migrations.RunPython(grant, migrations.RunPython.noop),
    ]
