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
import string
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
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
from crm.models import (
    Channel,
    ConsentAction,
    ConsentChannel,
    ConsentSource,
    Customer,
    CustomerEventKind,
    LifecycleSegment,
    OrderStatus,
)
from crm.services import (
    OrderLineData,
    consent_record,
    customer_claimant_set,
    customer_resolve,
    customer_upsert,
    lifecycle_recompute,
    order_upsert,
)

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


# --- Source data -------------------------------------------------------------


def _table(text: str) -> list[tuple[str, ...]]:
    return [tuple(row.split("|")) for row in text.split()]


FAMILY_NAMES = _table(
    """佐藤|サトウ|sato 鈴木|スズキ|suzuki 高橋|タカハシ|takahashi 田中|タナカ|tanaka
    伊藤|イトウ|ito 渡辺|ワタナベ|watanabe 山本|ヤマモト|yamamoto 中村|ナカムラ|nakamura
    小林|コバヤシ|kobayashi 加藤|カトウ|kato 吉田|ヨシダ|yoshida 山田|ヤマダ|yamada
    佐々木|ササキ|sasaki 山口|ヤマグチ|yamaguchi 松本|マツモト|matsumoto 井上|イノウエ|inoue
    木村|キムラ|kimura 林|ハヤシ|hayashi 斎藤|サイトウ|saito 清水|シミズ|shimizu
    山崎|ヤマザキ|yamazaki 森|モリ|mori 池田|イケダ|ikeda 橋本|ハシモト|hashimoto
    阿部|アベ|abe 石川|イシカワ|ishikawa 山下|ヤマシタ|yamashita 中島|ナカジマ|nakajima
    石井|イシイ|ishii 小川|オガワ|ogawa 前田|マエダ|maeda 岡田|オカダ|okada
    長谷川|ハセガワ|hasegawa 藤田|フジタ|fujita 後藤|ゴトウ|goto 近藤|コンドウ|kondo
    村上|ムラカミ|murakami 遠藤|エンドウ|endo 青木|アオキ|aoki 坂本|サカモト|sakamoto"""
)
GIVEN_NAMES = _table(
    """翔太|ショウタ|shota 陽菜|ヒナ|hina 蓮|レン|ren 結衣|ユイ|yui 大輝|ダイキ|daiki
    美咲|ミサキ|misaki 健太|ケンタ|kenta さくら|サクラ|sakura 拓也|タクヤ|takuya 愛|アイ|ai
    悠斗|ユウト|yuto 葵|アオイ|aoi 直樹|ナオキ|naoki 彩|アヤ|aya 大翔|ヒロト|hiroto
    芽依|メイ|mei 誠|マコト|makoto 真由美|マユミ|mayumi 和也|カズヤ|kazuya 恵子|ケイコ|keiko
    浩二|コウジ|koji 裕子|ユウコ|yuko 隆|タカシ|takashi 明美|アケミ|akemi 修|オサム|osamu
    久美子|クミコ|kumiko 博|ヒロシ|hiroshi 幸子|サチコ|sachiko 健一|ケンイチ|kenichi
    由美|ユミ|yumi 亮|リョウ|ryo 奈々|ナナ|nana 颯|ハヤテ|hayate 凛|リン|rin
    拓海|タクミ|takumi 花子|ハナコ|hanako 一郎|イチロウ|ichiro 千尋|チヒロ|chihiro
    智子|トモコ|tomoko 陸|リク|riku"""
)

