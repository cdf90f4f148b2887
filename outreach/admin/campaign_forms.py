"""The campaign page's forms: the draft's fields (templates offered by channel), the schedule,
and the test send.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.models import Customer
from outreach import services
from outreach.models import (
    Campaign,
    DeliveryChannel,
    MessageChannel,
)
from outreach.selectors import (
    test_recipients,
)

DATA_FIELDS = ("name", "channel", "template", "segment", "holdout_percent", "attribution_days")


class TemplateSelect(forms.Select):
    """Options carry their template's channel, so the page can offer only
    the templates of the chosen channel."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        instance = getattr(value, "instance", None)
        if instance is not None:
            option["attrs"]["data-channel"] = instance.channel
        return option


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = (*DATA_FIELDS, "scheduled_at")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "template" in self.fields:
            self.fields["template"].help_text = _(
                "The email or LINE message. A postal DM has none: its address list goes "
                "to the print shop."
            )
        for name in ("holdout_percent", "attribution_days"):
            if name in self.fields:
                self.fields[name].required = False
        if "scheduled_at" in self.fields:  # not on a launched campaign's read-only page
            self.fields["scheduled_at"].help_text = _(
                "Set a time and save to schedule the campaign; leave empty to keep it a draft."
            )

    # Left empty: no holdout, and the default window.
    def clean_holdout_percent(self) -> int:
        value = self.cleaned_data.get("holdout_percent")
        return 0 if value is None else value

    def clean_attribution_days(self) -> int:
        value = self.cleaned_data.get("attribution_days")
        return Campaign._meta.get_field("attribution_days").default if value is None else value

    def clean(self) -> dict[str, Any]:
        cleaned_data: dict[str, Any] = super().clean()  # type: ignore[assignment]  # Form.clean returns cleaned_data; the stubs allow None for overrides
        template, channel = cleaned_data.get("template"), cleaned_data.get("channel")
        if channel == DeliveryChannel.DM:
            cleaned_data["template"] = None  # hidden on the page for a postal DM
            if cleaned_data.get("scheduled_at"):
                self.add_error(
                    "scheduled_at",
                    gettext("A postal DM is not scheduled: download its address list when ready."),
                )
        elif template is None and channel:
            self.add_error("template", gettext("Choose the message template."))
        elif template is not None and channel and template.channel != channel:
            self.add_error("template", gettext("The template is for another channel."))
        return cleaned_data


class ScheduleForm(forms.Form):
    prefix = "schedule"  # the change form has a scheduled_at field of its own
    scheduled_at = forms.DateTimeField(
        label=_("send at"),
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class TestSendForm(forms.Form):
    """Whom a test goes to: only testers, the staff member themself (their
    own email) or a customer marked as a test recipient."""

    MYSELF = "myself"
    recipient = forms.ChoiceField(label=_("test recipient"))

    def __init__(self, *args: Any, campaign: Campaign, user, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = []
        email = campaign.channel == MessageChannel.EMAIL
        if email and getattr(user, "email", ""):  # type: ignore[arg-type]  # mypy takes the bool context for getattr's default
            choices.append((self.MYSELF, gettext("Myself (%(email)s)") % {"email": user.email}))
        for customer in test_recipients(channel=campaign.channel)[:100]:
            label = f"{customer} <{customer.email}>" if email else str(customer)
            choices.append((str(customer.pk), label))
        self.fields["recipient"].choices = [("", gettext("(choose)")), *choices]  # type: ignore[attr-defined]  # this field is a ChoiceField; Form.fields holds Field
        self.has_testers = bool(choices)

    def customer(self, user) -> Customer:
        """The chosen tester (a valid form's)."""
        choice = self.cleaned_data["recipient"]
        if choice == self.MYSELF:
            return services.staff_test_recipient(user=user)
        return Customer.objects.get(pk=choice)
