"""The emergency broadcast and the affected-orders notice on the incident
page: IncidentAdmin (crisis.admin.incidents) takes this mixin, calls
broadcast_context() for its change page (which includes
admin/crisis/incident/includes/broadcast.html) and serves get_urls().

Every button posts to `.../<id>/broadcast/<action>/` and comes back to the
incident page with a message; each send's progress polls
`.../<id>/broadcast/<send id>/progress/` (JSON) like a campaign's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Max
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceFormAdminPart
from core.roles import is_manager, staff_name
from core.types import Actor
from crisis.models import Incident, IncidentSend, IncidentSendKind
from crisis.selectors.broadcasts import incident_announcements, incident_sends
from crisis.services import broadcasts as services
from outreach.admin.campaigns import TemplateSelect, local_time
from outreach.admin.deliveries import deliveries_url, progress_data
from outreach.dispatch import quiet_hours_end
from outreach.models import MessageChannel, MessageTemplate, Purpose, SendStatus
from outreach.selectors import sends_progress

PENDING_STATES = (SendStatus.SENDING, SendStatus.PAUSED)


class _SendForm(forms.Form):
    """Channel and template: the templates of the chosen channel only (the
    page hides the others; the service refuses a mismatch)."""

    purpose = Purpose.MARKETING
    channel = forms.ChoiceField(label=_("send by"), choices=MessageChannel.choices)
    template = forms.ModelChoiceField(
        label=_("template"), queryset=MessageTemplate.objects.none(), widget=TemplateSelect
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["template"]
        field.queryset = MessageTemplate.objects.filter(purpose=self.purpose).order_by(  # type: ignore[attr-defined]  # this field is a ModelChoiceField; Form.fields holds Field
            "channel", "name"
        )
        field.empty_label = gettext("(choose)")  # type: ignore[attr-defined]  # this field is a ModelChoiceField; Form.fields holds Field


class BroadcastForm(_SendForm):
    prefix = "broadcast"
    kind = IncidentSendKind.BROADCAST
    update = forms.BooleanField(
        label=_("Send as an update (the broadcast on this channel goes out once more)"),
        required=False,
    )
    # The latest round per channel when the page was drawn ("email=1;line=0"):
    # a double submit of an update sends one round, not two.
    seen = forms.CharField(required=False, widget=forms.HiddenInput)
    override_quiet_hours = forms.BooleanField(
        label=_("Send now, inside quiet hours"), required=False
    )
    quiet_hours_override_reason = forms.CharField(
        label=_("Why it cannot wait (recorded)"), max_length=255, required=False, strip=False
    )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean()  # type: ignore[assignment]  # Form.clean returns cleaned_data; the stubs allow None for overrides
        if cleaned.get("override_quiet_hours") and not cleaned.get("quiet_hours_override_reason"):
            self.add_error(
                "quiet_hours_override_reason",
                gettext("Say why the broadcast cannot wait until quiet hours end."),
            )
        return cleaned

    def after_round(self) -> int:
        """The round of the chosen channel the manager saw (0: none)."""
        seen = dict(
            item.partition("=")[::2] for item in self.cleaned_data.get("seen", "").split(";")
        )
        value = seen.get(self.cleaned_data["channel"], "0")
        return int(value) if value.isdigit() else 0

    def send(self, *, incident: Incident, actor: Actor) -> IncidentSend:
        update = self.cleaned_data["update"]
        return services.broadcast_send(
            incident=incident,
            channel=self.cleaned_data["channel"],
            template=self.cleaned_data["template"],
            actor=actor,
            quiet_hours_override_reason=self.reason,
            update=update,
            after_round=self.after_round() if update else None,
        )

    @property
    def reason(self) -> str:
        """The reason as typed (the service refuses one of blanks), if the
        manager chose to send inside quiet hours."""
        if not self.cleaned_data.get("override_quiet_hours"):
            return ""
        return self.cleaned_data["quiet_hours_override_reason"]


class NoticeForm(_SendForm):
    prefix = "notice"
    kind = IncidentSendKind.NOTICE
    purpose = Purpose.TRANSACTIONAL

    def send(self, *, incident: Incident, actor: Actor) -> IncidentSend:
        return services.incident_notice_send(
            incident=incident,
            channel=self.cleaned_data["channel"],
            template=self.cleaned_data["template"],
            actor=actor,
        )


def _form_problem(form: forms.Form) -> ValidationError:
    return ValidationError([m for errors in form.errors.values() for m in errors])


class BroadcastAdminMixin(ServiceFormAdminPart):
    """The broadcast panel of the incident page and its endpoints."""

    # --- The panel ---------------------------------------------------------------------

    def broadcast_context(self, request: HttpRequest, incident: Incident) -> dict:
        can_send = is_manager(request.user)
        now = timezone.now()
        quiet_until = quiet_hours_end(now)
        sends = list(incident_sends(incident))
        progress = sends_progress(row.send_id for row in sends)
        rows = [self._send_row(incident, row, progress[row.send_id], can_send) for row in sends]
        # The latest round of the broadcast per channel (rows are oldest first).
        rounds = {row.channel: row.round for row in sends if row.kind == IncidentSendKind.BROADCAST}
        context: dict[str, Any] = {
            "incident": incident,
            "broadcast_can_send": can_send,
            "broadcast_has_channel": bool(incident.channel),
            "broadcast_sends": rows,
            "broadcast_sent_channels": [
                MessageChannel(channel).label for channel in sorted(rounds)
            ],
            "broadcast_quiet_until": local_time(quiet_until) if quiet_until else "",
            "broadcast_announcements": incident_announcements(incident),
            "broadcast_urls": {
                name: reverse(f"admin:crisis_incident_broadcast_{name}", args=[incident.pk])
                for name in ("send", "notice")
            },
        }
        if can_send:
            seen = ";".join(f"{channel}={number}" for channel, number in rounds.items())
            context["broadcast_form"] = BroadcastForm(initial={"seen": seen})
            context["notice_form"] = NoticeForm()
        return context

    @staticmethod
    def _send_row(incident: Incident, row: IncidentSend, progress, can_send: bool) -> dict:
        send = row.send
        actions = {
            "pause": send.status == SendStatus.SENDING,
            "resume": send.status == SendStatus.PAUSED,
            "cancel": send.status in PENDING_STATES,
        }
        return {
            "row": row,
            "kind": row.get_kind_display(),
            "channel": row.get_channel_display(),
            "round": row.round,
            "is_update": row.round > 1,
            "template": send.template.name if send.template else "",
            "sent_at": local_time(row.created_at),
            "sent_by": staff_name(row.created_by),
            "reason": row.quiet_hours_override_reason,
            "waits_for_quiet_hours": send.respect_quiet_hours,
            "progress": progress_data(
                progress, status=send.status, status_label=send.get_status_display()
            ),
            "progress_id": f"send-progress-{send.pk}",
            "progress_url": reverse(
                "admin:crisis_incident_broadcast_progress", args=[incident.pk, send.pk]
            ),
            "deliveries_url": deliveries_url(send.pk),
            "actions": {
                name: reverse(
                    "admin:crisis_incident_broadcast_action", args=[incident.pk, send.pk, name]
                )
                for name, allowed in actions.items()
                if allowed and can_send
            },
        }

    # --- Endpoints -------------------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/broadcast/send/",
                view(self.broadcast_send_view),
                name="crisis_incident_broadcast_send",
            ),
            path(
                "<path:object_id>/broadcast/notice/",
                view(self.broadcast_notice_view),
                name="crisis_incident_broadcast_notice",
            ),
            path(
                "<path:object_id>/broadcast/<int:send_id>/progress/",
                view(self.broadcast_progress_view),
                name="crisis_incident_broadcast_progress",
            ),
            path(
                "<path:object_id>/broadcast/<int:send_id>/<slug:action>/",
                view(self.broadcast_action_view),
                name="crisis_incident_broadcast_action",
            ),
            *super().get_urls(),
        ]

    def _broadcast_incident(self, request: HttpRequest, object_id: str) -> Incident:
        incident = self.get_object(request, unquote(object_id))
        if incident is None:
            raise Http404
        if not self.has_view_permission(request, incident):
            raise PermissionDenied
        return incident

    def _posted(
        self, request: HttpRequest, object_id: str, act: Callable[[Incident], str]
    ) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        incident = self._broadcast_incident(request, object_id)
        try:
            text = act(incident)
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
        except PermissionDenied as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            self.message_user(request, text, messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:crisis_incident_change", args=[incident.pk]) + "#broadcast-panel"
        )

    def _form_send(self, request: HttpRequest, object_id: str, form_class) -> HttpResponse:
        def act(incident: Incident) -> str:
            form = form_class(request.POST)
            if not form.is_valid():
                raise _form_problem(form)
            before = _latest_round(incident, form.kind, form.cleaned_data["channel"])
            sent = form.send(incident=incident, actor=request.user)
            return _sent_message(sent, made=sent.round > before)

        return self._posted(request, object_id, act)

    def broadcast_send_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._form_send(request, object_id, BroadcastForm)

    def broadcast_notice_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._form_send(request, object_id, NoticeForm)

    def broadcast_action_view(
        self, request: HttpRequest, object_id: str, send_id: int, action: str
    ) -> HttpResponse:
        change = {
            "pause": (
                services.broadcast_pause,
                gettext("Paused. Messages already handed over still go out."),
            ),
            "resume": (services.broadcast_resume, gettext("Resumed.")),
            "cancel": (
                services.broadcast_cancel,
                gettext("Cancelled. Messages not yet sent will not go out."),
            ),
        }.get(action)
        if change is None:
            raise Http404
        function, done = change

        def act(incident: Incident) -> str:
            row = (
                IncidentSend.objects.select_related("send")
                .filter(incident=incident, send_id=send_id)
                .first()
            )
            if row is None:
                raise Http404
            function(incident_send=row, actor=request.user)
            return done

        return self._posted(request, object_id, act)

    def broadcast_progress_view(
        self, request: HttpRequest, object_id: str, send_id: int
    ) -> HttpResponse:
        incident = self._broadcast_incident(request, object_id)
        row = (
            IncidentSend.objects.select_related("send")
            .filter(incident=incident, send_id=send_id)
            .first()
        )
        if row is None:
            raise Http404
        send = row.send
        return JsonResponse(
            progress_data(
                sends_progress([send.pk])[send.pk],
                status=send.status,
                status_label=send.get_status_display(),
            )
        )


def _latest_round(incident: Incident, kind: str, channel: str) -> int:
    """The latest round sent (0: none), read before sending: whether the
    service made a new one or found the one there (a second click)."""
    rounds = IncidentSend.objects.filter(incident=incident, kind=kind, channel=channel)
    return rounds.aggregate(last=Max("round"))["last"] or 0


def _sent_message(sent: IncidentSend, *, made: bool) -> str:
    values = {"kind": sent.get_kind_display(), "channel": sent.get_channel_display()}
    if not made:
        return gettext("%(kind)s by %(channel)s was already sent: nothing was sent again.") % values
    text = gettext("%(kind)s by %(channel)s is being sent.") % values
    if sent.send.respect_quiet_hours and quiet_hours_end(timezone.now()) is not None:
        text += " " + gettext("It is quiet hours: sending starts at %(time)s.") % {
            "time": local_time(quiet_hours_end(timezone.now()))
        }
    return text
