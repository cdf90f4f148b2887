"""Read-only records: the inbound mail log (with the raw bytes of failed
mail for download) and each staff member's notifications."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models.functions import Length
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, staff_column
from core.admin_filters import DefaultingFilter
from core.roles import is_manager
from tickets.models import InboundMail, StaffNotification
from tickets.services import staff_notifications_mark_read
from tickets.services.notices import NOT_MAILED_OWN_ADDRESS


def inquiry_link(inquiry) -> str:
    if inquiry is None:
        return "—"
    url = reverse("admin:tickets_inquiry_change", args=[inquiry.pk])
    return format_html('<a href="{}">{}</a> {}', url, inquiry.reference, inquiry.subject)


@admin.register(InboundMail)
class InboundMailAdmin(ReadOnlyAdmin):
    list_display = (
        "received_at",
        "status",
        "from_address",
        "subject",
        "source",
        "reason_excerpt",
        "inquiry",
    )
    list_filter = ("status", "source")
    search_fields = ("subject", "from_address", "=message_id")
    ordering = ("-received_at", "-id")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = (
        "received_at",
        "status",
        "reason",
        "source",
        "message_id",
        "from_address",
        "subject",
        "inquiry",
        "raw_download",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        # The raw bytes stay in the database until someone downloads them.
        return (
            super()
            .get_queryset(request)
            .defer("raw")
            .annotate(raw_size=Length("raw"))
            .select_related("inquiry_message__inquiry")
        )

    @admin.display(description=_("reason"))
    def reason_excerpt(self, obj: InboundMail) -> str:
        return Truncator(obj.reason).chars(80)

    @admin.display(description=_("inquiry"))
    def inquiry(self, obj: InboundMail) -> str:
        message = obj.inquiry_message
        return inquiry_link(message.inquiry if message else None)

    @admin.display(description=_("raw message"))
    def raw_download(self, obj: InboundMail) -> str:
        if not obj.raw_size:  # type: ignore[attr-defined]  # annotated by get_queryset
            return "—"
        url = reverse("admin:tickets_inboundmail_raw", args=[obj.pk])
        return format_html(
            '<a href="{}" download>{}</a> ({} bytes)',
            url,
            gettext("Download the raw message (.eml)"),
            f"{obj.raw_size:,}",  # type: ignore[attr-defined]  # annotated by get_queryset
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/raw/",
                self.admin_site.admin_view(self.raw_view),
                name="tickets_inboundmail_raw",
            ),
            *super().get_urls(),
        ]

    def raw_view(self, request, object_id: str) -> HttpResponse:
        mail = InboundMail.objects.filter(pk=unquote(object_id)).first()
        if mail is None or not mail.raw:
            raise Http404
        if not self.has_view_permission(request, mail):
            raise PermissionDenied
        response = HttpResponse(bytes(mail.raw), content_type="message/rfc822")
        response["Content-Disposition"] = f'attachment; filename="inbound-{mail.pk}.eml"'
        return response


class NotificationOwnerFilter(DefaultingFilter):
    """Mine by default; managers may look at everyone's."""

    title = _("for")
    parameter_name = "for"
    default_title = _("Me")

    def lookups(self, request, model_admin):
        # Only managers get the filter; everyone else sees only their own
        # (StaffNotificationAdmin.get_queryset).
        return [("all", _("Everyone"))] if is_manager(request.user) else []

    def queryset(self, request, queryset):
        return queryset if self.value() == "all" else queryset.filter(user=request.user)


class ReadFilter(admin.SimpleListFilter):
    title = _("read")
    parameter_name = "read"

    def lookups(self, request, model_admin):
        return [("no", _("Unread")), ("yes", _("Already read"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(read_at__isnull=self.value() == "no")
        return queryset


@admin.register(StaffNotification)
class StaffNotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "inquiry_column", "user_name", "mail_column", "unread")
    list_display_links = None
    list_filter = (NotificationOwnerFilter, ReadFilter, "kind")
    list_select_related = ("inquiry", "incident", "user")
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ("mark_read",)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if is_manager(request.user) else queryset.filter(user=request.user)

    @admin.display(description=_("inquiry"))
    def inquiry_column(self, obj: StaffNotification) -> str:
        if obj.inquiry is None:  # about an incident
            assert obj.incident is not None  # a notice is about one or the other
            url = reverse("admin:crisis_incident_change", args=[obj.incident_id])
            return format_html('<a href="{}">{}</a>', url, obj.incident.title)
        return inquiry_link(obj.inquiry)

    user_name = staff_column(StaffNotification, "user")

    @admin.display(description=_("mail"))
    def mail_column(self, obj: StaffNotification) -> str:
        if obj.emailed_at is not None:
            return gettext("Mailed") if obj.user.email else gettext("Not mailed: no address")
        if obj.email_failed_at is not None:
            if obj.email_error == NOT_MAILED_OWN_ADDRESS:
                return gettext("Not mailed: the shop's own address")
            return gettext("Could not be mailed (the address was refused or kept failing)")
        return gettext("Waiting to be mailed")

    @admin.display(description=_("unread"), boolean=True, ordering="read_at")
    def unread(self, obj: StaffNotification) -> bool:
        return obj.read_at is None

    @admin.action(description=_("Mark as read"), permissions=["view"])
    def mark_read(self, request, queryset):
        # Only one's own notifications: a manager looking at everyone's
        # does not read them for the others.
        count = staff_notifications_mark_read(
            user=request.user, ids=queryset.values_list("pk", flat=True)
        )
        self.message_user(
            request,
            ngettext(
                "%(count)d notification marked as read.",
                "%(count)d notifications marked as read.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )
