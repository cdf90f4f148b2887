"""`manage.py demo_data`: a believable Japanese shop to click through.

Deterministic (every person comes from a random generator seeded with the
seed and the person's number) and safe to run again: a person whose first
channel identity already exists is left as it is, so a second run creates
nothing and edits made in the admin survive `make run`. Every write goes
through the services (`customer_upsert`, `order_upsert`, `consent_record`,
`customer_claimant_set`, `lifecycle_recompute`).

The command runs steps, each a function taking the `DemoContext`:

    users → customers (identities, orders, consent) → claimants
          → the steps of the other apps → lifecycle

Another app adds its own demo data by defining, in `<app>/demo.py`:

    DEMO_STEPS = [tickets_demo]       # functions taking a DemoContext

They run after crm's steps, in INSTALLED_APPS order, inside the same
transaction. A step must be safe to run twice; it finds the demo staff in
`ctx.users`, the demo customers in `ctx.customers`, draws its randomness
from `ctx.rng("tickets", n)` and counts what it made in `ctx.created`.
"""

from __future__ import annotations

import importlib
import importlib.util
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from core.roles import AGENT, MANAGER, MARKETER
from crm.demo_people import DemoPerson, consent_wording, person_generate
from crm.demo_tables import CLAIMANT_REASONS
from crm.models import (
    Customer,
    CustomerEventKind,
    LifecycleSegment,
)
from crm.services import (
    consent_record,
    customer_claimant_set,
    customer_resolve,
    customer_upsert,
    lifecycle_recompute,
    order_upsert,
)
from outreach.line_profiles import line_nicknames_fill

DEFAULT_SEED = 20250401
DEFAULT_CUSTOMERS = 300
DEMO_PASSWORD = "madoguchi-demo"  # printed by demo_banner, on purpose


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str  # a group of core.roles, or "" for the superuser
    last_name: str
    first_name: str
    role_ja: str
    role_en: str


DEMO_USERS = (
    DemoUser("admin", "", "管理", "太郎", "システム管理者（全権限）", "superuser"),
    DemoUser("agent", AGENT, "佐藤", "美咲", "サポート担当", "support agent"),
    DemoUser("marketer", MARKETER, "高橋", "健太", "マーケティング担当", "marketer"),
    DemoUser("manager", MANAGER, "田中", "誠", "店長・マネージャー", "manager"),
)


@dataclass
class DemoContext:
    """What the steps share."""

    seed: int
    people: int  # how many demo people the customers step makes
    today: datetime  # 00:00 today, local time: everything generated is before it
    write: Callable[[str], None] = print
    users: dict[str, Any] = field(default_factory=dict)  # username -> User
    customers: list[Customer] = field(default_factory=list)  # in person order
    created: Counter = field(default_factory=Counter)  # what this run made
    kept: Counter = field(default_factory=Counter)  # what was there already

    def rng(self, *key: object) -> random.Random:
        """A generator of its own per key, so that one step or one person
        drawing more numbers never changes what the others get."""
        return random.Random(":".join(str(part) for part in (self.seed, *key)))


DemoStep = Callable[[DemoContext], None]


# --- Steps ---------------------------------------------------------------------


def users_step(ctx: DemoContext) -> None:
    """The superuser and one staff member per role, all with DEMO_PASSWORD.
    Existing users are left as they are (their password too)."""
    User = get_user_model()
    hashed = None  # hashing is slow on purpose: do it once for all four
    for spec in DEMO_USERS:
        user = User.objects.filter(username=spec.username).first()
        if user is None:
            hashed = hashed or make_password(DEMO_PASSWORD)
            create = User.objects.create_superuser if not spec.role else User.objects.create_user
            user = create(
                spec.username,
                email=f"{spec.username}@shop.example.jp",
                password=None,
                last_name=spec.last_name,
                first_name=spec.first_name,
                is_staff=True,
                is_superuser=not spec.role,
            )
            user.password = hashed
            user.save(update_fields=["password"])
            ctx.created["users"] += 1
        if spec.role:
            group, _created = Group.objects.get_or_create(name=spec.role)
            user.groups.add(group)
        ctx.users[spec.username] = user


def customers_step(ctx: DemoContext) -> None:
    """Demo people with their channel identities, orders and consent. A
    person whose first identity exists already is skipped whole."""
    taken: set[str] = set()
    for index in range(ctx.people):
        person = person_generate(index=index, seed=ctx.seed, today=ctx.today, taken=taken)
        first = person.identities[0]
        existing = customer_resolve(channel=first.channel, external_id=first.external_id)
        if existing.customer is not None:
            ctx.customers.append(existing.customer)
            ctx.kept["people"] += 1
            continue
        ctx.customers.append(person_save(person, ctx))
    # LINE friends without a name show as 「LINE: さくら」 on staff screens.
    line_nicknames_fill()


