"""The demo's people: Japanese names, addresses, phones in every format
people type them, and each person's identities, orders and consent history,
generated from a seeded random generator without touching the database
(`manage.py demo_data` saves them through the services)."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings

from core.choices import Channel
from crm.demo_tables import (
    ADDRESSES,
    ARCHETYPE_WEIGHTS,
    BUILDINGS,
    BUYER_CHANNELS,
    CONSENT_WORDINGS,
    EMAIL_DOMAINS,
    FAMILY_NAMES,
    FIXED_PEOPLE,
    FREE_SHIPPING_FROM,
    GIFTS,
    GIVEN_NAMES,
    MULTI_CHANNEL_SHARE,
    NEW,
    ORDER_CHANNELS,
    PRODUCTS,
    PROSPECT,
    PROSPECT_CHANNELS,
    RAKUTEN_SHOP_ID,
    SECONDARY_CHANNELS,
    SHIPPING_FEE,
    SLEEPING,
    VIP,
    YAHOO_STORE_ID,
)
from crm.models import (
    ConsentAction,
    ConsentChannel,
    ConsentSource,
    OrderStatus,
)
from crm.services import (
    OrderLineData,
)

# --- One demo person, generated without touching the database ---------------


@dataclass
class IdentitySpec:
    channel: str
    external_id: str
    display_name: str
    profile: dict[str, Any]
    tags: tuple[str, ...] = ()


@dataclass
class OrderSpec:
    channel: str
    order_number: str
    ordered_at: datetime
    status: str
    shipped_at: datetime | None
    delivered_at: datetime | None
    lines: list[OrderLineData]
    total: int


@dataclass
class ConsentSpec:
    channel: str
    action: str
    source: str
    occurred_at: datetime
    note: str = ""


@dataclass
class DemoPerson:
    index: int
    archetype: str
    identities: list[IdentitySpec]
    orders: list[OrderSpec]
    consents: list[ConsentSpec]


def _weighted(rng: random.Random, weights: dict) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _hiragana(katakana: str) -> str:
    return "".join(chr(ord(ch) - 0x60) if "ァ" <= ch <= "ヶ" else ch for ch in katakana)


def _phone_parts(rng: random.Random, area_code: str) -> tuple[str, str, str]:
    """A mobile number mostly, else a landline in the person's area."""
    last = f"{rng.randrange(10**4):04d}"
    if rng.random() < 0.8:
        return rng.choice(("090", "080", "070")), f"{rng.randrange(10**4):04d}", last
    width = 6 - len(area_code)  # ten digits in all
    middle = rng.randrange(2, 10) * 10 ** (width - 1) + rng.randrange(10 ** (width - 1))
    return area_code, str(middle), last


def _phone_format(parts: tuple[str, str, str], style: str) -> str:
    """The ways people actually type a number into a form."""
    area, middle, last = parts
    if style == "plain":
        return area + middle + last
    if style == "intl":
        return f"+81 {area[1:]} {middle} {last}"
    if style == "intl_hyphen":
        return f"+81-{area[1:]}-{middle}-{last}"
    if style == "fullwidth":
        return f"{area}-{middle}-{last}".translate(_FULLWIDTH)
    if style == "paren":
        return f"{area}({middle}){last}"
    return f"{area}-{middle}-{last}"


_FULLWIDTH = str.maketrans({**{d: chr(ord("０") + int(d)) for d in string.digits}, "-": "－"})
PHONE_STYLES = {"hyphen": 60, "plain": 12, "intl": 8, "intl_hyphen": 4, "fullwidth": 10, "paren": 6}


# Weights of the hours 7:00 to 23:00: people shop in the evening.
SHOPPING_HOURS = (1, 2, 3, 3, 3, 4, 5, 4, 3, 3, 4, 5, 7, 9, 10, 9, 6)


def _at(rng: random.Random, day: datetime) -> datetime:
    """A moment of `day` (a midnight) when people shop."""
    hour = rng.choices(range(7, 24), weights=SHOPPING_HOURS)[0]
    return day + timedelta(hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60))


def consent_wording(moment: datetime) -> str:
    current = CONSENT_WORDINGS[0][1]
    for since, version in CONSENT_WORDINGS:
        if moment.date() >= since:
            current = version
    return current


