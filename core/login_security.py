"""Failed staff logins: throttled per account and per address (django-axes).

django-axes counts a failed password through Django's `user_login_failed`
signal and refuses further logins from the locked account or address,
even with the right password, until LOGIN_COOLOFF_MINUTES have passed or
a superuser unlocks it (admin: 「スタッフ」 › ロック解除, or axes's access
attempts). A wrong or missing one-time password after a right password is
a failed login too: `AdminLoginForm` sends the same signal, so knowing the
password does not give unlimited guesses at the second factor.
"""

from __future__ import annotations

from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django_otp.admin import OTPAdminAuthenticationForm


class AdminLoginForm(OTPAdminAuthenticationForm):
    """The admin's password-and-OTP form; a refused second factor is
    recorded as a failed login like a wrong password."""

    def clean_otp(self, user):
        try:
            super().clean_otp(user)
        except ValidationError:
            user_login_failed.send(
                sender=__name__,
                credentials={"username": user.get_username()},
                request=self.request,
            )
            raise


def client_address(request) -> str:
    """The address a login came from: behind the TLS proxy (the setting
    SECURE_PROXY_SSL_HEADER) the last X-Forwarded-For entry, the one the
    proxy added; otherwise the connection's address. Without this every
    login behind the proxy would count against the proxy's address."""
    from django.conf import settings

    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR", "")


def lockout_response(request, original_response=None, credentials=None):
    """What a locked account or address sees (AXES_LOCKOUT_CALLABLE)."""
    from django.conf import settings
    from django.contrib import admin

    return render(
        request,
        "admin/login_locked.html",
        {**admin.site.each_context(request), "cooloff_minutes": settings.LOGIN_COOLOFF_MINUTES},
        status=429,
    )
