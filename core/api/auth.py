"""API-key authentication for store sites.

`Authorization: Bearer mdg_<prefix>_<secret>`. Only a SHA-256 of the key is
stored; a revoked, expired (rotated) or unknown key is a 401, a read-scoped
key writing is a 403.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from core.models import API_KEY_PREFIX, ApiKey, api_key_hash
from core.services import api_key_touch


class ApiClient:
    """The principal behind an API key (DRF wants a `user`)."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.pk = None

    def __str__(self) -> str:
        return str(self.api_key)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _sep, token = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not token.strip():
            raise exceptions.AuthenticationFailed(
                _("Use the header 'Authorization: Bearer <API key>'.")
            )
        token = token.strip()
        if not token.startswith(f"{API_KEY_PREFIX}_"):
            raise exceptions.AuthenticationFailed(_("This is not a Madoguchi API key."))
        # In SQL: on every request of every store site, building this with
        # the ORM took longer than PostgreSQL took to answer it.
        api_key = next(
            iter(
                ApiKey.objects.raw(
                    f"SELECT * FROM {ApiKey._meta.db_table} WHERE key_hash = %s",
                    [api_key_hash(token)],
                )
            ),
            None,
        )
        if api_key is None:
            raise exceptions.AuthenticationFailed(_("Unknown API key."))
        if api_key.revoked_at is not None:
            raise exceptions.AuthenticationFailed(_("This API key has been revoked."))
        if api_key.is_expired:
            raise exceptions.AuthenticationFailed(
                _("This API key has expired: it was replaced by a new key.")
            )
        api_key_touch(api_key=api_key)
        return ApiClient(api_key), api_key

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class HasApiKeyScope(permissions.BasePermission):
    """Any active key may read; only a write-scoped key may change data."""

    message = _("This API key is read-only; a key with the write scope is needed.")

    def has_permission(self, request, view) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            raise exceptions.NotAuthenticated(
                _("An API key is required: send 'Authorization: Bearer <API key>'.")
            )
        if request.method in permissions.SAFE_METHODS:
            return True
        return api_key.can_write


class HasPrivacyScope(HasApiKeyScope):
    """Only a key with the privacy scope may export or erase a person's data."""

    message = _(
        "This API key may not export or erase personal data; a key with the privacy scope "
        "is needed."
    )

    def has_permission(self, request, view) -> bool:
        super().has_permission(request, view)  # an API key at all
        return request.auth.can_handle_personal_data


def api_key_channel_check(api_key: ApiKey, channel: str) -> None:
    """Refuse (403) a write to a channel the key is not scoped to."""
    if not api_key.allows_channel(channel):
        raise exceptions.PermissionDenied(
            _("This API key may not use the channel '%(channel)s'.") % {"channel": channel}
        )


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "core.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A Madoguchi API key (mdg_…), created in the admin.",
        }
