"""The inquiry settings a manager keeps: categories, reply templates, SLA
policies, business calendars, approval rules and the automatic
acknowledgements. These are configuration rows; reply templates are saved
through `tickets.reply_templates.reply_template_save`, which checks their
variables."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.dates import WEEKDAYS, WEEKDAYS_ABBR
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceFormAdmin, copy_saved
from core.templating import variable_names
from tickets.calendar import WEEKDAY_KEYS, calendar_from_spec
from tickets.models import (
    AutoAcknowledgement,
    BusinessCalendar,
    CalendarClosure,
    Category,
    ReplyApprovalRule,
    ReplyTemplate,
    SlaClock,
    SlaPolicy,
)
from tickets.reply_templates import (
    ACK_ROOTS,
    LINE_VARIANT_MAX_CHARS,
    REPLY_ROOTS,
    reply_template_save,
    template_variables_check,
)
from tickets.services import reply_approval_rule_delete, reply_approval_rule_save


def _variables_text(roots) -> str:
    return ", ".join(f"{{{{ {name} }}}}" for name in variable_names(roots))


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "is_complaint", "position")
    list_editable = ("position",)
    ordering = ("position", "name")
    search_fields = ("name", "code")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # inquiries and reports keep their category


class ReplyTemplateForm(forms.ModelForm):
    class Meta:
        model = ReplyTemplate
        fields = ("name", "category", "body", "line_body", "is_active")
        widgets = {
            "body": forms.Textarea(attrs={"rows": 20, "class": "vLargeTextField"}),
            "line_body": forms.Textarea(attrs={"rows": 8, "class": "vLargeTextField"}),
        }
        help_texts = {
            "body": format_lazy(
                _(
                    "Variables: {variables}. The extra values come from the date (and "
                    "time) the agent picks on the inquiry page: expected_date, "
                    "restock_date, recovery_eta."
                ),
                variables=_variables_text(REPLY_ROOTS),
            ),
            "line_body": format_lazy(
                _(
                    "Optional. What a reply by LINE uses instead of the text above: a short "
                    "chat message (at most {max} characters), without the mail signature or "
                    "wording such as 「本メール」. Same variables."
                ),
                max=LINE_VARIANT_MAX_CHARS,
            ),
        }

    def clean_body(self) -> str:
        body = self.cleaned_data["body"].replace("\r\n", "\n")
        try:
            template_variables_check(body, roots=REPLY_ROOTS, field="body")
        except ValidationError as error:
            raise ValidationError(error.messages) from None
        return body


@admin.register(ReplyTemplate)
class ReplyTemplateAdmin(ServiceFormAdmin):
    form = ReplyTemplateForm
    list_display = ("name", "category", "is_active", "updated_at")
    list_filter = ("is_active", "category")
    list_select_related = ("category",)
    search_fields = ("name", "body")
    ordering = ("name",)

    def save_model(self, request, obj, form, change):
        copy_saved(obj, reply_template_save(template=obj, actor=request.user))


class SlaPolicyForm(forms.ModelForm):
    class Meta:
        model = SlaPolicy
        fields = (
            "name",
            "channel",
            "priority",
            "first_reply_minutes",
            "next_reply_minutes",
            "resolution_minutes",
            "at_risk_minutes",
            "clock",
            "calendar",
            "is_active",
        )
        help_texts = {
            "first_reply_minutes": _(
                "1440 = 24 hours. A change applies to inquiries received from now on; "
                "existing deadlines stay as they were."
            ),
            "channel": _("Blank: any channel. The most specific active policy wins."),
            "at_risk_minutes": _("For the first reply, the next reply and the resolution."),
        }

    def clean(self):
        cleaned_data = super().clean()
        if cleaned_data.get("clock") == SlaClock.BUSINESS and not cleaned_data.get("calendar"):
            self.add_error("calendar", gettext("A business-hours policy needs a calendar."))
        return cleaned_data


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    form = SlaPolicyForm
    list_display = (
        "name",
        "channel",
        "priority",
        "target",
        "at_risk_minutes",
        "clock",
        "calendar",
        "is_active",
    )
    list_filter = ("is_active", "channel", "clock")
    list_select_related = ("calendar",)
    ordering = ("channel", "priority", "name")

    @admin.display(description=_("first reply within"), ordering="first_reply_minutes")
    def target(self, obj: SlaPolicy) -> str:
        hours, minutes = divmod(obj.first_reply_minutes, 60)
        if minutes:
            return gettext("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
        return gettext("%(hours)d h") % {"hours": hours}

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # inquiries point at their policy: deactivate instead


def _day_field(label) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        widget=forms.TextInput(attrs={"size": 40, "placeholder": "09:00-12:00, 13:00-18:00"}),
    )


class BusinessCalendarForm(forms.ModelForm):
    """Opening hours as seven text inputs, one per weekday."""

    hours_mon = _day_field(WEEKDAYS[0])
    hours_tue = _day_field(WEEKDAYS[1])
    hours_wed = _day_field(WEEKDAYS[2])
    hours_thu = _day_field(WEEKDAYS[3])
    hours_fri = _day_field(WEEKDAYS[4])
    hours_sat = _day_field(WEEKDAYS[5])
    hours_sun = _day_field(WEEKDAYS[6])

    class Meta:
        model = BusinessCalendar
        fields = ("name", "time_zone", "japanese_holidays", "year_end_closure")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        hours = self.instance.hours or {}
        for key in WEEKDAY_KEYS:
            self.initial.setdefault(f"hours_{key}", ", ".join(hours.get(key, [])))
        self.fields[f"hours_{WEEKDAY_KEYS[0]}"].help_text = _(
            "Periods as HH:MM-HH:MM, separated by commas (a lunch break makes two "
            "periods). Leave a day empty when the shop is closed."
        )

    def clean(self):
        cleaned_data = super().clean()
        spec = {}
        for key in WEEKDAY_KEYS:
            text = (cleaned_data.get(f"hours_{key}") or "").replace("、", ",")
            periods = [part.strip().replace("〜", "-") for part in text.split(",") if part.strip()]
            if periods:
                spec[key] = periods
        try:
            calendar_from_spec(spec, tz=cleaned_data.get("time_zone") or "Asia/Tokyo")
        except ValueError as error:
            detail = str(error)
            day = detail.split(":", 1)[0]
            if day in WEEKDAY_KEYS:
                self.add_error(
                    f"hours_{day}",
                    gettext("Write periods like 09:00-12:00, 13:00-18:00 (%(detail)s).")
                    % {"detail": detail},
                )
            elif "time zone" in detail:
                self.add_error("time_zone", gettext("Unknown time zone."))
            else:
                self.add_error(None, gettext("Give at least one opening period."))
        self.instance.hours = spec
        return cleaned_data


class CalendarClosureInline(admin.TabularInline):
    model = CalendarClosure
    extra = 1
    fields = ("start_date", "end_date", "reason")


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    form = BusinessCalendarForm
    list_display = ("name", "time_zone", "opening_hours", "japanese_holidays", "year_end_closure")
    inlines = (CalendarClosureInline,)

    def get_fields(self, request, obj=None):
        return [
            "name",
            "time_zone",
            *(f"hours_{key}" for key in WEEKDAY_KEYS),
            "japanese_holidays",
            "year_end_closure",
        ]

    @admin.display(description=_("opening hours"))
    def opening_hours(self, obj: BusinessCalendar) -> str:
        return " / ".join(
            f"{WEEKDAYS_ABBR[index]} {', '.join(obj.hours[key])}"
            for index, key in enumerate(WEEKDAY_KEYS)
            if obj.hours.get(key)
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # SLA policies count time with it


@admin.register(ReplyApprovalRule)
class ReplyApprovalRuleAdmin(ServiceFormAdmin):
    list_display = ("group", "created_by", "created_at")
    list_select_related = ("group", "created_by")
    fields = ("group",)

    def save_model(self, request, obj, form, change):
        reply_approval_rule_save(rule=obj, actor=request.user)

    def delete_model(self, request, obj):
        reply_approval_rule_delete(rule=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for rule in queryset.select_related("group"):
            reply_approval_rule_delete(rule=rule, actor=request.user)


class AutoAcknowledgementForm(forms.ModelForm):
    class Meta:
        model = AutoAcknowledgement
        fields = ("channel", "body", "is_active")
        widgets = {"body": forms.Textarea(attrs={"rows": 14, "class": "vLargeTextField"})}
        help_texts = {
            "body": format_lazy(
                _("Variables: {variables}. It does not stop the first-reply clock."),
                variables=_variables_text(ACK_ROOTS),
            )
        }

    def clean_body(self) -> str:
        body = self.cleaned_data["body"].replace("\r\n", "\n")
        try:
            template_variables_check(body, roots=ACK_ROOTS, field="body")
        except ValidationError as error:
            raise ValidationError(error.messages) from None
        return body


@admin.register(AutoAcknowledgement)
class AutoAcknowledgementAdmin(admin.ModelAdmin):
    form = AutoAcknowledgementForm
    list_display = ("channel", "is_active")
    list_filter = ("is_active",)
