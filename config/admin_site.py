"""The admin site: Japanese titles, a second factor for staff, and a home
page per role (reports.home: the work first, the list of tables below).

With ADMIN_REQUIRE_OTP (the default), a staff member gets in only after
entering a one-time password from a registered device (django-otp: TOTP
apps such as Google Authenticator, or static backup codes). Enrol with
`manage.py otp_enroll <username>`.
"""

from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.login_security import AdminLoginForm

# Django's generic page titles (its own msgids, translated by its catalogue:
# names, not literals, so that makemessages leaves them to Django's) and
# what a support team calls those pages. "Add %(name)s" is also Django's
# msgid for the 「…を追加」 button and breadcrumb: this catalogue's
# translation wins there too, so title and button say the same.
GENERIC_TITLES = {
    "Select %s to change": _("%(name)s list"),
    "Select %s to view": _("%(name)s list"),
    "Select %s": _("Choose %(name)s"),
    "Add %s": _("Add %(name)s"),
    "Change %s": _("Edit %(name)s"),
    "View %s": _("%(name)s details"),
}


def admin_title_plain(context: dict) -> None:
    """Replace Django's generic title of a list or form page (「変更する
    問い合わせ を選択」) with the team's words (「問い合わせ一覧」); titles a
    page sets itself stay."""
    opts, title = context.get("opts"), context.get("title")
    if opts is None or not isinstance(title, str):
        return
    name = opts.verbose_name
    for generic, plain in GENERIC_TITLES.items():
        if title == gettext(generic) % name:
            context["title"] = plain % {"name": name}
            return


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

    def admin_view(self, view, cacheable=False):
        """Every admin page: Django's generic titles in plain words
        (admin_title_plain), one place for all the model admins."""

        @wraps(view)
        def titled(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            context = getattr(response, "context_data", None)
            if isinstance(context, dict) and not getattr(response, "is_rendered", True):
                admin_title_plain(context)
            return response

        return super().admin_view(titled, cacheable)

    def index(self, request, extra_context=None):
        """The role's work page above the usual list of tables."""
        from reports.home import home_context  # models: this module loads before the apps

        return super().index(request, {**home_context(request), **(extra_context or {})})
