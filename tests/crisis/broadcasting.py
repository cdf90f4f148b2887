"""Incidents, templates and customers for the broadcast tests, built
through the services."""

from __future__ import annotations

import itertools
from datetime import timedelta

from django.utils import timezone

from crisis.models import Incident, IncidentKind
from crm import services as crm
from crm.models import Customer
from outreach import services as outreach
from outreach.models import MessageTemplate

_serial = itertools.count(1)

BROADCAST_EMAIL_BODY = (
    "{{ customer.name }}様\n\n{{ incident.channel_name }}で障害が発生しています"
    "（復旧見込み: {{ incident.expected_recovery }}）。\n"
    "その間は次の店舗をご利用ください。\n"
    "{% for link in links.others %}・{{ link.name }}: {{ link.url }}\n{% endfor %}"
)


def incident(*, actor, channel: str = "rakuten", kind: str = IncidentKind.MALL_OUTAGE, **fields):
    now = timezone.now()
    fields.setdefault("title", "楽天市場のシステム障害")
    fields.setdefault("started_at", now - timedelta(minutes=30))
    fields.setdefault("expected_recovery_at", now + timedelta(hours=3))
    return Incident.objects.create(kind=kind, channel=channel, opened_by=actor, **fields)


def broadcast_template(channel: str = "email", *, purpose: str = "marketing") -> MessageTemplate:
    name = f"緊急のお知らせ {channel} {purpose} {next(_serial)}"
    if channel == "email":
        fields = {
            "subject": "【{{ shop.name }}】{{ incident.channel_name }}店の障害について",
            "body_text": BROADCAST_EMAIL_BODY,
        }
    else:
        fields = {
            "line_messages": [
                "{{ incident.channel_name }}店で障害が発生しています。"
                "{% for link in links.others %}\n{{ link.name }}: {{ link.url }}{% endfor %}"
            ]
        }
    return outreach.template_save(
        template=MessageTemplate(name=name, channel=channel, purpose=purpose, **fields)
    )


def notice_template(channel: str = "email") -> MessageTemplate:
    return outreach.template_save(
        template=MessageTemplate(
            name=f"ご注文への影響のお知らせ {next(_serial)}",
            channel=channel,
            purpose="transactional",
            subject="ご注文の発送が遅れています",
            body_text="{{ customer.name }}様\n復旧見込み: {{ incident.expected_recovery }}",
        )
    )


def person(channel: str = "rakuten", **profile) -> Customer:
    n = next(_serial)
    profile.setdefault("family_name", "田中")
    profile.setdefault("given_name", f"花子{n}")
    profile.setdefault("email", f"hanako{n}@example.jp")
    customer, _created = crm.customer_upsert(
        channel=channel, external_id=profile.pop("external_id", f"{channel}-{n}"), **profile
    )
    return customer


def opt_in(customer: Customer, *channels: str) -> Customer:
    for channel in channels or ("email",):
        crm.consent_record(customer=customer, channel=channel, action="opt_in", source="api")
    return customer