def person_generate(*, index: int, seed: int, today: datetime, taken: set[str]) -> DemoPerson:
    """Demo person number `index`: the same person for the same seed,
    whatever the number of people asked for. `taken` holds the emails and
    phone numbers already given out, so that no two people share one."""
    rng = random.Random(f"{seed}:person:{index}")
    if index in FIXED_PEOPLE:
        archetype, primary, secondaries = FIXED_PEOPLE[index]
    else:
        archetype = _weighted(rng, ARCHETYPE_WEIGHTS)
        primary = _weighted(rng, PROSPECT_CHANNELS if archetype == PROSPECT else BUYER_CHANNELS)
        secondaries = ()
        if rng.random() < MULTI_CHANNEL_SHARE:
            options = SECONDARY_CHANNELS[primary]
            count = 1 if rng.random() < 0.75 or len(options) == 1 else 2
            secondaries = tuple(channel for channel, _key in rng.sample(options, count))

    family, family_kana, family_roman = rng.choice(FAMILY_NAMES)
    given, given_kana, given_roman = rng.choice(GIVEN_NAMES)
    prefecture, postal_code, town, area_code, _weight = rng.choices(
        ADDRESSES, weights=[int(row[4]) for row in ADDRESSES]
    )[0]
    street = f"{rng.randint(1, 5)}-{rng.randint(1, 30)}-{rng.randint(1, 20)}"
    if rng.random() < 0.4:
        street += f" {rng.choice(BUILDINGS)}{rng.randint(1, 8)}0{rng.randint(1, 9)}"
    while True:
        parts = _phone_parts(rng, area_code)
        if "".join(parts) not in taken:
            break
    taken.add("".join(parts))
    phone_style = _weighted(rng, PHONE_STYLES)
    local = rng.choice(
        (
            f"{given_roman}.{family_roman}",
            f"{family_roman}.{given_roman}",
            f"{given_roman}{rng.randint(1, 99):02d}",
            f"{family_roman}_{given_roman[0]}{rng.randint(60, 99)}",
        )
    )
    domain = rng.choice(EMAIL_DOMAINS)
    while f"{local}@{domain}" in taken:
        local += str(rng.randint(0, 9))
    email = f"{local}@{domain}"
    taken.add(email)
    names = {
        "family_name": family,
        "given_name": given,
        "family_name_kana": family_kana,
        "given_name_kana": given_kana,
    }
    address = {"postal_code": postal_code, "prefecture": prefecture, "address": town + street}
    birthday = date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28))
    phone = _phone_format(parts, phone_style)
    full_name = f"{family} {given}"
    keys = {
        key
        for channel in secondaries
        for option, key in SECONDARY_CHANNELS[primary]
        if option == channel
    }

    def identity(channel: str, key: str = "") -> IdentitySpec:
        """What `channel` tells the shop about this person. A linked
        record carries the linking key as typed on that channel."""
        profile: dict[str, Any]
        tags: tuple[str, ...] = ()
        if channel == Channel.RAKUTEN:
            external_id = f"{rng.randrange(10**9, 10**10)}"
            profile = {**names, "email": email, "phone": phone, **address}
            display = full_name
        elif channel == Channel.AMAZON:
            masked = "".join(rng.choices("0123456789abcdefghijklmnopqrstuvwxyz", k=15))
            external_id = f"{masked}@marketplace.amazon.co.jp"
            # Amazon gives no reading (kana) and masks the address.
            profile = {"family_name": family, "given_name": given, "email": external_id}
            profile |= {"phone": phone, **address}
            display = full_name
        elif channel == Channel.YAHOO:
            external_id = f"{given_roman}_{family_roman}{rng.randint(1000, 9999)}"
            while external_id in taken:
                external_id += str(rng.randint(0, 9))
            taken.add(external_id)
            profile = {**names, "email": email, "phone": phone, **address}
            display = full_name
        elif channel == Channel.OWN_SITE:
            external_id = f"M{100000 + index:07d}"
            profile = {**names, "email": email, "phone": phone, **address}
            if rng.random() < 0.6:
                profile["birthday"] = birthday
            display = full_name
        elif channel == Channel.STORE:
            external_id = f"SC-{2_000_000_000 + index * 37:010d}"
            profile = {**names, "phone": phone, **address}
            if "email" in keys or rng.random() < 0.5:
                profile["email"] = email
            display = full_name
            tags = ("店舗会員",)
        elif channel == Channel.LINE:
            external_id = "U" + "".join(rng.choices("0123456789abcdef", k=32))
            profile = dict(names) if (secondaries or rng.random() < 0.5) else {}
            if "email" in keys or key == "email":
                profile["email"] = email
            display = rng.choice(
                (
                    _hiragana(given_kana),
                    given_roman.capitalize(),
                    _hiragana(given_kana) + rng.choice(("🍵", "🌸", "☕", "✨")),
                    full_name,
                )
            )
        else:  # email: a newsletter sign-up or a mail to the shop
            external_id = email
            profile = {"email": email}
            if rng.random() < 0.6:
                profile |= names
            display = full_name if "family_name" in profile else ""
        if key == "email":
            profile["email"] = email.capitalize()  # same address, typed differently
        elif key == "phone":
            other = _weighted(rng, {s: w for s, w in PHONE_STYLES.items() if s != phone_style})
            profile["phone"] = _phone_format(parts, other)
        return IdentitySpec(channel, external_id, display, profile, tags)

    identities = [identity(primary)]
    for channel in secondaries:
        key = next(k for option, k in SECONDARY_CHANNELS[primary] if option == channel)
        identities.append(identity(channel, key))
    if archetype == VIP:
        identities[0].tags += ("ギフト利用",)
    if rng.random() < 0.03:
        identities[0].tags += ("法人",)

    order_rng = random.Random(f"{seed}:orders:{index}")
    order_channels = [spec.channel for spec in identities if spec.channel in ORDER_CHANNELS]
    orders = _orders_generate(order_rng, index, archetype, order_channels, today)
    joined = min([o.ordered_at for o in orders], default=today) - timedelta(
        days=order_rng.randint(1, 60)
    )
    if not orders:
        joined = _at(order_rng, today - timedelta(days=order_rng.randint(3, 700)))
    has_real_email = primary != Channel.AMAZON and any(
        "email" in spec.profile for spec in identities
    )
    consents = _consents_generate(
        random.Random(f"{seed}:consent:{index}"),
        channels=[spec.channel for spec in identities],
        has_real_email=has_real_email,
        joined=joined,
        today=today,
    )
    return DemoPerson(
        index=index,
        archetype=archetype,
        identities=identities,
        orders=orders,
        consents=consents,
    )


