"""Customers, their channel identities, orders, tags and the consent ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from core.models import EventRecord
from core.types import StrOrPromise
from crm.fields import CustomerEmailField
from crm.trade_time import trade_time_error


class Prefecture(models.TextChoices):
    HOKKAIDO = "北海道", _("Hokkaido")
    AOMORI = "青森県", _("Aomori")
    IWATE = "岩手県", _("Iwate")
    MIYAGI = "宮城県", _("Miyagi")
    AKITA = "秋田県", _("Akita")
    YAMAGATA = "山形県", _("Yamagata")
    FUKUSHIMA = "福島県", _("Fukushima")
    IBARAKI = "茨城県", _("Ibaraki")
    TOCHIGI = "栃木県", _("Tochigi")
    GUNMA = "群馬県", _("Gunma")
    SAITAMA = "埼玉県", _("Saitama")
    CHIBA = "千葉県", _("Chiba")
    TOKYO = "東京都", _("Tokyo")
    KANAGAWA = "神奈川県", _("Kanagawa")
    NIIGATA = "新潟県", _("Niigata")
    TOYAMA = "富山県", _("Toyama")
    ISHIKAWA = "石川県", _("Ishikawa")
    FUKUI = "福井県", _("Fukui")
    YAMANASHI = "山梨県", _("Yamanashi")
    NAGANO = "長野県", _("Nagano")
    GIFU = "岐阜県", _("Gifu")
    SHIZUOKA = "静岡県", _("Shizuoka")
    AICHI = "愛知県", _("Aichi")
    MIE = "三重県", _("Mie")
    SHIGA = "滋賀県", _("Shiga")
    KYOTO = "京都府", _("Kyoto")
    OSAKA = "大阪府", _("Osaka")
    HYOGO = "兵庫県", _("Hyogo")
    NARA = "奈良県", _("Nara")
    WAKAYAMA = "和歌山県", _("Wakayama")
    TOTTORI = "鳥取県", _("Tottori")
    SHIMANE = "島根県", _("Shimane")
    OKAYAMA = "岡山県", _("Okayama")
    HIROSHIMA = "広島県", _("Hiroshima")
    YAMAGUCHI = "山口県", _("Yamaguchi")
    TOKUSHIMA = "徳島県", _("Tokushima")
    KAGAWA = "香川県", _("Kagawa")
    EHIME = "愛媛県", _("Ehime")
    KOCHI = "高知県", _("Kochi")
    FUKUOKA = "福岡県", _("Fukuoka")
    SAGA = "佐賀県", _("Saga")
    NAGASAKI = "長崎県", _("Nagasaki")
    KUMAMOTO = "熊本県", _("Kumamoto")
    OITA = "大分県", _("Oita")
    MIYAZAKI = "宮崎県", _("Miyazaki")
    KAGOSHIMA = "鹿児島県", _("Kagoshima")
    OKINAWA = "沖縄県", _("Okinawa")


class LifecycleSegment(models.TextChoices):
    """SPEC rule 7. Computed by `crm.services.lifecycle_recompute`."""

    PROSPECT = "prospect", _("Prospect (no order)")
    NEW = "new", _("New")
    REGULAR = "regular", _("Regular")
    VIP = "vip", _("VIP")
    SLEEPING = "sleeping", _("Sleeping")
    CLAIMANT = "claimant", _("Claimant")


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")

    def __str__(self) -> str:
        return self.name


class PersonalData(models.Model):
    """The personal data of a person: a customer's merged profile, and what
    each channel gave of it (CustomerChannelProfile)."""

    family_name = models.CharField(_("family name"), max_length=100, blank=True)
    given_name = models.CharField(_("given name"), max_length=100, blank=True)
    family_name_kana = models.CharField(_("family name (kana)"), max_length=100, blank=True)
    given_name_kana = models.CharField(_("given name (kana)"), max_length=100, blank=True)
    email = CustomerEmailField(_("email"), blank=True)
    # Lower-cased, trimmed email: the key of identity resolution and search.
    email_normalized = models.CharField(max_length=254, blank=True, editable=False)
    phone = models.CharField(_("phone"), max_length=30, blank=True)
    # Digits only, domestic form (0901234567x): the key of identity resolution.
    phone_normalized = models.CharField(max_length=20, blank=True, editable=False)
    postal_code = models.CharField(_("postal code"), max_length=8, blank=True)
    prefecture = models.CharField(
        _("prefecture"), max_length=4, choices=Prefecture.choices, blank=True
    )
    address = models.CharField(_("address"), max_length=255, blank=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)

    class Meta:
        abstract = True

    @classmethod
    def blank_value(cls, name: str):
        """What field `name` holds when nothing was given: None for a nullable
        field (birthday), else ""."""
        return None if cls._meta.get_field(name).null else ""  # type: ignore[union-attr]  # a concrete field of this model


def address_indexes(*, email: str, phone: str) -> list[models.Index]:
    """Lookups by normalised email and phone, blanks left out (named `email`
    and `phone`)."""
    return [
        models.Index(fields=["email_normalized"], name=email, condition=~Q(email_normalized="")),
        models.Index(fields=["phone_normalized"], name=phone, condition=~Q(phone_normalized="")),
    ]


class Customer(PersonalData):
    tags = models.ManyToManyField(Tag, blank=True, related_name="customers", verbose_name=_("tags"))
    notes = models.TextField(_("notes"), blank=True)

    is_claimant = models.BooleanField(_("claimant"), default=False)
    # Staff or a shop test account: a campaign's test send goes only to these.
    is_test_recipient = models.BooleanField(
        _("test recipient"),
        default=False,
        db_default=False,
        help_text=_(
            "Staff or a shop test account. A campaign's test send (テスト送信) goes only to "
            "test recipients."
        ),
    )
    claimant_reason = models.TextField(_("claimant reason"), blank=True)
    claimant_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("claimant set by"),
        db_index=False,  # crm_customer_claimant_set_by: the few set
    )
    claimant_set_at = models.DateTimeField(_("claimant set at"), null=True, blank=True)

    # Lifecycle metrics, kept right by order_upsert and lifecycle_recompute.
    first_order_at = models.DateTimeField(_("first order"), null=True, blank=True)
    last_order_at = models.DateTimeField(_("last order"), null=True, blank=True)
    order_count = models.PositiveIntegerField(_("orders"), default=0)
    total_spent = models.BigIntegerField(_("total spent (JPY)"), default=0)
    lifecycle_segment = models.CharField(
        _("lifecycle segment"),
        max_length=10,
        choices=LifecycleSegment.choices,
        default=LifecycleSegment.PROSPECT,
    )

    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_customers",
        verbose_name=_("merged into"),
        db_index=False,  # crm_customer_merged_into: the few merged
    )
    anonymized_at = models.DateTimeField(_("anonymised at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # The name a customer goes by on a channel (their LINE display name), shown
    # while no name is known: 「LINE: さくら」 (Customer.label).
    nickname = models.CharField(_("name on a channel"), max_length=255, blank=True)
    nickname_channel = models.CharField(
        _("channel of that name"), max_length=10, choices=Channel.choices, blank=True
    )

    # Search (crm.search): the name and its kana as crm.normalize.name_search_key
    # folds them (no spaces, katakana, NFKC, lower case), kept by profile_save.
    search_name = models.CharField(max_length=200, blank=True, editable=False)
    search_kana = models.CharField(max_length=200, blank=True, editable=False)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        indexes = [
            *address_indexes(email="crm_customer_email_norm", phone="crm_customer_phone_norm"),
            models.Index(fields=["lifecycle_segment"], name="crm_customer_segment"),
            # segment rules on recency ("days since last order")
            models.Index(fields=["last_order_at"], name="crm_customer_last_order"),
            models.Index(fields=["family_name_kana", "given_name_kana"], name="crm_customer_kana"),
            # The two foreign keys are null for nearly every customer: partial
            # indexes hold the rest, and a customer row's update (its
            # lifecycle figures, on every order) writes no entry in them.
            models.Index(
                fields=["merged_into"],
                name="crm_customer_merged_into",
                condition=Q(merged_into__isnull=False),
            ),
            models.Index(
                fields=["claimant_set_by"],
                name="crm_customer_claimant_set_by",
                condition=Q(claimant_set_by__isnull=False),
            ),
            # What the nightly lifecycle_recompute compares with the orders,
            # read from the index alone in customer order (a third of the
            # heap's size): the table's autovacuum settings keep its
            # visibility map current (migration 0007).
            models.Index(
                fields=["id"],
                include=[
                    "is_claimant",
                    "first_order_at",
                    "last_order_at",
                    "order_count",
                    "total_spent",
                    "lifecycle_segment",
                ],
                name="crm_customer_lifecycle",
            ),
            # Search: a name typed from its start (two characters, which
            # trigrams cannot narrow). Trigram indexes for longer words
            # inside a name are PostgreSQL's own (migration 0017_search).
            *(
                models.Index(
                    fields=[name],
                    name=f"crm_customer_{name}",
                    opclasses=["varchar_pattern_ops"],
                )
                for name in ("search_name", "search_kana")
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_spent__gte=0), name="crm_customer_total_spent_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(is_claimant=False) | ~Q(claimant_reason=""),
                name="crm_customer_claimant_has_reason",
            ),
            models.CheckConstraint(
                condition=~Q(merged_into=models.F("id")), name="crm_customer_not_merged_into_self"
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def display_name(self) -> str:
        return f"{self.family_name} {self.given_name}".strip()

    @property
    def label(self) -> str:
        """How staff screens name the customer (inbox, inquiry page, customer
        list): the name, else the name on a channel (「LINE: さくら」), else
        the number."""
        if self.display_name:
            return self.display_name
        if self.nickname:
            return f"{self.get_nickname_channel_display()}: {self.nickname}"
        return f"#{self.pk}"

    @property
    def display_name_kana(self) -> str:
        return f"{self.family_name_kana} {self.given_name_kana}".strip()

    @property
    def is_merged(self) -> bool:
        return self.merged_into_id is not None


class ChannelIdentity(models.Model):
    """Who the customer is on one channel: Rakuten member, masked Amazon
    address, LINE userId, email address, own-site member id..."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="identities", verbose_name=_("customer")
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    external_id = models.CharField(_("external id"), max_length=255)
    display_name = models.CharField(_("name on channel"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # The LINE profile (outreach.line_profiles): picture, when it was read,
    # the last error, and when to read it (again); None: nothing to do.
    picture_url = models.URLField(_("profile picture"), max_length=1000, blank=True)
    profile_fetched_at = models.DateTimeField(_("profile read"), null=True, blank=True)
    profile_error = models.CharField(_("profile error"), max_length=255, blank=True)
    profile_due_at = models.DateTimeField(_("profile to read"), null=True, blank=True)

    class Meta:
        verbose_name = _("channel identity")
        verbose_name_plural = _("channel identities")
        indexes = [
            models.Index(
                fields=["profile_due_at"],
                name="crm_identity_profile_due",
                condition=Q(profile_due_at__isnull=False),
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"], name="crm_identity_unique_per_channel"
            ),
            models.CheckConstraint(
                condition=~Q(external_id=""), name="crm_identity_external_id_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {self.external_id}"


class CustomerChannelProfile(PersonalData):
    """What one channel gave of a customer's personal data (the latest value
    of each field it sent). The customer's merged profile is for staff (the
    customer 360); an API key reads only the profiles of its own channels,
    so that, e.g., Amazon-sourced data never leaves through another key
    (SPEC rule 17). Written by customer_upsert, with the channel of the call."""

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="channel_profiles",
        verbose_name=_("customer"),
        db_index=False,  # crm_channel_profile_unique (customer first) serves it
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("channel profile")
        verbose_name_plural = _("channel profiles")
        # An API key's search by email or phone looks in its channels' profiles.
        indexes = address_indexes(
            email="crm_channel_profile_email", phone="crm_channel_profile_phone"
        )
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "channel"], name="crm_channel_profile_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {self.family_name} {self.given_name}".strip()


class OrderStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PAID = "paid", _("Paid")
    SHIPPED = "shipped", _("Shipped")
    DELIVERED = "delivered", _("Delivered")
    CANCELLED = "cancelled", _("Cancelled")
    RETURNED = "returned", _("Returned")


# Orders still to ship: what a sales stop or a system failure holds up.
UNSHIPPED_ORDER_STATUSES = (OrderStatus.PENDING, OrderStatus.PAID)

# Orders in these states do not count towards lifecycle metrics.
NON_COUNTING_ORDER_STATUSES = (OrderStatus.CANCELLED, OrderStatus.RETURNED)


class Order(models.Model):
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    order_number = models.CharField(_("order number"), max_length=64)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        related_name="orders",
        verbose_name=_("customer"),
        # Served by crm_order_customer (customer first): a second index on
        # the column alone would only cost every insert.
        db_index=False,
    )
    status = models.CharField(
        _("status"), max_length=10, choices=OrderStatus.choices, default=OrderStatus.PAID
    )
    ordered_at = models.DateTimeField(_("ordered at"))
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    total = models.BigIntegerField(_("total (JPY)"), validators=[MinValueValidator(0)])
    # Set by the retention job (crm.services.retention) when the personal
    # data the order's channel gave of its buyer was anonymised; cleared when
    # the channel sends the order again.
    anonymized_at = models.DateTimeField(_("buyer's data anonymised at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "order_number"], name="crm_order_number_unique_per_channel"
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="crm_order_total_gte_0"),
        ]
        indexes = [
            # A customer's orders by time, and the lifecycle aggregate read
            # from the index alone, in customer order (see
            # crm.services.lifecycle_recompute).
            models.Index(
                fields=["customer", "ordered_at"],
                include=["total", "status"],
                name="crm_order_customer",
            ),
            models.Index(fields=["order_number"], name="crm_order_number"),
            # The retention job's queue: Amazon orders whose buyer's data is
            # still there, by the day its period starts. Orders already done
            # leave it, so a run with nothing due reads a few entries.
            models.Index(
                Coalesce("delivered_at", "ordered_at"),
                name="crm_order_retention_amazon",
                condition=Q(channel="amazon", anonymized_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.order_number}"

    def clean(self) -> None:
        if errors := order_dates_errors(self, now=timezone.now()):
            raise ValidationError(errors)


def order_dates_errors(order: Any, *, now: datetime) -> dict[str, list[StrOrPromise]]:
    """Dates a sale can have (Order.clean, and the import's batches, with
    anything holding an order's dates): in trade's years (crm.trade_time),
    and no shipment or delivery before the order."""
    errors: dict[str, list[StrOrPromise]] = {}
    for name in ("ordered_at", "shipped_at", "delivered_at"):
        value = getattr(order, name)
        if value is not None and (message := trade_time_error(value, now=now)):
            errors[name] = [message]
    before_order = {
        "shipped_at": _("The shipment cannot be before the order."),
        "delivered_at": _("The delivery cannot be before the order."),
    }
    for name, wording in before_order.items():
        value = getattr(order, name)
        if name in errors or value is None or order.ordered_at is None:
            continue
        if value < order.ordered_at:
            errors[name] = [wording]
    return errors


class OrderLine(models.Model):
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order")
    )
    sku = models.CharField(_("SKU"), max_length=64)
    name = models.CharField(_("product name"), max_length=255)
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.BigIntegerField(_("unit price (JPY)"))

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        indexes = [models.Index(fields=["sku"], name="crm_orderline_sku")]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="crm_orderline_quantity_gte_1"
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="crm_orderline_unit_price_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} × {self.quantity}"


class ConsentChannel(models.TextChoices):
    EMAIL = "email", _("Email")
    LINE = "line", _("LINE")
    DM = "dm", _("Direct mail")


class ConsentAction(models.TextChoices):
    OPT_IN = "opt_in", _("Opt-in")
    OPT_OUT = "opt_out", _("Opt-out")


class ConsentSource(models.TextChoices):
    API = "api", _("Store site (API)")
    WEB_FORM = "web_form", _("Web form")
    STORE = "store", _("In the shop")
    LINE = "line", _("LINE follow state")
    UNSUBSCRIBE = "unsubscribe", _("Unsubscribe link")
    IMPORT = "import", _("Import")
    STAFF = "staff", _("Staff (phone or shop counter)")
    COMPLAINT = "complaint", _("Spam complaint (feedback report)")


# The sources a store site records consent from (the API accepts only
# these). The note of an event from any other source (staff, an unsubscribe,
# a complaint) is the shop's own and never leaves through the API.
STORE_SITE_CONSENT_SOURCES = (
    ConsentSource.API,
    ConsentSource.WEB_FORM,
    ConsentSource.STORE,
    ConsentSource.IMPORT,
)


class ConsentEvent(models.Model):
    """One opt-in or opt-out, as it happened. Append-only: never updated."""

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="consent_events",
        verbose_name=_("customer"),
    )
    channel = models.CharField(_("channel"), max_length=10, choices=ConsentChannel.choices)
    action = models.CharField(_("action"), max_length=10, choices=ConsentAction.choices)
    source = models.CharField(_("source"), max_length=20, choices=ConsentSource.choices)
    wording_version = models.CharField(_("wording version"), max_length=50, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    note = models.CharField(_("note"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("consent event")
        verbose_name_plural = _("consent events")
        indexes = [
            models.Index(
                fields=["customer", "channel", "occurred_at"], name="crm_consent_event_latest"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.get_action_display()}"


class ConsentState(models.Model):
    """Current consent per (customer, channel): always the ledger's latest
    event for that pair (by occurred_at, then id). Written only by
    `crm.services.consent_record`."""

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="consent_states",
        verbose_name=_("customer"),
    )
    channel = models.CharField(_("channel"), max_length=10, choices=ConsentChannel.choices)
    granted = models.BooleanField(_("granted"))
    changed_at = models.DateTimeField(_("changed at"))
    event = models.ForeignKey(
        ConsentEvent, on_delete=models.PROTECT, related_name="+", verbose_name=_("event")
    )

    class Meta:
        verbose_name = _("consent state")
        verbose_name_plural = _("consent states")
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel"], name="crm_consent_state_unique")
        ]
        indexes = [
            models.Index(
                fields=["channel", "customer"],
                name="crm_consent_granted",
                condition=Q(granted=True),
            ),
            # Opt-outs: few, and every batch of a send asks which of its
            # customers withdrew (a scan of all states without it).
            models.Index(
                fields=["channel", "customer"],
                name="crm_consent_withdrawn",
                condition=Q(granted=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {'✓' if self.granted else '✗'}"


class CustomerEventKind(models.TextChoices):
    CREATED = "created", _("Created")
    UPDATED = "updated", _("Updated")
    IDENTITY_ADDED = "identity_added", _("Identity added")
    MERGED = "merged", _("Merged")
    MERGED_INTO = "merged_into", _("Merged into another customer")
    CLAIMANT_FLAGGED = "claimant_flagged", _("Flagged as claimant")
    CLAIMANT_CLEARED = "claimant_cleared", _("Claimant flag cleared")
    ANONYMIZED = "anonymized", _("Anonymised")
    EXPORTED = "exported", _("Personal data exported")
    ERASED = "erased", _("Personal data erased")
    SUPPRESSED = "suppressed", _("Address suppressed")
    SUPPRESSION_LIFTED = "suppress_lifted", _("Address suppression lifted")


class CustomerEvent(EventRecord):
    """The customer's timeline and audit log: who did what, when."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="events", verbose_name=_("customer")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=CustomerEventKind.choices)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("customer event")
        verbose_name_plural = _("customer events")
        indexes = [models.Index(fields=["customer", "created_at"], name="crm_customer_event_time")]

    def __str__(self) -> str:
        return self.get_kind_display()


class RetentionEventKind(models.TextChoices):
    ANONYMIZED = "anonymized", _("Personal data anonymised")
    CONSENT_PRUNED = "consent_pruned", _("Consent ledger pruned")


class RetentionEvent(EventRecord):
    """One run of the retention job (crm.services.retention) on one channel
    or on the consent ledger, with what it did in `data` (counts)."""

    kind = models.CharField(_("kind"), max_length=20, choices=RetentionEventKind.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("retention run")
        verbose_name_plural = _("retention runs")

    def __str__(self) -> str:
        return self.get_kind_display()


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", _("The address does not exist (hard bounce)")
    SOFT_BOUNCES = "soft_bounces", _("Repeated temporary delivery failures")
    COMPLAINT = "complaint", _("Marked as spam by the recipient")
    STAFF = "staff", _("Stopped by staff")


class Suppression(models.Model):
    """An address no marketing goes to (bounced, complained about, or
    stopped by staff) until staff lift it. Written only by
    crm.services.suppression; one open row per (address, channel)."""

    address = models.CharField(_("email address"), max_length=255)  # as email_normalize gives it
    channel = models.CharField(
        _("channel"), max_length=10, choices=ConsentChannel.choices, default=ConsentChannel.EMAIL
    )
    reason = models.CharField(_("reason"), max_length=20, choices=SuppressionReason.choices)
    since = models.DateTimeField(_("since"))
    detail = models.CharField(_("detail"), max_length=255, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("lifted by"),
    )
    note = models.CharField(_("note"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("suppressed address")
        verbose_name_plural = _("suppressed addresses")
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "address"],
                condition=Q(lifted_at__isnull=True),
                name="crm_suppression_one_open",
            )
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.get_reason_display()})"


class BounceKind(models.TextChoices):
    HARD = "hard", _("Hard bounce")
    SOFT = "soft", _("Soft bounce")
    COMPLAINT = "complaint", _("Complaint")


class MailBounce(models.Model):
    """One bounce or complaint report about one address, as it arrived:
    soft bounces are counted from these (BOUNCE_SOFT_LIMIT in
    BOUNCE_SOFT_DAYS)."""

    address = models.CharField(_("email address"), max_length=255)
    kind = models.CharField(_("kind"), max_length=10, choices=BounceKind.choices)
    status = models.CharField(_("status code"), max_length=20, blank=True)
    diagnostic = models.CharField(_("diagnostic"), max_length=500, blank=True)
    # outreach.Delivery's id when the report names it (crm does not depend on outreach).
    delivery_id = models.BigIntegerField(_("delivery"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        verbose_name = _("bounce")
        verbose_name_plural = _("bounces")
        indexes = [
            models.Index(fields=["address", "kind", "received_at"], name="crm_bounce_address")
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.get_kind_display()})"


class ImportPreset(models.TextChoices):
    """The shapes of CSV file an import reads (crm.imports.presets)."""

    CUSTOMERS = "customers", _("Customers (Madoguchi format)")
    ORDERS = "orders", _("Orders with lines (Madoguchi format)")
    RAKUTEN = "rakuten", _("Rakuten RMS order CSV")
    YAHOO = "yahoo", _("Yahoo! Shopping store order CSV")
    OWN_SITE = "own_site", _("Own site order CSV")


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("Waiting")
    RUNNING = "running", _("Importing")
    DONE = "done", _("Finished")
    FAILED = "failed", _("Failed")


def import_file_path(instance, filename: str) -> str:
    return f"imports/{timezone.now():%Y/%m}/{filename}"


class ImportJob(models.Model):
    """One CSV file imported (or tried, as a dry run) by the worker in
    batches (crm.imports.runner): what it did, counted, and how far it got."""

    file = models.FileField(_("file"), upload_to=import_file_path, max_length=500)
    file_name = models.CharField(_("file name"), max_length=255)
    preset = models.CharField(_("format"), max_length=20, choices=ImportPreset.choices)
    dry_run = models.BooleanField(_("dry run"), default=False)
    status = models.CharField(
        _("status"), max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    header = models.JSONField(_("header"), default=list, blank=True)
    rows_total = models.PositiveIntegerField(_("rows"), default=0)
    rows_done = models.PositiveIntegerField(_("rows read"), default=0)
    # What the import did (or a dry run would do): customers_created,
    # customers_updated, customers_unchanged, orders_created, ...,
    # consents_recorded, rows_rejected.
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    failure = models.TextField(_("why it failed"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("imported by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("CSV import")
        verbose_name_plural = _("CSV imports")

    def __str__(self) -> str:
        return self.file_name

    @property
    def percent(self) -> int:
        if self.status == ImportStatus.DONE:
            return 100
        if not self.rows_total:
            return 0
        return min(100, self.rows_done * 100 // self.rows_total)


class ImportRowError(models.Model):
    """A row an import refused: its line in the file, the row as it was,
    and why (in Japanese), for the error CSV."""

    job = models.ForeignKey(
        ImportJob, on_delete=models.CASCADE, related_name="row_errors", verbose_name=_("import")
    )
    line = models.PositiveIntegerField(_("line"))
    row = models.JSONField(_("row"), default=list)
    reason = models.TextField(_("reason"))

    class Meta:
        ordering = ["job", "line", "id"]
        verbose_name = _("rejected row")
        verbose_name_plural = _("rejected rows")

    def __str__(self) -> str:
        return f"{self.line}: {self.reason}"
