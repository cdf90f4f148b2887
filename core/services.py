"""Writes for platform objects: API keys."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.models import ApiKey, ApiScope, api_key_generate, api_key_hash
from core.timeline import actor_or_none
from crm.models import Channel


def api_key_create(
    *, label: str, scope: str, channels: Iterable[str], actor=None
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


def api_key_rotate(*, key: ApiKey, grace_hours: int, actor=None) -> tuple[ApiKey, str]:
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


def api_key_revoke(*, api_key: ApiKey, actor=None) -> ApiKey:
    """Revoke at once (the next request with it is a 401); records who."""
    with transaction.atomic():
        ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=actor_or_none(actor)
        )
    api_key.refresh_from_db()
    return api_key


def api_key_label_set(*, api_key: ApiKey, label: str, actor=None) -> ApiKey:
    label = label.strip()
    if not label:
        raise ValidationError({"label": [_("Give the key a label (which site uses it).")]})
    api_key.label = label
    api_key.full_clean()
    api_key.save(update_fields=["label"])
    return api_key