def _orders_generate(
    rng: random.Random, index: int, archetype: str, channels: list[str], today: datetime
) -> list[OrderSpec]:
    if not channels:
        return []
    sleeping = settings.LIFECYCLE_SLEEPING_DAYS
    if archetype == PROSPECT:
        # Now and then a prospect whose only order was cancelled.
        days = [rng.randint(5, 300)] if rng.random() < 0.1 else []
    elif archetype == NEW:
        # Some so fresh that they are still to be shipped or on their way.
        days = [rng.randint(1, 4) if rng.random() < 0.2 else rng.randint(1, sleeping - 10)]
    elif archetype == SLEEPING:
        days = [rng.randint(sleeping + 5, 730) for _ in range(rng.randint(1, 5))]
    elif archetype == VIP:
        count = rng.randint(max(6, settings.LIFECYCLE_VIP_MIN_ORDERS), 12)
        days = [rng.randint(1, 60)] + [rng.randint(1, 730) for _ in range(count - 1)]
    else:
        fewest = settings.LIFECYCLE_REGULAR_MIN_ORDERS
        count = rng.randint(fewest, max(fewest, min(5, settings.LIFECYCLE_VIP_MIN_ORDERS - 1)))
        days = [rng.randint(1, sleeping - 10)] + [rng.randint(1, 730) for _ in range(count - 1)]
    days.sort(reverse=True)
    orders = [
        _order(rng, index, serial, rng.choice(channels), today, d, gift=archetype == VIP)
        for serial, d in enumerate(days)
    ]
    if archetype == PROSPECT:
        for order in orders:
            order.status, order.shipped_at, order.delivered_at = OrderStatus.CANCELLED, None, None
    elif archetype == VIP:
        # Top up with the big gift set until the spend makes a VIP.
        sku, name, price, _weight = GIFTS[2]
        while sum(o.total for o in orders) < settings.LIFECYCLE_VIP_MIN_SPENT * 11 // 10:
            order = rng.choice(orders)
            line = next((line for line in order.lines if line.sku == sku), None)
            if line is None:
                order.lines.append(OrderLineData(sku, name.replace("_", " "), 1, int(price)))
            else:
                order.lines[order.lines.index(line)] = replace(line, quantity=line.quantity + 1)
            order.total += int(price)
    # A few orders that do not count: cancelled, or sent back.
    if orders and rng.random() < 0.08:
        extra = _order(rng, index, len(orders), rng.choice(channels), today, rng.randint(2, 700))
        if rng.random() < 0.7:
            extra.status, extra.shipped_at, extra.delivered_at = OrderStatus.CANCELLED, None, None
        elif extra.delivered_at is not None:
            extra.status = OrderStatus.RETURNED
        orders.append(extra)
    return orders


