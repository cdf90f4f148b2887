"""Phone calls in the admin: the 「電話を記録」 form on the inquiry page
(include admin/tickets/inquiry/includes/call_form.html, posting to
`<id>/call/`), and the pickers of the new-inquiry form, where an agent
enters a call from a new inquiry: customers shown with kana, phone and
email (two 「山本 一郎」 told apart), orders limited to the chosen customer.
Both write through tickets.services.calls."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib import messages
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import form_errors_add
from crm.models import Customer, Order
from tickets.models import Inquiry
from tickets.services.calls import CALL_MAX_MINUTES, inquiry_call_log

MESSAGE_ADD = "tickets.add_inquirymessage"
# The call fields, the same on the inquiry page and the new-inquiry form.
CALL_MINUTES_LABEL = _("call length (minutes)")
ANSWERED_LABEL = _("answered on the spot")
ANSWERED_HELP = _("The customer got their answer during the call: it counts as the first reply.")


class CallForm(forms.Form):
    prefix = "call"
    minutes = forms.IntegerField(label=CALL_MINUTES_LABEL, min_value=0, max_value=CALL_MAX_MINUTES)
    notes = forms.CharField(
        label=_("what was said"),
        widget=forms.Textarea(attrs={"rows": 4, "class": "vLargeTextField"}),
    )
    answered = forms.BooleanField(label=ANSWERED_LABEL, required=False, help_text=ANSWERED_HELP)


if TYPE_CHECKING:
    # Before InquiryPageMixin in InquiryAdmin: its render_page, _back and
    # _inquiry_or_404 are the page's (see core.admin.ServiceFormAdminPart).
    from tickets.admin.inquiry_page import InquiryPageMixin as _CallsBase
else:
    _CallsBase = object


class InquiryCallMixin(_CallsBase):
    """Part of InquiryAdmin: logging a call on an existing inquiry."""

    def get_urls(self):
        return [
            path(
                "<path:object_id>/call/",
                self.admin_site.admin_view(self.call_view),
                name="tickets_inquiry_call",
            ),
            *super().get_urls(),
        ]

    def render_page(
        self, request: HttpRequest, inquiry: Inquiry, *, bound=None
    ) -> TemplateResponse:
        response = super().render_page(request, inquiry, bound=bound)
        assert response.context_data is not None  # render_page renders with a context
        # Whoever may reply may log a call (the reply box is there).
        if response.context_data.get("reply_form") is not None:
            response.context_data["call_form"] = (bound or {}).get("call") or CallForm()
        return response

    def call_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        inquiry = self._inquiry_or_404(request, object_id, change=True)
        if not request.user.has_perm(MESSAGE_ADD):
            raise PermissionDenied
        form = CallForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                message = inquiry_call_log(
                    inquiry=inquiry,
                    notes=data["notes"],
                    minutes=data["minutes"],
                    answered=data["answered"],
                    actor=request.user,
                )
            except ValidationError as error:
                form_errors_add(form, error)
            else:
                self.message_user(request, gettext("The call is logged."), messages.SUCCESS)
                # A call on an inquiry closed long ago opened a new one.
                return self._back(Inquiry(pk=message.inquiry_id), "latest")
        return self.render_page(request, inquiry, bound={"call": form})


# --- The new-inquiry form's pickers -------------------------------------------------


def customer_choice_label(customer: Customer) -> str:
    """山本 一郎（ヤマモト イチロウ）090-1234-5678 · ichiro@example.jp"""
    kana = f"（{customer.display_name_kana}）" if customer.display_name_kana else ""
    contacts = " · ".join(value for value in (customer.phone, customer.email) if value)
    return f"{customer.label}{kana} {contacts}".strip()


def order_choice_label(order: Order) -> str:
    """楽天市場 R-1001 · 2026-11-20 · ¥4,980"""
    from crm.admin import yen

    return f"{order} · {order.ordered_at:%Y-%m-%d} · {yen(order.total)}"


class PickerAutocompleteView(AutocompleteJsonView):
    """The admin's autocomplete, telling people apart: a customer with kana,
    phone and email; an inquiry's order only among the chosen customer's
    orders (`customer`, sent by tickets/new_inquiry.js; none without it)."""

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.source_field.model is Inquiry and self.source_field.name == "order":
            customer = self.request.GET.get("customer", "")
            if not customer.isdigit():
                return queryset.none()
            queryset = queryset.filter(customer_id=int(customer))
        return queryset

    def serialize_result(self, obj, to_field_name):
        result = super().serialize_result(obj, to_field_name)
        if isinstance(obj, Customer):
            result["text"] = customer_choice_label(obj)
        elif isinstance(obj, Order):
            result["text"] = order_choice_label(obj)
        return result
