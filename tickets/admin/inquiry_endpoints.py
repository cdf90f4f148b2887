"""The inquiry page's lookups and the endpoints its script calls: the
controls without a reload (update/<name>/), the reply-template renderer,
the presence heartbeat, attachment downloads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from typing import Any

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    JsonResponse,
)
from django.template.loader import render_to_string
from django.urls import path
from django.utils.dateparse import parse_date, parse_time
from django.utils.translation import gettext

from core.admin import ServiceFormAdminPart, form_errors_add
from tickets.admin.inquiry_forms import PAGE_UPDATES
from tickets.models import Attachment, Inquiry, ReplyTemplate
from tickets.presence import presence_leave, presence_others, presence_touch, staff_name
from tickets.reply_templates import extra_from_date, reply_template_render
from tickets.selectors import inquiry_messages_after, replies_by_others
from tickets.services import reply_channel_for

# Controls that write a message need this besides changing the inquiry.
MESSAGE_ADD = "tickets.add_inquirymessage"
WRITES_MESSAGES = ("reply", "note", "approve", "return")
# The parts of the inquiry page an update renders again (PageUpdate.fragments):
# each include's outer element has data-fragment="<name>".
FRAGMENTS = {
    name: f"admin/tickets/inquiry/includes/{name}.html"
    for name in ("header", "controls", "timeline", "conversation")
}


class InquiryEndpointsMixin(ServiceFormAdminPart):
    """Part of InquiryAdmin (tickets/admin/inquiries.py)."""

    page_context: Callable[..., dict[str, Any]]  # InquiryPageMixin's

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/update/<slug:action>/",
                view(self.update_view),
                name="tickets_inquiry_update",
            ),
            path(
                "<path:object_id>/reply-template/",
                view(self.reply_template_view),
                name="tickets_inquiry_reply_template",
            ),
            path(
                "<path:object_id>/presence/",
                view(self.presence_view),
                name="tickets_inquiry_presence",
            ),
            path(
                "<path:object_id>/attachment/<int:attachment_id>/",
                view(self.attachment_view),
                name="tickets_inquiry_attachment",
            ),
            *super().get_urls(),
        ]

    def get_object(
        self, request: HttpRequest, object_id: str | int, from_field: str | None = None
    ) -> Inquiry | None:
        queryset = self.get_queryset(request).select_related("order", "sla_policy")
        try:
            return queryset.get(pk=object_id)
        except (Inquiry.DoesNotExist, ValidationError, ValueError):
            return None

    def _inquiry_or_404(self, request: HttpRequest, object_id: str, *, change: bool) -> Inquiry:
        inquiry = self.get_object(request, unquote(object_id))
        if inquiry is None:
            raise Http404
        allowed = (
            self.has_change_permission(request, inquiry)
            if change
            else self.has_view_or_change_permission(request, inquiry)
        )
        if not allowed:
            raise PermissionDenied
        return inquiry

    def update_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """A control of the page (PAGE_UPDATES) posted by the page's script:
        the same form and service as its do/<name>/ post; the answer is what
        the page says and the parts of the page that show the change, so
        nothing reloads. A refusal is a 400 whose `error` says which field
        and why, in the agent's language; nothing is changed then."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        update = PAGE_UPDATES.get(action)
        if update is None:
            raise Http404
        try:
            inquiry = self._inquiry_or_404(request, object_id, change=True)
            if action in WRITES_MESSAGES and not request.user.has_perm(MESSAGE_ADD):
                raise PermissionDenied
        except PermissionDenied:
            return JsonResponse({"error": gettext("You may not change this inquiry.")}, status=403)
        form = update.form(request.POST)
        if form.is_valid():
            try:
                update.call(inquiry, form.cleaned_data, request.user)
            except ValidationError as error:
                form_errors_add(form, error)
        if form.errors:
            return JsonResponse({"error": _errors_text(form)}, status=400)
        context = self.page_context(request, self.get_object(request, inquiry.pk))
        return JsonResponse(
            {
                "message": str(update.done),
                "fragments": {
                    name: render_to_string(FRAGMENTS[name], context, request=request)
                    for name in update.fragments
                },
            }
        )

    def reply_template_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        """A reply template rendered for this inquiry (GET template, order,
        date, time): the picker puts the text in the reply box."""
        inquiry = self._inquiry_or_404(request, object_id, change=True)
        template = ReplyTemplate.objects.filter(pk=_int(request.GET.get("template"))).first()
        if template is None:
            return JsonResponse({"error": gettext("Choose a reply template.")}, status=404)
        order = None
        if request.GET.get("order"):
            order = inquiry.customer.orders.filter(pk=_int(request.GET["order"])).first()
            if order is None:
                return JsonResponse({"error": gettext("Unknown order.")}, status=400)
        try:
            day = parse_date(request.GET.get("date") or "")
            at = parse_time(request.GET.get("time") or "")
        except ValueError:  # well-formed but impossible, e.g. 2026-02-30
            return JsonResponse({"error": gettext("Enter a valid date.")}, status=400)
        moment = datetime.combine(day, time(at.hour, at.minute)) if day and at else None
        try:
            # The variant that fits the reply's channel (the LINE text for LINE).
            channel = reply_channel_for(inquiry, request.GET.get("channel") or None)
        except ValidationError as error:
            return JsonResponse({"error": " ".join(error.messages)}, status=400)
        rendered = reply_template_render(
            template=template,
            inquiry=inquiry,
            order=order,
            extra=extra_from_date(day, moment),
            channel=channel,
        )
        return JsonResponse(
            {
                "name": template.name,
                "body": rendered.body,
                "missing": list(rendered.missing_labels),
                "line_variant": rendered.is_line_variant,
            }
        )

    def presence_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The heartbeat: I still have the page open; who else has, and was
        anything written since the message I saw?"""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        inquiry = self._inquiry_or_404(request, object_id, change=False)
        if request.POST.get("leave"):
            presence_leave(inquiry_id=inquiry.pk, user=request.user)
            return HttpResponse(status=204)
        presence_touch(inquiry_id=inquiry.pk, user=request.user)
        seen = _int(request.POST.get("seen"))
        newer = list(inquiry_messages_after(inquiry, message_id=seen))
        return JsonResponse(
            {
                "viewers": [
                    v.name for v in presence_others(inquiry_id=inquiry.pk, user=request.user)
                ],
                "newer_replies": [
                    staff_name(m.author) for m in replies_by_others(newer, user=request.user)
                ],
                "newer_messages": len(newer),
            }
        )

    def attachment_view(self, request: HttpRequest, object_id: str, attachment_id: int):
        inquiry = self._inquiry_or_404(request, object_id, change=False)
        if not request.user.has_perm("tickets.view_attachment"):
            raise PermissionDenied
        attachment = Attachment.objects.filter(pk=attachment_id, message__inquiry=inquiry).first()
        if attachment is None or attachment.truncated or not attachment.file:
            raise Http404
        return FileResponse(
            attachment.file.open("rb"),
            as_attachment=True,
            filename=attachment.filename,
            content_type=attachment.content_type or "application/octet-stream",
        )


def _errors_text(form) -> str:
    """A form's errors in one line, each under the field's label."""
    return " ".join(
        " ".join(errors) if name == "__all__" else f"{form.fields[name].label}: {' '.join(errors)}"
        for name, errors in form.errors.items()
    )


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
