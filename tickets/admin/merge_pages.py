"""The merge and split pages of an inquiry (tickets.services.merge), and the
inbox action that opens the merge page for the chosen inquiries.

`<id>/merge/` lists the customer's inquiries not merged yet, those to merge
ticked (this one, and `?with=` ids), which one is kept (the earliest
received that is still open, or the agent's choice) and what moves; 「確認」
shows the new choice without writing, 「統合する」 merges. `<id>/split/`
lists the conversation; the agent picks a customer's message (and whether
the ones after it go too) and it becomes a new inquiry. Both pages read a
fixed number of queries whatever the number of messages.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceFormAdminPart
from tickets.models import Inquiry, MessageKind
from tickets.presence import staff_name
from tickets.selectors import (
    MERGE_SUGGEST_DAYS,
    inquiry_conversation,
    merge_candidates,
    merge_suggested,
)
from tickets.services import (
    inquiries_merge,
    inquiry_split,
    merge_refusal,
    merge_survivor_default,
)

MERGE_TEMPLATE = "admin/tickets/inquiry/merge.html"
SPLIT_TEMPLATE = "admin/tickets/inquiry/split.html"
# The merge page offers at most this many of the customer's inquiries.
MERGE_PAGE_ROWS = 30


class MergeSuggestFilter(admin.SimpleListFilter):
    """The inbox's inquiries that have a merge suggestion (merge_suggested):
    no query unless chosen."""

    title = _("merge")
    parameter_name = "merge"

    def lookups(self, request, model_admin):
        text = gettext("Same order within %(days)d days (merge suggested)")
        return [("suggested", text % {"days": MERGE_SUGGEST_DAYS})]

    def queryset(self, request, queryset):
        if self.value() != "suggested":
            return queryset
        return queryset.filter(order__isnull=False, merged_into__isnull=True).filter(
            merge_suggested()
        )


class MergeForm(forms.Form):
    inquiries = forms.TypedMultipleChoiceField(
        label=_("inquiries to merge"), coerce=int, widget=forms.CheckboxSelectMultiple
    )
    survivor = forms.TypedChoiceField(
        label=_("inquiry to keep"), coerce=int, required=False, widget=forms.RadioSelect
    )

    def __init__(self, *args, rows: list[Inquiry], **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(row.pk, row.reference) for row in rows]
        self.fields["inquiries"].choices = choices  # type: ignore[attr-defined]  # this field is a MultipleChoiceField; Form.fields holds Field
        self.fields["survivor"].choices = choices  # type: ignore[attr-defined]  # this field is a ChoiceField; Form.fields holds Field


class SplitForm(forms.Form):
    message = forms.TypedChoiceField(
        label=_("message that starts the new inquiry"), coerce=int, widget=forms.RadioSelect
    )
    with_later = forms.BooleanField(label=_("move the messages after it too"), required=False)
    subject = forms.CharField(
        label=_("subject of the new inquiry"),
        max_length=255,
        required=False,
        widget=forms.TextInput(attrs={"class": "vTextField"}),
        help_text=_("Leave it empty to use the message's subject."),
    )

    def __init__(self, *args, message_ids: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["message"].choices = [(pk, pk) for pk in message_ids]  # type: ignore[attr-defined]  # this field is a ChoiceField; Form.fields holds Field


def merge_moves_text(row: Inquiry) -> str:
    """What moves from an absorbed inquiry to the survivor, in words."""
    return gettext(
        "%(messages)d messages and %(events)d timeline entries move to the kept inquiry; "
        "this one is closed and points to it."
    ) % {"messages": row.message_count, "events": row.event_count}  # type: ignore[attr-defined]  # annotated by merge_candidates


class InquiryMergeMixin(ServiceFormAdminPart):
    """Part of InquiryAdmin (tickets/admin/inquiries.py)."""

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/merge/", view(self.merge_view), name="tickets_inquiry_merge"),
            path("<path:object_id>/split/", view(self.split_view), name="tickets_inquiry_split"),
            *super().get_urls(),
        ]

    def get_list_filter(self, request: HttpRequest):
        return (*super().get_list_filter(request), MergeSuggestFilter)

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        if self.has_change_permission(request):
            actions["merge_inquiries"] = (
                type(self).merge_inquiries,
                "merge_inquiries",
                gettext("Merge…"),
            )
        return actions

    def merge_inquiries(self, request, queryset):
        """Opens the merge page of the chosen inquiries (one customer's)."""
        chosen = list(queryset.select_related(None).order_by("created_at", "pk"))
        refusal = merge_refusal(chosen, merge_survivor_default(chosen)) if chosen else ""
        if refusal:
            self.message_user(request, refusal, messages.ERROR)
            return None
        url = reverse("admin:tickets_inquiry_merge", args=[chosen[0].pk])
        others = ",".join(str(inquiry.pk) for inquiry in chosen[1:])
        return HttpResponseRedirect(f"{url}?{urlencode({'with': others})}")

    def _page_inquiry(self, request: HttpRequest, object_id: str) -> Inquiry:
        inquiry = self.get_object(request, unquote(object_id))
        if inquiry is None:
            raise PermissionDenied
        if not self.has_change_permission(request, inquiry) or not request.user.has_perm(
            "tickets.view_inquirymessage"
        ):
            raise PermissionDenied
        return inquiry

    def _page_context(self, request: HttpRequest, inquiry: Inquiry, title: str) -> dict:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": str(inquiry),
            "opts": self.model._meta,
            "original": inquiry,
            "inquiry": inquiry,
            "inquiry_url": reverse("admin:tickets_inquiry_change", args=[inquiry.pk]),
            "media": self.media,
        }

    # --- Merge ------------------------------------------------------------------

    def merge_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        inquiry = self._page_inquiry(request, object_id)
        if inquiry.merged_into_id is not None:
            assert inquiry.merged_into is not None
            self.message_user(
                request,
                merge_refusal([inquiry, inquiry.merged_into], inquiry.merged_into),
                messages.ERROR,
            )
            return HttpResponseRedirect(
                reverse("admin:tickets_inquiry_change", args=[inquiry.merged_into_id])
            )
        rows = list(merge_candidates(inquiry)[:MERGE_PAGE_ROWS])
        wanted = {inquiry.pk, *_ids(request.GET.get("with", ""))}
        form = MergeForm(
            request.POST if request.method == "POST" else None,
            rows=rows,
            initial={"inquiries": [row.pk for row in rows if row.pk in wanted]},
        )
        chosen = [row for row in rows if row.pk in wanted]
        survivor_pk = None
        if form.is_bound and form.is_valid():
            chosen = [row for row in rows if row.pk in form.cleaned_data["inquiries"]]
            survivor_pk = form.cleaned_data["survivor"]
        kept = next((row for row in chosen if row.pk == survivor_pk), None)
        default = merge_survivor_default(chosen) if chosen else None
        kept = kept or default
        refusal = (
            merge_refusal(chosen, kept)
            if kept
            else gettext("Choose at least two inquiries to merge.")
        )
        if form.is_bound and form.is_valid() and "confirm" in request.POST and not refusal:
            try:
                survivor = inquiries_merge(inquiries=chosen, survivor=kept, actor=request.user)
            except ValidationError as error:
                refusal = " ".join(error.messages)
            else:
                self.message_user(
                    request,
                    ngettext(
                        "%(count)d inquiry was merged into %(reference)s.",
                        "%(count)d inquiries were merged into %(reference)s.",
                        len(chosen) - 1,
                    )
                    % {"count": len(chosen) - 1, "reference": survivor.reference},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:tickets_inquiry_change", args=[survivor.pk])
                )
        if kept is not None and not form.is_bound:
            form.initial["survivor"] = kept.pk
        chosen_pks = {row.pk for row in chosen}
        context = {
            **self._page_context(request, inquiry, gettext("Merge inquiries")),
            "form": form,
            "rows": [
                {
                    "inquiry": row,
                    "url": reverse("admin:tickets_inquiry_change", args=[row.pk]),
                    "chosen": row.pk in chosen_pks,
                    "kept": kept is not None and row.pk == kept.pk,
                    "assignee": staff_name(row.assignee),
                    "moves": merge_moves_text(row)
                    if row.pk in chosen_pks and kept is not None and row.pk != kept.pk
                    else "",
                }
                for row in rows
            ],
            "kept": kept,
            "kept_is_default": kept is not None and kept == default,
            "refusal": refusal,
        }
        return TemplateResponse(request, MERGE_TEMPLATE, context)

    # --- Split ------------------------------------------------------------------

    def split_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        inquiry = self._page_inquiry(request, object_id)
        thread = list(inquiry_conversation(inquiry))
        form = SplitForm(
            request.POST if request.method == "POST" else None,
            message_ids=[m.pk for m in thread if m.kind == MessageKind.INBOUND],
        )
        if form.is_bound and form.is_valid():
            message = next(m for m in thread if m.pk == form.cleaned_data["message"])
            try:
                new = inquiry_split(
                    message=message,
                    with_later=form.cleaned_data["with_later"],
                    subject=form.cleaned_data["subject"],
                    actor=request.user,
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                self.message_user(
                    request,
                    gettext("The message is now the new inquiry %(reference)s.")
                    % {"reference": new.reference},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:tickets_inquiry_change", args=[new.pk]))
        customer_name = inquiry.customer.display_name or gettext("Customer")
        context = {
            **self._page_context(request, inquiry, gettext("Split out a message")),
            "form": form,
            "messages_shown": [
                {
                    "message": message,
                    "who": customer_name
                    if message.kind == MessageKind.INBOUND
                    else staff_name(message.author) or gettext("System"),
                    "text": message.visible_text or message.body_text,
                    "can_start": message.kind == MessageKind.INBOUND,
                    "attachments": len(message.attachments.all()),
                }
                for message in thread
            ],
        }
        return TemplateResponse(request, SPLIT_TEMPLATE, context)


def _ids(text: str) -> set[int]:
    return {int(part) for part in text.split(",") if part.strip().isdigit()}