def _order(
    rng: random.Random,
    index: int,
    serial: int,
    channel: str,
    today: datetime,
    age: int,
    *,
    gift: bool = False,
) -> OrderSpec:
    """Order number `serial` of person `index`, placed `age` days ago."""
    ordered_at = _at(rng, today - timedelta(days=age))
    catalogue = GIFTS if gift and rng.random() < 0.7 else PRODUCTS
    picked: list[tuple[str, ...]] = []
    for _ in range(rng.choices((1, 2, 3), (6, 3, 1))[0]):
        row = rng.choices(catalogue, weights=[int(row[3]) for row in catalogue])[0]
        if row not in picked:
            picked.append(row)
    lines = [
        OrderLineData(
            sku=sku,
            name=name.replace("_", " "),
            quantity=rng.choices((1, 2, 3), (7, 2, 1))[0],
            unit_price=int(price),
        )
        for sku, name, price, _weight in picked
    ]
    subtotal = sum(line.quantity * line.unit_price for line in lines)
    shipping = 0 if channel == Channel.STORE or subtotal >= FREE_SHIPPING_FROM else SHIPPING_FEE
    number = index * 100 + serial
    amazon_prefix, amazon_tail = rng.choice(("249", "250", "503")), rng.randrange(10**7)
    order_number = {
        Channel.RAKUTEN: f"{RAKUTEN_SHOP_ID}-{ordered_at:%Y%m%d}-{1_000_000_000 + number:010d}",
        Channel.AMAZON: f"{amazon_prefix}-{number:07d}-{amazon_tail:07d}",
        Channel.YAHOO: f"{YAHOO_STORE_ID}-{10_000_000 + number}",
        Channel.OWN_SITE: f"MD-{ordered_at:%y%m}-{number:06d}",
        Channel.STORE: f"POS-SBY-{ordered_at:%Y%m%d}-{number:06d}",
    }[channel]  # type: ignore[index]  # TextChoices members are str: a str value finds them
    shipped_at = delivered_at = None
    if channel == Channel.STORE:
        status, delivered_at = OrderStatus.DELIVERED, ordered_at
    elif age <= 1:
        status = OrderStatus.PAID
    else:
        status = OrderStatus.SHIPPED
        shipped_at = (ordered_at + timedelta(days=1)).replace(hour=rng.randint(10, 18))
        if age > 3:
            status = OrderStatus.DELIVERED
            delivered_at = shipped_at + timedelta(days=rng.randint(1, 2), hours=rng.randint(0, 4))
    return OrderSpec(
        channel=channel,
        order_number=order_number,
        ordered_at=ordered_at,
        status=status,
        shipped_at=shipped_at,
        delivered_at=delivered_at,
        lines=lines,
        total=subtotal + shipping,
    )


def _consents_generate(
    rng: random.Random,
    *,
    channels: list[str],
    has_real_email: bool,
    joined: datetime,
    today: datetime,
) -> list[ConsentSpec]:
    consents = []

    def later(after: datetime) -> datetime | None:
        """A moment on a day after `after` and before today, if any."""
        span = (today.date() - after.date()).days - 1
        if span < 1:
            return None
        midnight = after.replace(hour=0, minute=0, second=0, microsecond=0)
        return _at(rng, midnight + timedelta(days=rng.randint(1, span)))

    primary = channels[0]
    if has_real_email and (primary == Channel.EMAIL or rng.random() < 0.55):
        source = {
            Channel.OWN_SITE: ConsentSource.WEB_FORM,
            Channel.EMAIL: ConsentSource.WEB_FORM,
            Channel.STORE: ConsentSource.STORE,
            Channel.LINE: ConsentSource.WEB_FORM,
        }.get(primary, ConsentSource.IMPORT)  # type: ignore[call-overload]  # TextChoices members are str: a str value finds them
        note = "モール注文時のメルマガ希望から取り込み" if source == ConsentSource.IMPORT else ""
        consents.append(
            ConsentSpec(ConsentChannel.EMAIL, ConsentAction.OPT_IN, source, joined, note)
        )
        left = later(joined)
        if left is not None and rng.random() < 0.1:
            consents.append(
                ConsentSpec(
                    ConsentChannel.EMAIL,
                    ConsentAction.OPT_OUT,
                    ConsentSource.UNSUBSCRIBE,
                    left,
                    "メール末尾の配信停止リンクから",
                )
            )
    if Channel.LINE in channels:
        followed = joined + timedelta(hours=rng.randint(1, 400))
        followed = min(followed, today - timedelta(hours=1))
        consents.append(
            ConsentSpec(
                ConsentChannel.LINE,
                ConsentAction.OPT_IN,
                ConsentSource.LINE,
                followed,
                "友だち追加",
            )
        )
        blocked = later(followed)
        if blocked is not None and rng.random() < 0.12:
            consents.append(
                ConsentSpec(
                    ConsentChannel.LINE,
                    ConsentAction.OPT_OUT,
                    ConsentSource.LINE,
                    blocked,
                    "ブロック",
                )
            )
    if Channel.STORE in channels and rng.random() < 0.3:
        consents.append(
            ConsentSpec(
                ConsentChannel.DM, ConsentAction.OPT_IN, ConsentSource.STORE, joined, "会員申込書"
            )
        )
    return consents
