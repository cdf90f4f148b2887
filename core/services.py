"""Writes for platform objects: API keys."""

from __future__ import annotations

from collections.abc import Iterable

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
