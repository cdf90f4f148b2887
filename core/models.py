"""Platform models: the record every timeline shares, API keys for store
sites and idempotent POST records."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.choices import Channel

API_KEY_PREFIX = "mdg"


class EventRecord(models.Model):
    """What every timeline row has (customer, inquiry and campaign events):
    who did it (kept as empty when the user is deleted), the details, when."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    data = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        abstract = True


class ApiScope(models.TextChoices):
    READ = "read", _("Read only")
    WRITE = "write", _("Read and write")
    # A scope of its own: a key for the shop's handling of a person's
    # requests (APPI) reads, and exports and erases personal data; it writes
    # nothing else, and no other key may export or erase.
    PRIVACY = "privacy", _("Read, and export or erase a person's data")


def api_key_hash(secret: str) -> str:
    """Keys are 256-bit random strings, so a plain SHA-256 is enough:
    nothing to brute-force, and it is cheap to check on every request."""
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_generate() -> tuple[str, str]:
    """Return (prefix, full key). The full key is shown once and never stored."""
    prefix = secrets.token_hex(4)
    return prefix, f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"


class ApiKey(models.Model):
    label = models.CharField(_("label"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=8, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scope = models.CharField(
        _("scope"), max_length=10, choices=ApiScope.choices, default=ApiScope.READ
    )
    # The channels whose data this key may read and write. A store site's
    # key sees its own channel's customers and orders, never (for example)
    # Amazon buyers' data, which Amazon forbids using elsewhere.
    channels = models.JSONField(
        _("channels"),
        default=list,
        help_text=_("Channels whose customers and orders this key may see and write."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("revoked by"),
    )
    # Set when the key is rotated: the old key keeps working until then (a
    # grace period for the store site to switch), and is refused after.
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    rotated_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("replaces"),
    )

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.label} ({API_KEY_PREFIX}_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def can_write(self) -> bool:
        return self.scope == ApiScope.WRITE

    @property
    def can_handle_personal_data(self) -> bool:
        """May export and erase a person's data (the privacy scope only)."""
        return self.scope == ApiScope.PRIVACY

    def allows_channel(self, channel: str) -> bool:
        return channel in self.channels

    @staticmethod
    def valid_channels() -> set[str]:
        return set(Channel.values)


class IdempotencyRecord(models.Model):
    """The first answer to a POST carrying an Idempotency-Key, replayed to
    retries of the same request. Unique per (key holder, key)."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    # The rendered body, replayed byte for byte.
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="core_idempotency_unique"),
            models.CheckConstraint(condition=~Q(key=""), name="core_idempotency_key_not_empty"),
        ]
        indexes = [models.Index(fields=["created_at"], name="core_idempotency_created")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"


class StaffMember(User):
    """Staff users as the admin's 「スタッフ」 page shows them: their second
    factor, its reset by a manager, their backup codes (core/staff_admin.py).
    A proxy: no table of its own."""

    class Meta:
        proxy = True
        verbose_name = _("staff member")
        verbose_name_plural = _("staff members")


class AuditAction(models.TextChoices):
    VIEW = "view", _("Viewed")
    CHANGE = "change", _("Changed")
    EXPORT = "export", _("Exported")
    ERASE = "erase", _("Erased")
    LIST = "list", _("Listed")
    SEARCH = "search", _("Searched")
    IMPORT = "import", _("Imported")


class AuditEntry(models.Model):
    """One access to customers' personal data (監査ログ): who (a staff
    member or an API key), what they did, to which customer (none for a
    list or a search), where (the admin page or API path), what (the query
    of a list or a search, the rows of an export) and from which address.

    Append-only: written by core.audit.audit_record only; PostgreSQL refuses
    UPDATE and DELETE on the table (a trigger, migration 0007), and the
    admin lets nobody add, change or delete. The foreign keys carry no
    database constraint, so that no deletion elsewhere ever needs to touch
    a row here."""

    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff member"),
    )
    api_key = models.ForeignKey(
        ApiKey,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("API key"),
    )
    action = models.CharField(_("action"), max_length=10, choices=AuditAction.choices)
    customer = models.ForeignKey(
        "crm.Customer",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("customer"),
    )
    where = models.CharField(_("where"), max_length=255, blank=True)
    what = models.TextField(_("what"), blank=True)
    ip = models.GenericIPAddressField(_("from (IP address)"), null=True, blank=True)

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        ordering = ("-at", "-id")
        indexes = [
            models.Index(fields=["customer", "-at"], name="core_audit_customer_at"),
            models.Index(fields=["user", "-at"], name="core_audit_user_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.at:%Y-%m-%d %H:%M}"
