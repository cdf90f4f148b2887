"""InquiryAdmin: the inbox (changelist, tickets/admin/inbox.py), the
inquiry page (change view, tickets/admin/inquiry_page.py) and the add form,
where an agent enters a phone call or a counter visit (SPEC rule 11)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceFormAdmin, copy_saved
from core.choices import Channel
from tickets.admin.calls import (
    ANSWERED_HELP,
    ANSWERED_LABEL,
    CALL_MINUTES_LABEL,
    InquiryCallMixin,
)
from tickets.admin.inbox import InboxMixin
from tickets.admin.inquiry_page import InquiryPageMixin
from tickets.admin.merge_pages import InquiryMergeMixin
from tickets.models import Inquiry
from tickets.services import InboundMessage, inquiry_call_create, inquiry_create
from tickets.services.calls import CALL_MAX_MINUTES


class InquiryAddForm(forms.ModelForm):
    body_text = forms.CharField(
        label=_("what the customer said"),
        widget=forms.Textarea(attrs={"rows": 8, "class": "vLargeTextField"}),
    )

    # A phone call: how long it took, and whether it was answered on the spot.
    call_minutes = forms.IntegerField(
        label=CALL_MINUTES_LABEL,
        min_value=0,
        max_value=CALL_MAX_MINUTES,
        required=False,
        help_text=_("Phone inquiries only."),
    )
    call_answered = forms.BooleanField(
        label=ANSWERED_LABEL, required=False, help_text=ANSWERED_HELP
    )

    class Meta:
        model = Inquiry
        fields = ("customer", "channel", "order", "subject", "category", "priority")

    class Media:
        # After the admin's autocomplete: the order picker asks for the chosen
        # customer's orders only.
        js = ("admin/js/autocomplete.js", "tickets/new_inquiry.js")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].initial = Channel.PHONE

    def clean(self):
        cleaned_data = super().clean()
        if cleaned_data.get("channel") != Channel.PHONE and (
            cleaned_data.get("call_answered") or cleaned_data.get("call_minutes") is not None
        ):
            self.add_error("call_minutes", _("Only a phone inquiry has a call length."))
        return cleaned_data


@admin.register(Inquiry)
class InquiryAdmin(
    InboxMixin, InquiryMergeMixin, InquiryCallMixin, InquiryPageMixin, ServiceFormAdmin
):
    form = InquiryAddForm
    autocomplete_fields = ("customer", "order")
    fields = (
        "customer",
        "channel",
        "order",
        "subject",
        "body_text",
        "call_minutes",
        "call_answered",
        "category",
        "priority",
    )

    class Media:
        css = {"all": ("tickets/admin.css",)}

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # an inquiry is closed, never deleted: reports count it

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if data["channel"] == Channel.PHONE:
            inquiry = inquiry_call_create(
                customer=data["customer"],
                subject=data["subject"],
                notes=data["body_text"],
                minutes=data["call_minutes"],
                answered=data["call_answered"],
                order=data.get("order"),
                category=data.get("category"),
                priority=data["priority"],
                actor=request.user,
            )
            copy_saved(obj, inquiry)
            return
        inquiry = inquiry_create(
            customer=data["customer"],
            channel=data["channel"],
            message=InboundMessage(subject=data["subject"], body_text=data["body_text"]),
            order=data.get("order"),
            category=data.get("category"),
            priority=data["priority"],
            author=request.user,
        )
        copy_saved(obj, inquiry)

    def save_related(self, request, form, formsets, change):
        pass  # inquiry_create wrote the first message

    def response_add(self, request, obj, post_url_continue=None):
        super().response_add(request, obj, post_url_continue)  # its success message
        return HttpResponseRedirect(reverse("admin:tickets_inquiry_change", args=[obj.pk]))
