"""The Permissions-Policy header (settings.PERMISSIONS_POLICY) on every
response. Django's SecurityMiddleware sends the other security headers
and django-csp the Content-Security-Policy; neither sends this one."""

from __future__ import annotations

from django.conf import settings


class PermissionsPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = settings.PERMISSIONS_POLICY
        if policy:
            response.headers.setdefault("Permissions-Policy", policy)
        return response