def person_save(person: DemoPerson, ctx: DemoContext) -> Customer:
    customer = None
    for spec in person.identities:
        found, created = customer_upsert(
            channel=spec.channel,
            external_id=spec.external_id,
            identity_display_name=spec.display_name,
            tags=spec.tags,
            **spec.profile,
        )
        if customer is not None and found.pk != customer.pk:
            raise CommandError(
                f"demo person {person.index}: {spec.channel} was not linked to the "
                f"customer made from {person.identities[0].channel} (identity resolution?)"
            )
        customer = found
        ctx.created["customers"] += created
        ctx.created["channel identities"] += 1
    assert customer is not None
    if len(person.identities) > 1:
        ctx.created["customers on several channels"] += 1
    for order in person.orders:
        _order, created = order_upsert(
            channel=order.channel,
            order_number=order.order_number,
            customer=customer,
            ordered_at=order.ordered_at,
            total=order.total,
            status=order.status,
            shipped_at=order.shipped_at,
            delivered_at=order.delivered_at,
            lines=order.lines,
        )
        ctx.created["orders"] += created
    for consent in person.consents:
        consent_record(
            customer=customer,
            channel=consent.channel,
            action=consent.action,
            source=consent.source,
            occurred_at=consent.occurred_at,
            wording_version=consent_wording(consent.occurred_at),
            note=consent.note,
        )
        ctx.created["consent events"] += 1
    return customer


def claimants_step(ctx: DemoContext) -> None:
    """Flag the demo claimants, as the manager would after a hard case."""
    manager = ctx.users.get("manager")
    for index, reason in CLAIMANT_REASONS.items():
        if index >= len(ctx.customers):
            continue
        customer = ctx.customers[index]
        # Flagged before, or cleared by someone since: leave it be.
        if customer.events.filter(kind__in=CLAIMANT_EVENT_KINDS).exists():
            ctx.kept["claimants"] += 1
            continue
        customer_claimant_set(customer=customer, reason=reason, actor=manager)
        ctx.created["claimants"] += 1


CLAIMANT_EVENT_KINDS = (CustomerEventKind.CLAIMANT_FLAGGED, CustomerEventKind.CLAIMANT_CLEARED)


def lifecycle_step(ctx: DemoContext) -> None:
    lifecycle_recompute()


CRM_STEPS: list[DemoStep] = [users_step, customers_step, claimants_step]
FINAL_STEPS: list[DemoStep] = [lifecycle_step]


def app_steps() -> list[DemoStep]:
    """DEMO_STEPS of every installed app's `demo` module, in app order."""
    steps: list[DemoStep] = []
    for app_config in apps.get_app_configs():
        name = f"{app_config.name}.demo"
        if Path(app_config.path).parent != Path(settings.BASE_DIR):
            continue  # only this project's apps
        if importlib.util.find_spec(name) is None:
            continue
        steps.extend(getattr(importlib.import_module(name), "DEMO_STEPS", []))
    return steps


def demo_steps() -> list[DemoStep]:
    return [*CRM_STEPS, *app_steps(), *FINAL_STEPS]


class Command(BaseCommand):
    help = "Load Japanese demo data (users, customers, orders, consent). Safe to run again."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--customers",
            type=int,
            default=DEFAULT_CUSTOMERS,
            help=f"how many demo people (default {DEFAULT_CUSTOMERS})",
        )
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
        )

    def handle(self, *args, customers: int, seed: int, **options) -> None:
        if customers < 0:
            raise CommandError("--customers must be 0 or more")
        started = time.monotonic()
        ctx = DemoContext(
            seed=seed,
            people=customers,
            today=timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0),
            write=self.stdout.write,
        )
        with transaction.atomic():
            for step in demo_steps():
                step(ctx)
        self._summary(ctx, time.monotonic() - started)

    def _summary(self, ctx: DemoContext, seconds: float) -> None:
        segments = dict(
            Customer.objects.filter(merged_into__isnull=True)
            .values_list("lifecycle_segment")
            .annotate(n=Count("id"))
        )
        created = ", ".join(f"{name} {n}" for name, n in ctx.created.items() if n) or "nothing"
        kept = ", ".join(f"{name} {n}" for name, n in ctx.kept.items() if n)
        self.stdout.write(
            self.style.SUCCESS(f"デモデータ / demo data (seed {ctx.seed}, {ctx.people} people):")
        )
        self.stdout.write(f"  作成 / created: {created}")
        if kept:
            self.stdout.write(f"  既存のまま / already there: {kept}")
        self.stdout.write(
            "  セグメント / segments: "
            + ", ".join(f"{seg} {segments.get(seg, 0)}" for seg in LifecycleSegment.values)
        )
        self.stdout.write(f"  {seconds:.1f} s")
