"""The customer page's 「個人データを書き出す」 and 「個人データを削除する」
(managers only, with a reason), mixed into CustomerAdmin. Both call
crm.services.privacy; the summary shows the export's document with every
code by its Japanese label."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceFormAdminPart
from core.choices import Channel
from core.roles import is_manager
from crm.models import (
    ConsentAction,
    ConsentChannel,
    ConsentSource,
    Customer,
    LifecycleSegment,
    OrderStatus,
)
from crm.services import customer_erase, customer_export


class PrivacyReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("reason"),
        max_length=500,
        widget=forms.TextInput(attrs={"class": "vTextField"}),
        help_text=_("Whose request and when, e.g. “the customer asked by phone on 5 December”."),
    )


class PrivacyExportForm(PrivacyReasonForm):
    DOWNLOAD = "download"
    SUMMARY = "summary"
    output = forms.ChoiceField(
        label=_("output"),
        choices=[
            (SUMMARY, _("View a readable summary")),
            (DOWNLOAD, _("Download everything as a file (JSON)")),
        ],
        initial=SUMMARY,
        widget=forms.RadioSelect,
    )


def _labels(*choices) -> dict[str, str]:
    labels: dict[str, str] = {}
    for choice in choices:
        labels.update({value: str(label) for value, label in choice.choices})
    return labels


def summary_document(document: dict[str, Any]) -> dict[str, Any]:
    """The export's document with each code (channel, status, action...)
    replaced by its label, for the summary page."""
    from outreach.models import DeliveryStatus, Purpose, SendKind
    from tickets.models import InquiryStatus, MessageKind

    channels = _labels(Channel, ConsentChannel)
    by_section = {
        "customers": {"lifecycle_segment": _labels(LifecycleSegment)},
        "orders": {"channel": channels, "status": _labels(OrderStatus)},
        "inquiries": {"channel": channels, "status": _labels(InquiryStatus)},
        "messages": {"channel": channels, "kind": _labels(MessageKind)},
        "consent_events": {
            "channel": channels,
            "action": _labels(ConsentAction),
            "source": _labels(ConsentSource),
        },
        "consent_now": {"channel": channels},
        "channel_profiles": {"channel": channels},
        "identities": {"channel": channels},
        "deliveries": {
            "channel": channels,
            "status": _labels(DeliveryStatus),
            "send__kind": _labels(SendKind),
            "send__purpose": _labels(Purpose),
        },
    }

    def labelled(section: str, row: dict[str, Any]) -> dict[str, Any]:
        names = by_section.get(section, {})
        row = {
            key: names[key].get(value, value) if key in names else value
            for key, value in row.items()
        }
        if "messages" in row:
            row["messages"] = [labelled("messages", message) for message in row["messages"]]
        return row

    return {
        key: [labelled(key, row) for row in value] if isinstance(value, list) else value
        for key, value in document.items()
    }


class CustomerPrivacyAdminMixin(ServiceFormAdminPart):
    """The two pages, their URLs and who may open them."""

    def privacy_urls(self):
        return [
            path(
                "<path:object_id>/personal-data/export/",
                self.admin_site.admin_view(self.privacy_export_view),
                name="crm_customer_privacy_export",
            ),
            path(
                "<path:object_id>/personal-data/erase/",
                self.admin_site.admin_view(self.privacy_erase_view),
                name="crm_customer_privacy_erase",
            ),
        ]

    def _privacy_check(self, request: HttpRequest) -> None:
        if not is_manager(request.user):
            raise PermissionDenied

    def privacy_export_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._privacy_check(request)

        def export(customer: Customer, data) -> HttpResponse:
            document = customer_export(
                customer=customer, actor=request.user, reason=data["reason"], request=request
            )
            if data["output"] == PrivacyExportForm.DOWNLOAD:
                response = HttpResponse(
                    json.dumps(document, ensure_ascii=False, indent=2),
                    content_type="application/json; charset=utf-8",
                )
                response["Content-Disposition"] = (
                    f'attachment; filename="personal-data-{customer.pk}.json"'
                )
                return response
            context = {
                **self.admin_site.each_context(request),
                "title": gettext("Personal data held about this customer"),
                "subtitle": str(customer),
                "opts": self.model._meta,
                "original": customer,
                "document": summary_document(document),
            }
            return TemplateResponse(
                request, "admin/crm/customer/personal_data_summary.html", context
            )

        return self.object_form_view(
            request,
            object_id,
            form_class=PrivacyExportForm,
            title=gettext("Export personal data"),
            template="admin/crm/customer/personal_data_export.html",
            done=export,
        )

    def privacy_erase_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._privacy_check(request)

        def erase(customer: Customer, data) -> HttpResponse:
            customer_erase(
                customer=customer, actor=request.user, reason=data["reason"], request=request
            )
            self.message_user(
                request,
                gettext(
                    "The customer's personal data was erased. Orders, figures and the record "
                    "of consent remain under the customer number #%(id)s."
                )
                % {"id": customer.pk},
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:crm_customer_change", args=[customer.pk]))

        return self.object_form_view(
            request,
            object_id,
            form_class=PrivacyReasonForm,
            title=gettext("Erase personal data"),
            template="admin/crm/customer/personal_data_erase.html",
            done=erase,
        )
