"""The admin's 「スタッフ」 page: each staff member's second factor.

Managers (and superusers) see every staff member and reset a lost
authenticator (core.services.second_factor_reset); everyone sees their own
row and issues themselves ten backup codes, shown once
(core.services.backup_codes_generate).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyMixin
from core.models import StaffMember
from core.roles import is_manager, staff_name
from core.services import backup_codes_generate, login_unlock, second_factor_reset


@admin.register(StaffMember)
class StaffMemberAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("name", "authenticator", "backup_codes_left", "is_active")
    list_display_links = None
    fields = ("last_name", "first_name")
    actions = ["second_factor_reset_action", "login_unlock_action"]
    search_fields = ("last_name", "first_name", "username")

    def get_queryset(self, request):
        rows = (
            super()
            .get_queryset(request)
            .filter(is_staff=True)
            .annotate(
                totp_devices=Count(
                    "totpdevice", filter=Q(totpdevice__confirmed=True), distinct=True
                ),
                backup_codes=Count("staticdevice__token_set", distinct=True),
            )
            .order_by("last_name", "first_name", "username")
        )
        return rows if is_manager(request.user) else rows.filter(pk=request.user.pk)

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_reset_permission(self, request) -> bool:
        return is_manager(request.user)

    def has_unlock_permission(self, request) -> bool:
        return request.user.is_superuser

    @admin.display(description=_("name"), ordering="last_name")
    def name(self, obj) -> str:
        return staff_name(obj)

    @admin.display(description=_("authenticator app"), boolean=True)
    def authenticator(self, obj) -> bool:
        return obj.totp_devices > 0

    @admin.display(description=_("backup codes left"))
    def backup_codes_left(self, obj) -> int:
        return obj.backup_codes

    @admin.action(description=_("Reset the second factor (lost device)"), permissions=["reset"])
    def second_factor_reset_action(self, request, queryset):
        done = 0
        for member in queryset:
            try:
                second_factor_reset(user=member, actor=request.user)
            except ValidationError as error:
                self.message_user(
                    request, f"{staff_name(member)}: {' '.join(error.messages)}", messages.ERROR
                )
                continue
            done += 1
        if done:
            self.message_user(
                request,
                ngettext(
                    "Second factor reset for %(count)d staff member. They can log in again "
                    "once an administrator has enrolled a new authenticator app for them.",
                    "Second factor reset for %(count)d staff members. They can log in again "
                    "once an administrator has enrolled a new authenticator app for them.",
                    done,
                )
                % {"count": done},
                messages.SUCCESS,
            )

    @admin.action(description=_("Unlock the login (too many failures)"), permissions=["unlock"])
    def login_unlock_action(self, request, queryset):
        for member in queryset:
            login_unlock(user=member, actor=request.user)
        self.message_user(
            request,
            ngettext(
                "Login unlocked for %(count)d staff member.",
                "Login unlocked for %(count)d staff members.",
                len(queryset),
            )
            % {"count": len(queryset)},
            messages.SUCCESS,
        )

    def get_urls(self):
        own = [
            path(
                "backup-codes/",
                self.admin_site.admin_view(self.backup_codes_view),
                name="core_staffmember_backup_codes",
            )
        ]
        return own + super().get_urls()

    def backup_codes_view(self, request):
        """Issue oneself new backup codes (POST) and show them, once."""
        codes = None
        if request.method == "POST":
            codes = backup_codes_generate(user=request.user, actor=request.user)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Backup codes"),
            "opts": self.model._meta,
            "codes": codes,
        }
        return TemplateResponse(request, "admin/core/staffmember/backup_codes.html", context)
