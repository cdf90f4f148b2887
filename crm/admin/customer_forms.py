"""The customer pages' forms: the change form (a claimant needs a reason)
and the consent a customer gave staff."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.models import ConsentAction, ConsentChannel


class CustomerForm(forms.ModelForm):
    def clean(self):
        cleaned_data = super().clean()
        reason = (cleaned_data.get("claimant_reason") or "").strip()
        if cleaned_data.get("is_claimant") and not reason:
            self.add_error(
                "claimant_reason",
                _("Enter the reason for flagging this customer as a claimant."),
            )
        return cleaned_data


class ConsentRecordForm(forms.Form):
    """An opt-in or opt-out the customer gave staff: by phone, at the shop
    counter, in a letter."""

    channel = forms.ChoiceField(label=_("channel"), choices=ConsentChannel.choices)
    action = forms.ChoiceField(
        label=_("consent"), choices=ConsentAction.choices, widget=forms.RadioSelect
    )
    note = forms.CharField(
        label=_("note"),
        max_length=255,
        widget=forms.TextInput(attrs={"class": "vTextField"}),
        help_text=_(
            "How and when the customer told you, e.g. “asked by phone on 5 December to stop "
            "the mail magazine”."
        ),
    )
