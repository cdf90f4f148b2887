"""The sales suspension admin's forms: recording a suspension, lifting it,
linking inquiries, and the notice template fields they share (checked by
the service's own template check before anything is recorded).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.functional import lazy
from django.utils.text import capfirst, format_lazy
from django.utils.translation import gettext_lazy as _

from core.choices import Channel
from crisis.models import (
    Suspension,
    SuspensionNoticeKind,
)
from crisis.selectors.suspensions import suspension_suggested_inquiries
from crisis.services.suspensions import (
    DATE_VARIABLE,
    SALES_CHANNELS,
    notice_template_problems,
)
from outreach.models import MessageChannel, MessageTemplate, Purpose
from outreach.templating import variable_label


def notice_templates(channel: str):
    return MessageTemplate.objects.filter(channel=channel, purpose=Purpose.TRANSACTIONAL)


def notice_template_field(channel: str, *, help_text) -> forms.ModelChoiceField:
    """A notice's template on one channel (when recording, when lifting)."""
    return forms.ModelChoiceField(
        label=capfirst(_("email template"))
        if channel == MessageChannel.EMAIL
        else _("LINE template"),
        queryset=notice_templates(channel),
        required=False,
        help_text=help_text,
    )


LINE_TEMPLATE_HELP = _(
    "Optional. Customers on LINE get this one; everyone else the email. Each customer is told once."
)


def notice_templates_clean(form: forms.BaseForm, *, kind: str) -> None:
    """The service's own template check (notice_template_problems), shown on
    the form's fields before anything is recorded."""
    for name in ("email_template", "line_template"):
        template = form.cleaned_data.get(name)
        if template is not None:
            for problem in notice_template_problems(template=template, kind=kind):
                form.add_error(name, problem)


class SuspensionAddForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(
        label=capfirst(_("channels")),
        choices=[(code, label) for code, label in Channel.choices if code in SALES_CHANNELS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("Where the sale stops."),
    )
    expected_resume_at = forms.DateTimeField(
        label=capfirst(_("expected to resume")),
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_(
            "The concrete date customers are told. A stock-out or delay of 48 hours or more "
            "must stop the sale (販売停止の判断基準)."
        ),
    )

    email_template = notice_template_field(
        MessageChannel.EMAIL,
        help_text=format_lazy(
            _(
                "Customers with an open (not yet shipped) order of the SKU, on any channel, "
                "are told by email (Amazon buyers through their relay address). The template "
                "must give the {what}. Leave empty to tell nobody."
            ),
            what=lazy(variable_label, str)(DATE_VARIABLE),
        ),
    )
    line_template = notice_template_field(MessageChannel.LINE, help_text=LINE_TEMPLATE_HELP)

    class Meta:
        model = Suspension
        fields = ("sku", "product_name", "reason", "expected_resume_at", "sales_stopped", "note")

    def clean(self) -> dict[str, Any]:
        cleaned_data: dict[str, Any] = super().clean()  # type: ignore[assignment]  # Form.clean returns cleaned_data; the stubs allow None for overrides
        notice_templates_clean(self, kind=SuspensionNoticeKind.SUSPENDED)
        return cleaned_data


class LiftForm(forms.Form):
    email_template = notice_template_field(
        MessageChannel.EMAIL,
        help_text=_(
            "Optional: the customers the delay notice went to are told the product ships "
            "again, once. Leave empty to lift without a message."
        ),
    )
    line_template = notice_template_field(MessageChannel.LINE, help_text=LINE_TEMPLATE_HELP)

    def clean(self) -> dict[str, Any]:
        cleaned_data: dict[str, Any] = super().clean()  # type: ignore[assignment]  # Form.clean returns cleaned_data; the stubs allow None for overrides
        notice_templates_clean(self, kind=SuspensionNoticeKind.RESUMED)
        return cleaned_data


class LinkForm(forms.Form):
    inquiries = forms.TypedMultipleChoiceField(coerce=int, choices=())

    def __init__(self, *args: Any, suspension: Suspension, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["inquiries"].choices = [  # type: ignore[attr-defined]  # this field is a MultipleChoiceField; Form.fields holds Field
            (pk, pk)
            for pk in suspension_suggested_inquiries(suspension).values_list("pk", flat=True)
        ]
