"""The inquiry page: the conversation, the customer, and the controls.

GET `<id>/change/` shows the page (a bounded number of queries whatever the
number of messages). Every control is a POST form of its own to
`<id>/do/<action>/` that calls one service; a refusal re-renders the page
with the form's errors, a success redirects back with a message.

Two agents answering the same customer twice is what the collision check
prevents: the reply form carries the id of the latest message the agent
had on screen, and inquiry_reply refuses the send (ReplyCollision) when
someone else replied after it, until the agent confirms; the page shows
those replies as its warning. Presence (who else has the page open) is a
hint on top, from a heartbeat (tickets/presence.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext

from core.admin import form_errors_add
from core.audit import audit_record
from core.models import AuditAction
from core.roles import is_manager
from tickets.admin.inquiry_context import ACTIONS, page_context
from tickets.admin.inquiry_endpoints import MESSAGE_ADD, WRITES_MESSAGES, InquiryEndpointsMixin
from tickets.admin.inquiry_forms import PAGE_UPDATES, ReplyForm, held_forms
from tickets.models import Inquiry, InquiryMessage, MessageKind, OutboundState
from tickets.presence import presence_touch, staff_name
from tickets.services import (
    ReplyCollision,
    inquiry_read_mark,
    inquiry_reply,
    inquiry_reply_approve,
    inquiry_reply_return,
)

PAGE_TEMPLATE = "admin/tickets/inquiry/inquiry_page.html"


class InquiryPageMixin(InquiryEndpointsMixin):
    """The change-view half of InquiryAdmin (tickets/admin/inquiries.py)."""

    def get_urls(self):
        return [
            path(
                "<path:object_id>/do/<slug:action>/",
                self.admin_site.admin_view(self.action_view),
                name="tickets_inquiry_action",
            ),
            *super().get_urls(),
        ]

    # --- The page -----------------------------------------------------------

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        inquiry = self.get_object(request, unquote(object_id))
        if inquiry is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]  # Django's private helper, missing from django-stubs
        if not self.has_view_or_change_permission(request, inquiry):
            raise PermissionDenied
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])  # the controls post to do/<action>/
        presence_touch(inquiry_id=inquiry.pk, user=request.user)
        # The inbox's unread mark.
        inquiry_read_mark(inquiry=inquiry, actor=request.user)  # type: ignore[arg-type]  # admin_view: signed-in staff only
        audit_record(action=AuditAction.VIEW, request=request, customer_id=inquiry.customer_id)
        return self.render_page(request, inquiry)

    def render_page(
        self, request: HttpRequest, inquiry: Inquiry, *, bound: dict[str, Any] | None = None
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            **self.page_context(request, inquiry, bound=bound),
            "title": f"{inquiry.reference} {inquiry.subject}",
            "has_view_permission": True,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, PAGE_TEMPLATE, context)

    def page_context(
        self, request: HttpRequest, inquiry: Inquiry, *, bound: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """What the page and its parts (includes/*.html) are rendered with."""
        can_change = self.has_change_permission(request, inquiry)
        return {
            **page_context(
                request,
                inquiry,
                bound=bound or {},
                can_change=can_change,
                can_approve=can_change and is_manager(request.user),
            ),
            "opts": self.opts,
            "original": inquiry,
            "has_change_permission": can_change,
        }

    def _back(self, inquiry: Inquiry, anchor: str = "") -> HttpResponseRedirect:
        url = reverse("admin:tickets_inquiry_change", args=[inquiry.pk])
        return HttpResponseRedirect(f"{url}#{anchor}" if anchor else url)

    # --- The controls ---------------------------------------------------------

    def action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if action not in ACTIONS:
            raise Http404
        handler = getattr(self, f"do_{action.replace('-', '_')}")  # assign-me: do_assign_me
        inquiry = self._inquiry_or_404(request, object_id, change=True)
        if action in WRITES_MESSAGES and not request.user.has_perm(MESSAGE_ADD):
            raise PermissionDenied
        return handler(request, inquiry)

    def _form_call(self, request, inquiry, key: str, form, call, success: str, anchor: str = ""):
        """Validate `form`, call the service; errors re-render the page."""
        if form.is_valid():
            try:
                call(form.cleaned_data)
            except ValidationError as error:
                form_errors_add(form, error)
                if form.non_field_errors():  # also where a hidden form cannot show it
                    self.message_user(request, " ".join(form.non_field_errors()), messages.ERROR)
            else:
                self.message_user(request, success, messages.SUCCESS)
                return self._back(inquiry, anchor)
        return self.render_page(request, inquiry, bound={key: form})

    def do_reply(self, request: HttpRequest, inquiry: Inquiry) -> HttpResponse:
        form = ReplyForm(request.POST)
        if not form.is_valid():
            return self.render_page(request, inquiry, bound={"reply": form})
        data = form.cleaned_data
        try:
            message = inquiry_reply(
                inquiry=inquiry,
                body=data["body"],
                actor=request.user,
                channel=data["channel"],
                seen_message_id=data["seen_message_id"],
                confirm_collision=data["confirm_collision"],
            )
        except ReplyCollision as collision:
            for reply in collision.replies:
                reply.author_name = staff_name(reply.author)  # type: ignore[attr-defined]  # for the template
            form.collision = collision.replies
            return self.render_page(request, inquiry, bound={"reply": form})
        except ValidationError as error:
            form_errors_add(form, error)
            return self.render_page(request, inquiry, bound={"reply": form})
        if message.outbound_state == OutboundState.AWAITING_APPROVAL:
            text = gettext("Your reply waits for a manager's approval before it goes out.")
        else:
            text = gettext("Your reply is on its way to the customer.")
        self.message_user(request, text, messages.SUCCESS)
        return self._back(inquiry, "latest")

    def _update(self, request, inquiry, action: str, anchor: str = "") -> HttpResponse:
        """One of PAGE_UPDATES posted as a form (without the page's script)."""
        update = PAGE_UPDATES[action]
        return self._form_call(
            request,
            inquiry,
            action,
            update.form(request.POST),
            lambda data: update.call(inquiry, data, request.user),
            str(update.done),
            anchor,
        )

    def do_note(self, request, inquiry):
        return self._update(request, inquiry, "note", "latest")

    def do_status(self, request, inquiry):
        return self._update(request, inquiry, "status")

    def do_assign(self, request, inquiry):
        return self._update(request, inquiry, "assign")

    def do_assign_me(self, request, inquiry):
        return self._update(request, inquiry, "assign-me")

    def do_category(self, request, inquiry):
        return self._update(request, inquiry, "category")

    def do_priority(self, request, inquiry):
        return self._update(request, inquiry, "priority")

    def do_solution(self, request, inquiry):
        return self._update(request, inquiry, "solution")

    def _held(self, request, inquiry) -> InquiryMessage:
        if not is_manager(request.user):
            raise PermissionDenied
        message = InquiryMessage.objects.filter(
            inquiry=inquiry, kind=MessageKind.OUTBOUND, pk=request.POST.get("message") or 0
        ).first()
        if message is None:
            raise Http404
        return message

    def do_approve(self, request, inquiry):
        message = self._held(request, inquiry)
        form, _return_form = held_forms(message, data=request.POST)
        return self._form_call(
            request,
            inquiry,
            f"approve-{message.pk}",
            form,
            lambda data: inquiry_reply_approve(
                message=message, actor=request.user, body=data["body"]
            ),
            gettext("Approved: the reply is on its way to the customer."),
            "latest",
        )

    def do_return(self, request, inquiry):
        message = self._held(request, inquiry)
        _approve_form, form = held_forms(message, data=request.POST)
        return self._form_call(
            request,
            inquiry,
            f"return-{message.pk}",
            form,
            lambda data: inquiry_reply_return(
                message=message, actor=request.user, note=data["note"]
            ),
            gettext("The reply was returned to its author with your note."),
            f"message-{message.pk}",
        )
