"""Message templates in the admin: editing, the variables help and a preview.

Display only: saving calls `outreach.services.template_save`, which
validates syntax, variables and LINE's limits. The form runs the same
validation first (`outreach.templating.template_validate`) so that each
problem shows on the field it is about — for LINE, on the message's own
textarea. The preview renders a saved template for a chosen customer
through the worker's own code (`outreach.dispatch`), legal footer included.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.text import format_lazy
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceFormAdmin, copy_saved, form_errors_add, staff_column
from crm.models import Customer, Order
from outreach.dispatch import EmailWorker, LineWorker
from outreach.models import (
    Delivery,
    MessageChannel,
    MessageTemplate,
    Purpose,
    Send,
    SendKind,
    SendStatus,
)
from outreach.services import template_save
from outreach.templating import (
    EXTRA_LABELS,
    LINE_MAX_MESSAGES,
    LINE_MAX_TEXT_UTF16,
    PERSONAL_ROOTS,
    TEMPLATE_CONTEXT,
    template_validate,
    utf16_length,
)

logger = logging.getLogger(__name__)

LINE_FIELDS = tuple(f"line_message_{n}" for n in range(1, LINE_MAX_MESSAGES + 1))

ROOT_HELP = {
    "customer": _("The recipient."),
    "order": _("The order the message is about (order and shipping notices)."),
    "shop": _("Your shop: the same for every recipient."),
    "unsubscribe_url": _(
        "The recipient's unsubscribe link. Marketing emails get it in the footer automatically."
    ),
    "extra": _("Values the send passes, e.g. {{ extra.expected_date }} for a delivery delay."),
}


VARIABLES_INTRO = format_lazy(
    _(
        "Write a variable in double braces, e.g. {variable}. Conditions and filters work "
        "too: {condition}, {filter}. Personal variables differ per recipient: a LINE "
        "template without them goes out to everyone at once (multicast)."
    ),
    variable="{{ customer.given_name }}様",
    condition="{% if customer.order_count %}…{% endif %}",
    filter="{{ customer.total_spent|floatformat:0 }}",
)


def variables_help() -> list[dict[str, Any]]:
    """The documented variables, grouped by root, with example values."""
    groups = []
    for root, attributes in TEMPLATE_CONTEXT.items():
        if root == "extra":
            rows = [(f"{{{{ extra.{key} }}}}", label) for key, label in EXTRA_LABELS.items()]
        elif attributes:
            rows = [(f"{{{{ {root}.{name} }}}}", example) for name, example in attributes.items()]
        else:
            rows = [(f"{{{{ {root} }}}}", "https://…/u/…/")]
        groups.append(
            {
                "root": root,
                "help": ROOT_HELP.get(root, ""),
                "personal": root in PERSONAL_ROOTS,
                "rows": rows,
            }
        )
    return groups


def _normalise_newlines(text: str) -> str:
    # Browsers post textareas with CRLF; LINE would count both characters.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _line_field(n: int) -> forms.CharField:
    return forms.CharField(
        label=format_lazy(_("Message {n}"), n=n),
        required=False,
        strip=False,
        widget=forms.Textarea(
            attrs={
                "rows": 5 if n == 1 else 3,
                "class": "vLargeTextField line-message",
                "data-max-utf16": LINE_MAX_TEXT_UTF16,
            }
        ),
        help_text=format_lazy(
            _(
                "Up to {max} characters, counted as LINE counts them (UTF-16: some emoji "
                "count as 2). Leave empty to send fewer messages."
            ),
            max=f"{LINE_MAX_TEXT_UTF16:,}",
        ),
    )


class MessageTemplateForm(forms.ModelForm):
    line_message_1 = _line_field(1)
    line_message_2 = _line_field(2)
    line_message_3 = _line_field(3)
    line_message_4 = _line_field(4)
    line_message_5 = _line_field(5)

    class Meta:
        model = MessageTemplate
        fields = ("name", "channel", "purpose", "description", "subject", "body_text", "body_html")
        widgets = {
            "body_text": forms.Textarea(attrs={"rows": 14, "class": "vLargeTextField"}),
            "body_html": forms.Textarea(
                attrs={"rows": 10, "class": "vLargeTextField", "spellcheck": "false"}
            ),
        }
        help_texts = {
            "body_html": _(
                "Optional. Values are HTML-escaped. Marketing emails get the sender "
                "block and the unsubscribe link appended."
            ),
            "purpose": _(
                "Marketing goes only to customers who opted in, waits out quiet hours and "
                "carries the legal footer; transactional messages (order and shipping "
                "notices, replies) do not."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            for name, text in zip(LINE_FIELDS, self.instance.line_messages or [], strict=False):
                self.initial[name] = text

    def channel_value(self) -> str:
        if "channel" in self.fields:
            return self.cleaned_data.get("channel") or ""
        return self.instance.channel

    def clean(self) -> dict[str, Any]:
        cleaned_data: dict[str, Any] = super().clean()  # type: ignore[assignment]  # Form.clean returns cleaned_data; the stubs allow None for overrides
        channel = self.channel_value()
        for name in ("subject", "body_text", "body_html", *LINE_FIELDS):
            if isinstance(cleaned_data.get(name), str):
                cleaned_data[name] = _normalise_newlines(cleaned_data[name])
        if channel == MessageChannel.EMAIL:
            cleaned_data["line_messages"] = []
            self._validate(
                channel=channel,
                subject=cleaned_data.get("subject") or "",
                body_text=cleaned_data.get("body_text") or "",
                body_html=cleaned_data.get("body_html") or "",
            )
        elif channel == MessageChannel.LINE:
            for name in ("subject", "body_text", "body_html"):
                cleaned_data[name] = ""
            cleaned_data["line_messages"] = self._clean_line(cleaned_data)
        return cleaned_data

    def _clean_line(self, cleaned_data: dict[str, Any]) -> list[str]:
        filled = [
            (position, cleaned_data.get(name) or "")
            for position, name in enumerate(LINE_FIELDS, start=1)
            if (cleaned_data.get(name) or "").strip()
        ]
        if not filled:
            self._validate(channel="line", line_messages=[], line_field=LINE_FIELDS[0])
        for position, text in filled:
            # Validated at its own position, so that "message 3 is too long"
            # lands on the third textarea (earlier slots are placeholders).
            self._validate(
                channel="line",
                line_messages=["-"] * (position - 1) + [text],
                line_field=LINE_FIELDS[position - 1],
            )
        return [text for _position, text in filled]

    def _validate(self, *, line_field: str = "", **values: Any) -> None:
        try:
            template_validate(**values)
        except ValidationError as error:
            if line_field and "line_messages" in getattr(error, "error_dict", {}):
                self.add_error(line_field, error.error_dict.pop("line_messages"))
            form_errors_add(self, error)


@dataclass(frozen=True)
class Preview:
    channel: str
    recipient: str = ""
    subject: str = ""
    text: str = ""
    html: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    line_messages: tuple[tuple[str, int], ...] = ()
    error: str = ""


def template_preview(
    *,
    template: MessageTemplate,
    customer: Customer,
    order: Order | None = None,
    extra: dict[str, str] | None = None,
) -> Preview:
    """What `customer` would receive, rendered by the worker's own code: an
    unsaved send of this template, through EmailWorker.message (the legal
    footer and List-Unsubscribe of marketing mail included) or
    LineWorker.texts."""
    send = Send(
        kind=SendKind.CAMPAIGN if template.purpose == Purpose.MARKETING else SendKind.NOTICE,
        channel=template.channel,
        purpose=template.purpose,
        template=template,
        content={"order_id": order.pk if order else None, "extra": extra or {}},
    )
    try:
        if template.channel == MessageChannel.EMAIL:
            with EmailWorker(send) as worker:
                message = worker.message(Delivery(pk=0, send=send), customer, customer.email)
            headers = tuple(
                (name, value) for name, value in message.headers.items() if name.startswith("List-")
            )
            return Preview(
                channel=template.channel,
                recipient=message.to,
                subject=message.subject,
                text=message.text,
                html=message.html,
                headers=headers,
            )
        with LineWorker(send) as worker:
            texts = worker.texts(customer)
        return Preview(
            channel=template.channel, line_messages=tuple((t, utf16_length(t)) for t in texts)
        )
    except Exception as exc:  # a template that fails for this customer, as in the worker
        logger.warning("preview of template %s failed", template.pk, exc_info=True)
        return Preview(channel=template.channel, error=f"{type(exc).__name__}: {exc}")


def extra_parse(text: str) -> dict[str, str]:
    """ "name=value" per line → {"name": "value"}."""
    values = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ValidationError(
                gettext("Line %(number)d: write name=value, e.g. expected_date=12月5日."),
                params={"number": number},
            )
        values[name] = value.strip()
    return values


class PreviewForm(forms.Form):
    customer = forms.ModelChoiceField(label=_("customer"), queryset=Customer.objects.all())
    extra = forms.CharField(
        label=_("extra values"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 40}),
        help_text=_("For {{ extra.* }} variables: one name=value per line."),
    )

    def __init__(self, *args: Any, admin_site: admin.AdminSite, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["customer"]
        # The admin's customer search (CustomerAdmin.get_search_results):
        # name, kana, email, phone or order number.
        field.widget = AutocompleteSelect(Delivery._meta.get_field("customer"), admin_site)
        field.widget.choices = field.choices  # type: ignore[attr-defined]  # this field is a ChoiceField; Form.fields holds Field

    def clean_extra(self) -> dict[str, str]:
        return extra_parse(self.cleaned_data.get("extra") or "")


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ServiceFormAdmin):
    form = MessageTemplateForm
    list_display = ("name", "channel", "purpose", "is_personal", "updated_at")
    list_filter = ("channel", "purpose", "is_personal")
    search_fields = ("name", "description")
    ordering = ("name",)
    record_fields = ("is_personal", "created_by_name", "created_at", "updated_at")
    created_by_name = staff_column(MessageTemplate, "created_by")

    def get_fieldsets(self, request: HttpRequest, obj: MessageTemplate | None = None):
        email = (
            _("Email"),
            {"fields": ("subject", "body_text", "body_html"), "classes": ("channel-email",)},
        )
        line = (
            _("LINE messages"),
            {
                "fields": LINE_FIELDS,
                "classes": ("channel-line",),
                "description": format_lazy(
                    _(
                        "1 to {count} text messages, sent together as one LINE request. "
                        "Each may have up to {max} characters (UTF-16)."
                    ),
                    count=LINE_MAX_MESSAGES,
                    max=f"{LINE_MAX_TEXT_UTF16:,}",
                ),
            },
        )
        head = (None, {"fields": ("name", "channel", "purpose", "description")})
        if obj is None:  # the script shows the channel's fieldset; without it, both
            return [head, email, line]
        body = email if obj.channel == MessageChannel.EMAIL else line
        return [head, body, (_("Record"), {"fields": self.record_fields})]

    def get_readonly_fields(self, request: HttpRequest, obj: MessageTemplate | None = None):
        # Sends and campaigns rely on a template's channel: fixed once saved.
        return () if obj is None else ("channel", *self.record_fields)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: MessageTemplate | None = None,
    ) -> HttpResponse:
        if obj is not None and obj.pk and request.method == "GET":
            active = obj.sends.filter(status__in=[SendStatus.SENDING, SendStatus.PAUSED]).count()
            if active:
                self.message_user(
                    request,
                    ngettext(
                        "%(count)d send of this template is still going out: changes apply "
                        "to its messages not yet sent.",
                        "%(count)d sends of this template are still going out: changes apply "
                        "to their messages not yet sent.",
                        active,
                    )
                    % {"count": active},
                    messages.WARNING,
                )
        context.update(
            template_variables=variables_help(),
            template_variables_intro=VARIABLES_INTRO,
            line_max_utf16=LINE_MAX_TEXT_UTF16,
            preview_url=reverse("admin:outreach_messagetemplate_preview", args=[obj.pk])
            if obj is not None and obj.pk
            else "",
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- Saving through the service --------------------------------------------

    def save_model(self, request: HttpRequest, obj: MessageTemplate, form, change: bool) -> None:
        obj.line_messages = form.cleaned_data.get("line_messages", obj.line_messages)
        saved = template_save(template=obj, actor=request.user)
        copy_saved(obj, saved)

    # --- Preview with a customer ---------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<path:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="outreach_messagetemplate_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        template = self.get_object(request, unquote(object_id))
        if template is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]  # Django's private helper, missing from django-stubs
        if not self.has_view_permission(request, template):
            raise PermissionDenied
        form = PreviewForm(request.GET or None, admin_site=self.admin_site)
        preview = order = None
        if form.is_valid():
            customer = form.cleaned_data["customer"]
            order = customer.orders.order_by("-ordered_at", "-id").first()
            preview = template_preview(
                template=template, customer=customer, order=order, extra=form.cleaned_data["extra"]
            )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Preview of “%(name)s”") % {"name": template.name},
            "opts": self.opts,
            "original": template,
            "form": form,
            "preview": preview,
            "order": order,
            "is_marketing": template.purpose == Purpose.MARKETING,
            "change_url": reverse("admin:outreach_messagetemplate_change", args=[template.pk]),
            "media": self.media + form.media,
            "template_variables": variables_help(),
            "template_variables_intro": VARIABLES_INTRO,
        }
        return TemplateResponse(request, "admin/outreach/messagetemplate/preview.html", context)
