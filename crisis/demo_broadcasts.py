"""Demo data of the emergency broadcast: the Japanese templates a manager
picks on the incident page — the broadcast (marketing: it points customers
to the channels that work) by email and LINE, and the notice to customers
whose orders are held up (transactional). The integrator adds STEPS to
crisis/demo.py; safe to run twice (a template that exists is left as it
is, edits made in the admin included)."""

from __future__ import annotations

from typing import Any

from outreach.demo import demo_templates_ensure
from outreach.models import MessageTemplate

BROADCAST_EMAIL = "緊急のお知らせ：他店舗のご案内（メール）"
BROADCAST_LINE = "緊急のお知らせ：他店舗のご案内（LINE）"
NOTICE_EMAIL = "障害によるご注文への影響のお知らせ（メール）"

_OTHERS_TEXT = "{% for link in links.others %}・{{ link.name }}\n  {{ link.url }}\n{% endfor %}"

DEMO_BROADCAST_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": BROADCAST_EMAIL,
        "channel": "email",
        "purpose": "marketing",
        "description": "障害時の緊急一斉送信。影響のない販売チャネルへのご案内。",
        "subject": "【{{ shop.name }}】{{ incident.channel_name }}店でのご注文について",
        "body_text": (
            "{{ customer.name }}様\n\n"
            "いつも{{ shop.name }}をご利用いただき、ありがとうございます。\n\n"
            "現在、{{ incident.channel_name }}で障害が発生しており、"
            "{{ incident.channel_name }}店でのご注文やお問い合わせができない状態です。\n"
            "{% if incident.expected_recovery %}"
            "復旧見込み: {{ incident.expected_recovery }}\n"
            "{% else %}復旧の見込みが分かり次第、お知らせいたします。\n{% endif %}\n"
            "ご不便をおかけし申し訳ございません。"
            "その間は、以下の店舗で同じ商品をお買い求めいただけます。\n\n"
            + _OTHERS_TEXT
            + "\nすでにいただいているご注文は、復旧後に順番に確認してご連絡いたします。\n"
        ),
    },
    {
        "name": BROADCAST_LINE,
        "channel": "line",
        "purpose": "marketing",
        "description": "障害時の緊急一斉送信（LINE）。全員に同じ文面のため一斉配信されます。",
        "line_messages": [
            "【{{ shop.name }}より大切なお知らせ】\n"
            "現在、{{ incident.channel_name }}で障害が発生しており、"
            "{{ incident.channel_name }}店でのご注文ができない状態です。"
            "{% if incident.expected_recovery %}\n復旧見込み: {{ incident.expected_recovery }}"
            "{% endif %}",
            "その間は、こちらの店舗をご利用ください。\n"
            "{% for link in links.others %}{% if link.channel != 'line' %}"
            "\n▶ {{ link.name }}\n{{ link.url }}{% endif %}{% endfor %}",
        ],
    },
    {
        "name": NOTICE_EMAIL,
        "channel": "email",
        "purpose": "transactional",
        "description": "障害・配送遅延で止まっているご注文のお客様へのお知らせ。",
        "subject": "【{{ shop.name }}】ご注文の処理・お届けの遅れについて",
        "body_text": (
            "{{ customer.name }}様\n\n"
            "{{ shop.name }}でございます。\n"
            "{{ incident.title }}のため、ご注文の処理・お届けが遅れております。\n"
            "{% if incident.expected_recovery %}"
            "復旧見込み: {{ incident.expected_recovery }}\n"
            "{% else %}復旧の見込みが分かり次第、改めてご連絡いたします。\n{% endif %}\n"
            "ご迷惑をおかけしておりますことを、心よりお詫び申し上げます。\n"
            "復旧後、順番に手配し、発送時に改めてご連絡いたします。\n\n"
            "{{ shop.company }}\n{{ shop.name }}\n"
            "お問い合わせ: {{ shop.contact_email }} / {{ shop.contact_phone }}\n"
        ),
    },
]


def broadcast_demo(ctx) -> None:
    """Demo step for `manage.py demo_data` (see crisis/demo.py)."""
    before = MessageTemplate.objects.count()
    demo_templates_ensure(actor=ctx.users.get("manager"), definitions=DEMO_BROADCAST_TEMPLATES)
    ctx.created["message templates"] += MessageTemplate.objects.count() - before


STEPS = [broadcast_demo]
