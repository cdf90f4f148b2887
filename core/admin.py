"""Admin for API keys, and the mixin every service-backed admin form uses.

API keys are created and revoked through `core.services`; the full key is
shown once, in a message, and never stored (only its hash and prefix are).
Keys are revoked, never deleted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from core.models import API_KEY_PREFIX, ApiKey
from core.roles import staff_name
from core.services import api_key_create, api_key_label_set, api_key_revoke, api_key_rotate

_REFUSAL = "_service_refusal"


def form_errors_add(form: forms.BaseForm, error: ValidationError) -> None:
    """Put a service's ValidationError on the form: on the field it names
    when the form has that field, otherwise above the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for name, errors in error.error_dict.items():
        form.add_error(name if name in form.fields else None, errors)


def staff_column(model, field: str):
    """An admin column or read-only field, headed like `model`'s `field`,
    that names the staff member in it (created by, recorded by, recipient)
    as colleagues call them, not by their login name. The queryset should
    select_related(field)."""

    @admin.display(description=model._meta.get_field(field).verbose_name, ordering=field)
    def column(self, obj) -> str:
        return staff_name(getattr(obj, field)) or "-"

    column.__name__ = f"{field}_name"
    return column


class ReadOnlyMixin:
    """For rows that only services write: view permission is all there is."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    pass


class ServiceFormAdmin(admin.ModelAdmin):
    """A ModelAdmin whose save_model calls services. When a service refuses
    (raises ValidationError), the admin's transaction rolls back and the
    form is shown again with the service's errors on it, as any form error
    would be: no 500, nothing half-written, and the rules stay in the
    service instead of being copied into the form. save_model should add
    messages only after its last service call (a refused pass keeps them)."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method != "POST":
            return super().changeform_view(request, object_id, form_url, extra_context)
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as error:
            # Django ran the first pass in transaction.atomic(): it is undone.
            setattr(request, _REFUSAL, error)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        refusal = getattr(request, _REFUSAL, None)
        if refusal is None:
            return form_class

        class RefusedForm(form_class):
            def clean(self):
                cleaned_data = super().clean()
                form_errors_add(self, refusal)
                return cleaned_data

        return RefusedForm

    def object_form_view(
        self, request: HttpRequest, object_id: str, *, form_class, title: str, template: str, done
    ) -> HttpResponse:
        """A page with one small form about one object (admin/object_form_page.html),
        for whoever may change it. A valid form calls `done(obj, cleaned_data)`,
        which calls the service and returns the response; a ValidationError it
        raises is shown on the form."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]  # Django's private helper, missing from django-stubs
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        form = form_class(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                return done(obj, form.cleaned_data)
            except ValidationError as error:
                form_errors_add(form, error)
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": str(obj),
            "opts": self.model._meta,
            "original": obj,
            "form": form,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, template, context)


# The base of a part (mixin) of a ServiceFormAdmin: to mypy the admin itself,
# so that the part's calls to the admin's methods are checked; at run time
# object, so that the admin's own class order is unchanged.
if TYPE_CHECKING:
    ServiceFormAdminPart = ServiceFormAdmin
else:
    ServiceFormAdminPart = object


def copy_saved(target, saved) -> None:
    """Make the admin's unsaved instance the row a service saved, so that
    Django's response, log entry and redirect refer to it."""
    for field in saved._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db


# --- API keys -----------------------------------------------------------------


class ApiKeyAddForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(
        label=_("channels"),
        choices=Channel.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Channels whose customers and orders this key may see and write."),
    )

    class Meta:
        model = ApiKey
        fields = ("label", "scope", "channels")


class ApiKeyRotateForm(forms.Form):
    grace_hours = forms.TypedChoiceField(
        label=_("Old key keeps working for"),
        coerce=int,
        initial=24,
        choices=[
            (0, _("No grace period (refused at once)")),
            (1, _("1 hour")),
            (24, _("24 hours")),
            (72, _("3 days")),
            (168, _("7 days")),
        ],
        help_text=_(
            "Time for the store site to switch to the new key; after it the old key is refused."
        ),
    )