# prefecture | postal code | city and town | area code | weight (≈ population)
ADDRESSES = _table(
    """北海道|060-0001|札幌市中央区北一条西|011|3 北海道|070-0031|旭川市一条通|0166|1
    青森県|030-0801|青森市新町|017|1 岩手県|020-0022|盛岡市大通|019|1
    宮城県|980-0811|仙台市青葉区一番町|022|2 秋田県|010-0001|秋田市中通|018|1
    山形県|990-0039|山形市香澄町|023|1 福島県|960-8041|福島市大町|024|1
    茨城県|310-0015|水戸市宮町|029|2 栃木県|320-0026|宇都宮市馬場通り|028|1
    群馬県|371-0023|前橋市本町|027|1 埼玉県|330-0063|さいたま市浦和区高砂|048|3
    埼玉県|330-0854|さいたま市大宮区桜木町|048|3 千葉県|260-0028|千葉市中央区新町|043|3
    千葉県|273-0005|船橋市本町|047|3 東京都|150-0001|渋谷区神宮前|03|4
    東京都|160-0022|新宿区新宿|03|4 東京都|171-0022|豊島区南池袋|03|4
    東京都|180-0004|武蔵野市吉祥寺本町|0422|3 東京都|113-0033|文京区本郷|03|3
    東京都|154-0004|世田谷区太子堂|03|4 東京都|135-0061|江東区豊洲|03|3
    神奈川県|220-0012|横浜市西区みなとみらい|045|4 神奈川県|210-0007|川崎市川崎区駅前本町|044|3
    神奈川県|251-0025|藤沢市鵠沼石上|0466|2 新潟県|950-0087|新潟市中央区東大通|025|2
    富山県|930-0003|富山市桜町|076|1 石川県|920-0962|金沢市広坂|076|1
    福井県|910-0006|福井市中央|0776|1 山梨県|400-0031|甲府市丸の内|055|1
    長野県|380-0823|長野市南千歳|026|2 岐阜県|500-8833|岐阜市神田町|058|2
    静岡県|420-0852|静岡市葵区紺屋町|054|2 静岡県|430-0933|浜松市中央区鍛冶町|053|2
    愛知県|460-0008|名古屋市中区栄|052|4 愛知県|450-0002|名古屋市中村区名駅|052|3
    三重県|514-0009|津市羽所町|059|1 滋賀県|520-0044|大津市京町|077|1
    京都府|600-8216|京都市下京区東塩小路町|075|3 大阪府|530-0001|大阪市北区梅田|06|4
    大阪府|542-0076|大阪市中央区難波|06|4 大阪府|590-0028|堺市堺区三国ヶ丘御幸通|072|2
    兵庫県|650-0021|神戸市中央区三宮町|078|3 兵庫県|662-0918|西宮市六湛寺町|0798|2
    奈良県|630-8215|奈良市東向中町|0742|1 和歌山県|640-8331|和歌山市美園町|073|1
    鳥取県|680-0831|鳥取市栄町|0857|1 島根県|690-0003|松江市朝日町|0852|1
    岡山県|700-0023|岡山市北区駅前町|086|2 広島県|730-0011|広島市中区基町|082|2
    山口県|753-0047|山口市道場門前|083|1 徳島県|770-0834|徳島市元町|088|1
    香川県|760-0019|高松市サンポート|087|1 愛媛県|790-0001|松山市一番町|089|1
    高知県|780-0841|高知市帯屋町|088|1 福岡県|810-0001|福岡市中央区天神|092|3
    福岡県|812-0012|福岡市博多区博多駅中央街|092|2 佐賀県|840-0801|佐賀市駅前中央|0952|1
    長崎県|850-0035|長崎市元船町|095|1 熊本県|860-0806|熊本市中央区花畑町|096|1
    大分県|870-0035|大分市中央町|097|1 宮崎県|880-0805|宮崎市橘通東|0985|1
    鹿児島県|892-0842|鹿児島市東千石町|099|1 沖縄県|900-0015|那覇市久茂地|098|1"""
)
BUILDINGS = ("メゾン桜", "コーポ緑が丘", "グランハイツ", "サンライズ", "パークハイム", "ハイツ若葉")
EMAIL_DOMAINS = ("example.jp", "example.ne.jp", "example.co.jp", "example.com")

# SKU | name | price (JPY, tax included) | weight
PRODUCTS = _table(
    """TEA-SENCHA-100|静岡煎茶_100g|1080|9 TEA-SENCHA-200|静岡煎茶_200g|1944|5
    TEA-GYOKURO-50|八女玉露_50g|2160|3 TEA-HOJICHA-150|加賀棒ほうじ茶_150g|972|6
    TEA-MATCHA-30|宇治抹茶_30g_缶入り|1620|4 TEA-GENMAI-200|玄米茶_200g|756|4
    TEA-WAKOCHA-TB20|和紅茶_ティーバッグ_20包|864|4 CUP-ARITA-MUG|有田焼_マグカップ_藍|2750|4
    CUP-HASAMI-YUNOMI|波佐見焼_湯呑み|1980|3 POT-TOKONAME-KYUSU|常滑焼_急須|5500|2
    POT-NANBU-KYUSU|南部鉄器_急須_0.65L|13200|1 TOWEL-IMABARI-FACE|今治タオル_フェイスタオル|1650|6
    TOWEL-IMABARI-BATH|今治タオル_バスタオル|4400|3 TENUGUI-ASANOHA|注染手ぬぐい_麻の葉|1320|3
    SWEETS-YOKAN-5|本練り羊羹_5本入り|2700|2 SNACK-SENBEI-24|草加せんべい_24枚|1944|3
    HASHI-WAKASA-PAIR|若狭塗_夫婦箸|3300|2 FUROSHIKI-CHIRIMEN|ちりめん風呂敷|2200|2"""
)
GIFTS = _table(
    """GIFT-TEA-SET-A|煎茶・玉露_贈答セット|5400|4 GIFT-TOWEL-SET|今治タオル_ギフトセット|5500|3
    GIFT-TEA-SET-S|特選_茶器と銘茶の詰め合わせ|10800|2 POT-NANBU-KYUSU|南部鉄器_急須_0.65L|13200|1
    GIFT-ARITA-PAIR|有田焼_ペアマグ_化粧箱入り|6050|2"""
)
SHIPPING_FEE = 650
FREE_SHIPPING_FROM = 5500

