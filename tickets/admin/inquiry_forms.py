"""The forms of the inquiry page's controls: each posts to its own URL and
calls one service (tickets/admin/inquiry_page.py); PAGE_UPDATES pairs the
controls that change the inquiry with their service, for the form posts
and the page's script alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from outreach.models import MessageChannel
from tickets.models import Category, InquiryStatus, Priority, ReplyTemplate
from tickets.presence import staff_name
from tickets.selectors import assignable_staff
from tickets.services import (
    inquiry_assign,
    inquiry_category_set,
    inquiry_note_add,
    inquiry_priority_set,
    inquiry_solution_proposed,
    inquiry_status_set,
)

# A choice the list does not hold (a stale page, a forged post): said
# without echoing the value sent, which may be an internal one.
NOT_IN_LIST = {"invalid_choice": _("Choose one from the list: the value sent is not one of them.")}


class ReplyForm(forms.Form):
    prefix = "reply"
    body = forms.CharField(
        label=_("reply"),
        strip=False,
        widget=forms.Textarea(attrs={"rows": 12, "class": "vLargeTextField reply-body"}),
    )
    channel = forms.ChoiceField(label=_("send by"), choices=MessageChannel.choices)
    # The latest message the agent had on screen: a reply by someone else
    # after it blocks the send until the agent confirms.
    seen_message_id = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    confirm_collision = forms.BooleanField(
        label=_("I have read the newer reply; send mine anyway"), required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.collision: list = []  # the newer replies, when the send was held back

    def clean_body(self) -> str:
        # Browsers post textareas with CRLF.
        return self.cleaned_data["body"].replace("\r\n", "\n")


class NoteForm(forms.Form):
    prefix = "note"
    body = forms.CharField(
        label=_("internal note"),
        widget=forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
        help_text=_("Only staff see notes. A note does not count as a reply."),
    )


class StatusForm(forms.Form):
    prefix = "status"
    status = forms.ChoiceField(
        label=_("status"), choices=InquiryStatus.choices, error_messages=NOT_IN_LIST
    )


class StaffChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return staff_name(obj)


class AssignForm(forms.Form):
    prefix: str | None = "assign"
    assignee = StaffChoiceField(
        label=_("assignee"),
        queryset=assignable_staff(),
        required=False,
        empty_label=_("(unassigned)"),
        error_messages=NOT_IN_LIST,
    )


class BulkAssignForm(AssignForm):
    """The inbox's "Assign to…" action: someone must be chosen."""

    prefix = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assignee = self.fields["assignee"]
        assignee.required = True
        assignee.empty_label = _("(choose)")  # type: ignore[attr-defined]  # this field is a ModelChoiceField; Form.fields holds Field


class CategoryForm(forms.Form):
    prefix = "category"
    category = forms.ModelChoiceField(
        label=_("category"),
        queryset=Category.objects.all(),
        required=False,
        empty_label=_("(no category)"),
        error_messages=NOT_IN_LIST,
    )


class PriorityForm(forms.Form):
    prefix = "priority"
    priority = forms.ChoiceField(
        label=_("priority"), choices=Priority.choices, error_messages=NOT_IN_LIST
    )


class ApproveForm(forms.Form):
    """A manager sends a held reply, edited or not."""

    body = forms.CharField(
        label=_("reply as it will be sent"),
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "class": "vLargeTextField"}),
    )

    def clean_body(self) -> str:
        return self.cleaned_data["body"].replace("\r\n", "\n")


class ReturnForm(forms.Form):
    note = forms.CharField(
        label=_("what should change"),
        max_length=255,
        widget=forms.TextInput(attrs={"size": 60}),
    )


def held_forms(message, *, data=None) -> tuple[ApproveForm, ReturnForm]:
    """The approve and return forms of one held reply."""
    return (
        ApproveForm(data, prefix=f"approve-{message.pk}", initial={"body": message.body_text}),
        ReturnForm(data, prefix=f"return-{message.pk}"),
    )


class TemplatePickForm(forms.Form):
    """The template picker's inputs. Not posted: the page's script asks the
    reply-template endpoint for the rendered text and fills the reply box."""

    prefix = "pick"
    template: forms.ModelChoiceField[ReplyTemplate] = forms.ModelChoiceField(
        label=_("reply template"), queryset=None, required=False, empty_label=_("(choose)")
    )
    order = forms.ChoiceField(label=_("order"), required=False)
    date = forms.DateField(
        label=_("date for the template"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The expected delivery, restock or recovery date the customer is told."),
    )
    time = forms.TimeField(
        label=_("time"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text=_("Optional: the recovery time of a system failure."),
    )

    def __init__(self, *args: Any, templates, orders, selected_order=None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = templates  # type: ignore[attr-defined]  # this field is a ModelChoiceField; Form.fields holds Field
        self.fields["order"].choices = [  # type: ignore[attr-defined]  # this field is a ChoiceField; Form.fields holds Field
            ("", _("(no order)")),
            *(
                (order.pk, f"{order.order_number} ({order.get_channel_display()})")
                for order in orders
            ),
        ]
        if selected_order is not None:
            self.initial["order"] = selected_order.pk


@dataclass(frozen=True)
class PageUpdate:
    """One control of the inquiry page that changes the inquiry: its form,
    the service it calls, what the page says when it is done, and which
    parts of the page (includes/*.html) show the change. Posted as a
    form (do/<name>/, inquiry_page.py) or by the page's script without a
    reload (update/<name>/, inquiry_endpoints.py)."""

    form: type[forms.Form]
    call: Callable[[Any, dict[str, Any], Any], Any]  # (inquiry, cleaned data, actor)
    done: Any
    fragments: tuple[str, ...] = ("header", "controls", "timeline")


PAGE_UPDATES: dict[str, PageUpdate] = {
    "assign": PageUpdate(
        AssignForm,
        lambda inquiry, data, actor: inquiry_assign(
            inquiry=inquiry, assignee=data["assignee"], actor=actor
        ),
        _("Assignee changed."),
    ),
    "assign-me": PageUpdate(
        forms.Form,
        lambda inquiry, data, actor: inquiry_assign(inquiry=inquiry, assignee=actor, actor=actor),
        _("The inquiry is assigned to you."),
    ),
    "category": PageUpdate(
        CategoryForm,
        lambda inquiry, data, actor: inquiry_category_set(
            inquiry=inquiry, category=data["category"], actor=actor
        ),
        _("Category changed."),
    ),
    "priority": PageUpdate(
        PriorityForm,
        lambda inquiry, data, actor: inquiry_priority_set(
            inquiry=inquiry, priority=data["priority"], actor=actor
        ),
        _("Priority changed."),
    ),
    "status": PageUpdate(
        StatusForm,
        lambda inquiry, data, actor: inquiry_status_set(
            inquiry=inquiry, status=data["status"], actor=actor
        ),
        _("Status changed."),
    ),
    "solution": PageUpdate(
        forms.Form,
        lambda inquiry, data, actor: inquiry_solution_proposed(inquiry=inquiry, actor=actor),
        _("Solution proposed: recorded."),
    ),
    "note": PageUpdate(
        NoteForm,
        lambda inquiry, data, actor: inquiry_note_add(
            inquiry=inquiry, body=data["body"], actor=actor
        ),
        _("Note added."),
        fragments=("header", "conversation", "timeline"),
    ),
}
