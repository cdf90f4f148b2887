"""Writes for platform objects: API keys."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.choices import Channel
from core.models import ApiKey, ApiScope, api_key_generate, api_key_hash
from core.timeline import actor_or_none
from core.types import Actor


def api_key_create(
    *, label: str, scope: str, channels: Iterable[str], actor: Actor = None
) -> tuple[ApiKey, str]:
    """Create a key; return it with the full secret, which is shown once
    and never stored (only its hash and a short prefix are)."""
    channels = sorted(set(channels))
    errors = {}
    if not label.strip():
        errors["label"] = [_("Give the key a label (which site uses it).")]
    if scope not in ApiScope.values:
        errors["scope"] = [_("Unknown scope: %(value)s.") % {"value": scope}]
    unknown = set(channels) - set(Channel.values)
    if unknown:
        errors["channels"] = [
            _("Unknown channels: %(value)s.") % {"value": ", ".join(sorted(unknown))}
        ]
    if not channels:
        errors["channels"] = [_("Choose at least one channel.")]
    if errors:
        raise ValidationError(errors)
    prefix, secret = api_key_generate()
    key = ApiKey.objects.create(
        label=label.strip(),
        prefix=prefix,
        key_hash=api_key_hash(secret),
        scope=scope,
        channels=channels,
        created_by=actor_or_none(actor),
    )
    return key, secret


API_KEY_ROTATION_MAX_GRACE_HOURS = 24 * 30


def api_key_rotate(*, key: ApiKey, grace_hours: int, actor: Actor = None) -> tuple[ApiKey, str]:
    """Replace `key` by a new key with the same label, scope and channels
    (returned with its secret, shown once as at creation). The old key keeps
    working for `grace_hours` while the store site switches, then is refused
    (0: at once). The new key records which key it replaces and who made it."""
    if not 0 <= grace_hours <= API_KEY_ROTATION_MAX_GRACE_HOURS:
        raise ValidationError(
            {
                "grace_hours": [
                    _("The grace period must be between 0 and %(max)d hours.")
                    % {"max": API_KEY_ROTATION_MAX_GRACE_HOURS}
                ]
            }
        )
    with transaction.atomic():
        # the lock makes a second rotation of the same key wait, then refuse
        old = ApiKey.objects.select_for_update().get(pk=key.pk)
        if old.revoked_at is not None or old.expires_at is not None:
            raise ValidationError(
                _("This API key has already been revoked or replaced; rotate its successor.")
            )
        prefix, secret = api_key_generate()
        new = ApiKey(
            label=old.label,
            prefix=prefix,
            key_hash=api_key_hash(secret),
            scope=old.scope,
            channels=old.channels,
            created_by=actor_or_none(actor),
            rotated_from=old,
        )
        new.full_clean()
        new.save()
        old.expires_at = timezone.now() + timedelta(hours=grace_hours)
        old.save(update_fields=["expires_at"])
    key.refresh_from_db()
    return new, secret


def api_key_revoke(*, api_key: ApiKey, actor: Actor = None) -> ApiKey:
    """Revoke at once (the next request with it is a 401); records who."""
    with transaction.atomic():
        ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=actor_or_none(actor)
        )
    api_key.refresh_from_db()
    return api_key


def api_key_label_set(*, api_key: ApiKey, label: str, actor: Actor = None) -> ApiKey:
    label = label.strip()
    if not label:
        raise ValidationError({"label": [_("Give the key a label (which site uses it).")]})
    api_key.label = label
    api_key.full_clean()
    api_key.save(update_fields=["label"])
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record the key's last use at most once per API_KEY_TOUCH_SECONDS:
    one conditional UPDATE, not a write on every request."""
    now = timezone.now()
    threshold = now - timedelta(seconds=settings.API_KEY_TOUCH_SECONDS)
    if api_key.last_used_at is not None and api_key.last_used_at >= threshold:
        return
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=threshold), pk=api_key.pk
    ).update(last_used_at=now)


# --- Staff second factor --------------------------------------------------------

BACKUP_CODE_COUNT = 10


def _staff_log(*, user: User, actor: User | None, message: str) -> None:
    """A row of Django's admin history on the staff member, and of the audit
    trail: who did what to whose login."""
    from django.contrib.admin.models import CHANGE, LogEntry
    from django.contrib.auth import get_user_model

    LogEntry.objects.log_actions(
        user_id=(actor or user).pk,  # manage.py: recorded as their own
        queryset=get_user_model().objects.filter(pk=user.pk),
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )
    # and in the audit trail (監査ログ), which nobody can change
    from core.audit import audit_record
    from core.models import AuditAction

    audit_record(
        action=AuditAction.CHANGE,
        actor=actor or user,
        what=f"{user.get_username()}: {message}",
    )


def second_factor_reset(*, user: User, actor: User) -> int:
    """Remove a staff member's lost second factor: every TOTP device and
    their backup codes. Their current sessions lose their verification at
    once, and they get into the admin again only after a new enrolment
    (`manage.py otp_enroll`). A manager may reset anyone's but a
    superuser's; only a superuser a superuser's. Returns the devices
    removed; recorded in the staff member's admin history."""
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from core.roles import is_manager

    if not is_manager(actor) or (user.is_superuser and not actor.is_superuser):
        raise ValidationError(_("You may not reset this staff member's second factor."))
    with transaction.atomic():
        removed, _by_model = TOTPDevice.objects.filter(user=user).delete()
        static, _by_model = StaticDevice.objects.filter(user=user).delete()
        _staff_log(
            user=user,
            actor=actor,
            message=_("Second factor reset: devices removed, re-enrolment needed."),
        )
    return removed + static  # type: ignore[no-any-return]  # delete() counts are ints


def backup_codes_generate(*, user: User, actor: User | None) -> list[str]:
    """Ten new one-time backup codes for `user`, replacing any earlier
    ones. Returned once, to be shown once: only django-otp's static tokens
    keep them, and each works for one login (used, it is deleted)."""
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        # the name is what the login page's device list shows
        device = StaticDevice.objects.create(user=user, name=_("Backup codes"), confirmed=True)
        codes = [StaticToken.random_token() for _n in range(BACKUP_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
        _staff_log(user=user, actor=actor, message=_("New backup codes issued."))
    return codes


def login_unlock(*, user: User, actor: User | None) -> int:
    """A superuser lifts the lock on a staff member's account before the
    cool-off ends: their failed attempts are forgotten (django-axes).
    Returns the attempt records removed; recorded in their admin history."""
    from axes.utils import reset

    if not getattr(actor, "is_superuser", False):
        raise ValidationError(_("Only a superuser may unlock a login."))
    with transaction.atomic():
        removed = reset(username=user.get_username())
        _staff_log(user=user, actor=actor, message=_("Login unlocked."))
    return removed  # type: ignore[no-any-return]  # axes' reset returns a count
