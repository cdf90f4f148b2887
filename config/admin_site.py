"""The admin site: Japanese titles, a second factor for staff, and a home
page per role (reports.home: the work first, the list of tables below).

With ADMIN_REQUIRE_OTP (the default), a staff member gets in only after
entering a one-time password from a registered device (django-otp: TOTP
apps such as Google Authenticator, or static backup codes). Enrol with
`manage.py otp_enroll <username>`.
"""

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.utils.translation import gettext_lazy as _

from core.login_security import AdminLoginForm


class MadoguchiAdminSite(admin.AdminSite):
    site_header = _("Madoguchi")
    site_title = _("Madoguchi")
    index_title = _("Customer service and CRM")

    @property
    def login_form(self):
        return AdminLoginForm if settings.ADMIN_REQUIRE_OTP else AdminAuthenticationForm

    @property
    def login_template(self):
        return "otp/admin111/login.html" if settings.ADMIN_REQUIRE_OTP else None

    def has_permission(self, request) -> bool:
        allowed = super().has_permission(request)
        if allowed and settings.ADMIN_REQUIRE_OTP:
            return request.user.is_verified()
        return allowed

    def autocomplete_view(self, request):
        """Pickers that tell people apart (kana, phone, email) and offer only
        the chosen customer's orders (tickets.admin.calls)."""
        from tickets.admin.calls import PickerAutocompleteView

        return PickerAutocompleteView.as_view(admin_site=self)(request)

    def index(self, request, extra_context=None):
        """The role's work page above the usual list of tables."""
        from reports.home import home_context  # models: this module loads before the apps

        return super().index(request, {**home_context(request), **(extra_context or {})})
