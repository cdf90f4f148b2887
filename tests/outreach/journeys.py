"""Journeys for tests, built through the services."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from crm import services as crm
from crm.models import Customer
from outreach import services
from outreach.models import Journey, JourneyStep, MessageTemplate
from tests.crm import factories

JST = ZoneInfo("Asia/Tokyo")


def jst(*args) -> datetime:
    return datetime(*args, tzinfo=JST)


def template(name: str, *, purpose: str = "marketing", body: str = "", **fields) -> MessageTemplate:
    return services.template_save(
        template=MessageTemplate(
            name=name,
            channel="email",
            purpose=purpose,
            subject=fields.pop("subject", f"{name}のご案内"),
            body_text=body or "{{ customer.family_name }}様\n\nいつもありがとうございます。",
            **fields,
        )
    )


def journey(
    name: str, *, trigger: str, steps: list[dict], active: bool = True, **fields
) -> Journey:
    """A journey with `steps` (JourneyStep fields; `template` defaults to a
    new template named after the step), turned on. Named apart from the
    built-in journeys."""
    name = f"{name}（試験）"
    transactional = fields.get("is_transactional", False)
    built = []
    for index, step in enumerate(steps, start=1):
        step = dict(step)
        step.setdefault("name", f"{name} {index}")
        if "template" not in step:
            step["template"] = template(
                step["name"], purpose="transactional" if transactional else "marketing"
            )
        built.append(JourneyStep(**step))
    saved = services.journey_save(
        journey=Journey(name=name, trigger=trigger, channel="email", **fields), steps=built
    )
    if active:
        services.journey_activate(journey=saved)
    return saved


def consented(**profile) -> Customer:
    customer = factories.customer(**profile)
    crm.consent_record(customer=customer, channel="email", action="opt_in", source="web_form")
    return customer


def order(customer: Customer, number: str, *, channel: str = "own_site", **fields):
    fields.setdefault("ordered_at", timezone.now() - timedelta(hours=1))
    fields.setdefault("total", 5000)
    fields.setdefault("status", "paid")
    placed, _ = crm.order_upsert(channel=channel, order_number=number, customer=customer, **fields)
    return placed