class RevokedFilter(admin.SimpleListFilter):
    title = _("revoked")
    parameter_name = "revoked"

    def lookups(self, request, model_admin):
        return [("no", _("Active")), ("yes", _("Revoked or expired"))]

    def queryset(self, request, queryset):
        active = Q(revoked_at__isnull=True) & (
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )
        if self.value() == "no":
            return queryset.filter(active)
        if self.value() == "yes":
            return queryset.exclude(active)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceFormAdmin):
    list_display = (
        "label",
        "key_prefix",
        "scope",
        "channel_list",
        "created_at",
        "last_used_at",
        "expiry",
        "active",
    )
    list_filter = (RevokedFilter, "scope")
    search_fields = ("label", "=prefix")
    ordering = ("-created_at", "-id")
    actions = ("revoke_keys",)
    show_full_result_count = False
    readonly_fields = (
        "key_prefix",
        "scope",
        "channel_list",
        "created_by_name",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "rotated_from",
    )
    created_by_name = staff_column(ApiKey, "created_by")

    @admin.display(description=_("key"), ordering="prefix")
    def key_prefix(self, obj: ApiKey) -> str:
        return f"{API_KEY_PREFIX}_{obj.prefix}_…"

    @admin.display(description=_("channels"))
    def channel_list(self, obj: ApiKey) -> str:
        labels = dict(Channel.choices)
        return ", ".join(str(labels.get(value, value)) for value in obj.channels)

    @admin.display(description=_("expires at"), ordering="expires_at")
    def expiry(self, obj: ApiKey) -> str:
        # A bare "-" read as "unknown"; most keys never expire, only a
        # rotated one does, at the end of its grace period.
        if obj.expires_at is None:
            return gettext("No expiry")
        return date_format(timezone.localtime(obj.expires_at), "DATETIME_FORMAT")

    # A red cross under 「無効化」 for every working key read as "broken":
    # the column says whether the key works, like the filter (有効).
    @admin.display(description=_("Active"), boolean=True)
    def active(self, obj: ApiKey) -> bool:
        return obj.is_active

    # --- Rotation ----------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<path:object_id>/rotate/",
                self.admin_site.admin_view(self.rotate_view),
                name="core_apikey_rotate",
            ),
            *super().get_urls(),
        ]

    def rotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Replace a key by a new one (shown once); the old one keeps working
        for the chosen grace period. Whoever may change keys (managers)."""

        def rotate(api_key: ApiKey, data) -> HttpResponse:
            new_key, secret = api_key_rotate(
                key=api_key, grace_hours=data["grace_hours"], actor=request.user
            )
            self.log_change(
                request, api_key, gettext("Rotated: replaced by %(key)s.") % {"key": new_key}
            )
            self.log_addition(request, new_key, gettext("Rotated from %(key)s.") % {"key": api_key})
            messages.warning(request, self.secret_message(secret))
            return HttpResponseRedirect(reverse("admin:core_apikey_change", args=[new_key.pk]))

        return self.object_form_view(
            request,
            object_id,
            form_class=ApiKeyRotateForm,
            title=gettext("Rotate the key"),
            template="admin/core/apikey/rotate_form.html",
            done=rotate,
        )

    @staticmethod
    def secret_message(secret: str) -> str:
        return gettext(
            "The new API key is %(key)s — copy it now: it is stored only as a hash "
            "and will not be shown again."
        ) % {"key": secret}

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["label", "scope", "channels"]
        return ["label", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # keys are revoked, never deleted

    def save_model(self, request, obj, form, change):
        if change:
            if "label" in form.changed_data:  # only the label is editable
                api_key_label_set(api_key=obj, label=obj.label, actor=request.user)
            return
        api_key, secret = api_key_create(
            label=form.cleaned_data["label"],
            scope=form.cleaned_data["scope"],
            channels=form.cleaned_data["channels"],
            actor=request.user,
        )
        copy_saved(obj, api_key)
        messages.warning(request, self.secret_message(secret))

    @admin.action(description=_("Revoke selected keys"), permissions=["change"])
    def revoke_keys(self, request, queryset):
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key, actor=request.user)
            revoked += 1
        self.message_user(
            request,
            gettext("%(count)d API key(s) revoked.") % {"count": revoked},
            messages.SUCCESS,
        )


# The other screens of core, registered by importing them.
from core import audit_admin, staff_admin  # noqa: E402, F401
