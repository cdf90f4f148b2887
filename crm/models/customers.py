"""The customer: their personal data (shared with channel profiles), lifecycle
segment and tags, and the indexes of normalised email and phone."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from crm.fields import CustomerEmailField
from crm.models.prefectures import Prefecture


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
