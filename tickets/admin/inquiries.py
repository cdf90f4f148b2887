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
from crm.models import Channel
from tickets.admin.inbox import InboxMixin
from tickets.admin.inquiry_page import InquiryPageMixin
from tickets.admin.merge_pages import InquiryMergeMixin
from tickets.models import Inquiry
from tickets.services import inquiry_create


class InquiryAddForm(forms.ModelForm):
    body_text = forms.CharField(
        label=_("what the customer said"),
        widget=forms.Textarea(attrs={"rows": 8, "class": "vLargeTextField"}),
    )

    class Meta:
        model = Inquiry
        fields = ("customer", "channel", "order", "subject", "category", "priority")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].initial = Channel.PHONE


@admin.register(Inquiry)
class InquiryAdmin(InboxMixin, InquiryMergeMixin, InquiryPageMixin, ServiceFormAdmin):
    form = InquiryAddForm
    autocomplete_fields = ("customer", "order")
    fields = ("customer", "channel", "order", "subject", "body_text", "category", "priority")

    class Media:
        css = {"all": ("tickets/admin.css",)}

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # an inquiry is closed, never deleted: reports count it

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        inquiry = inquiry_create(
            customer=data["customer"],
            channel=data["channel"],
            subject=data["subject"],
            body_text=data["body_text"],
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