CONSENT_WORDINGS = (
    (date(2023, 10, 1), "privacy-2023-10"),
    (date(2024, 10, 1), "privacy-2024-10"),
    (date(2025, 4, 1), "privacy-2025-04"),
)
CLAIMANT_REASONS = {
    5: "配送遅延の件で1週間に電話・メール計6回の問い合わせ。担当者への暴言あり。"
    "以後の対応は店長に一本化する。",
    17: "商品不良を理由に全額返金に加えて補償金を強く要求。写真の提出は拒否し、"
    "レビューへの低評価投稿を示唆。",
    133: "返品期限（到着後8日）を過ぎた商品の返品・交換を繰り返し要求。"
    "案内済みの規約を確認のうえ、個別の例外対応はしない。",
}

# Lifecycle archetypes: the orders a person gets, hence the segment.
PROSPECT, NEW, REGULAR, VIP, SLEEPING = "prospect", "new", "regular", "vip", "sleeping"
ARCHETYPE_WEIGHTS = {PROSPECT: 15, NEW: 20, REGULAR: 35, VIP: 8, SLEEPING: 22}
BUYER_CHANNELS = {
    Channel.RAKUTEN: 30,
    Channel.AMAZON: 25,
    Channel.YAHOO: 15,
    Channel.OWN_SITE: 20,
    Channel.STORE: 10,
}
PROSPECT_CHANNELS = {Channel.LINE: 40, Channel.EMAIL: 30, Channel.OWN_SITE: 20, Channel.STORE: 10}
ORDER_CHANNELS = set(BUYER_CHANNELS)
# The other channels a person may also be known on, and what links the two
# records (Amazon buyers' addresses are masked: only the phone links them).
SECONDARY_CHANNELS: dict[str, tuple[tuple[str, str], ...]] = {
    Channel.RAKUTEN: (
        (Channel.OWN_SITE, "email"),
        (Channel.LINE, "email"),
        (Channel.AMAZON, "phone"),
        (Channel.YAHOO, "phone"),
    ),
    Channel.AMAZON: ((Channel.RAKUTEN, "phone"), (Channel.YAHOO, "phone")),
    Channel.YAHOO: ((Channel.OWN_SITE, "email"), (Channel.RAKUTEN, "phone")),
    Channel.OWN_SITE: ((Channel.LINE, "email"), (Channel.STORE, "phone")),
    Channel.STORE: ((Channel.LINE, "email"), (Channel.OWN_SITE, "email")),
    Channel.LINE: ((Channel.OWN_SITE, "email"),),
    Channel.EMAIL: ((Channel.OWN_SITE, "email"),),
}
MULTI_CHANNEL_SHARE = 0.10
# The first people are fixed so that even `--customers 20` shows every
# segment and a few people known on several channels.
FIXED_PEOPLE: dict[int, tuple[str, str, tuple[str, ...]]] = {
    0: (REGULAR, Channel.RAKUTEN, (Channel.OWN_SITE, Channel.LINE)),
    1: (VIP, Channel.OWN_SITE, (Channel.STORE,)),
    2: (NEW, Channel.AMAZON, ()),
    3: (SLEEPING, Channel.YAHOO, (Channel.RAKUTEN,)),
    4: (PROSPECT, Channel.LINE, ()),
    5: (REGULAR, Channel.RAKUTEN, ()),
    6: (PROSPECT, Channel.EMAIL, ()),
    7: (REGULAR, Channel.STORE, (Channel.LINE,)),
    8: (NEW, Channel.AMAZON, (Channel.RAKUTEN,)),
    9: (VIP, Channel.RAKUTEN, ()),
    17: (REGULAR, Channel.YAHOO, ()),
    133: (REGULAR, Channel.OWN_SITE, ()),
}
RAKUTEN_SHOP_ID = "338761"
YAHOO_STORE_ID = "madoguchi"


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


def _wording(moment: datetime) -> str:
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
    }[channel]
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
        }.get(primary, ConsentSource.IMPORT)
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
    for spec in person.orders:
        _order, created = order_upsert(
            channel=spec.channel,
            order_number=spec.order_number,
            customer=customer,
            ordered_at=spec.ordered_at,
            total=spec.total,
            status=spec.status,
            shipped_at=spec.shipped_at,
            delivered_at=spec.delivered_at,
            lines=spec.lines,
        )
        ctx.created["orders"] += created
    for spec in person.consents:
        consent_record(
            customer=customer,
            channel=spec.channel,
            action=spec.action,
            source=spec.source,
            occurred_at=spec.occurred_at,
            wording_version=_wording(spec.occurred_at),
            note=spec.note,
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
