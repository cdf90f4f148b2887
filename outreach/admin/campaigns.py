"""Campaigns in the admin: drafts, the buttons that move them, and progress.

A draft's fields are plain data and the admin saves them (only while the
campaign is still a draft or scheduled). Every change of state — send now,
schedule, pause, resume, cancel, a test send — is a button posting to
`.../<id>/action/<name>/`, which calls the `outreach.services` function of
that name. Once launched, the page shows the ledger's progress and polls
`.../<id>/progress/` (JSON) every few seconds while it changes.
The forms are in `campaign_forms`, what the page shows besides them in `campaign_display`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
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
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceFormAdmin, copy_saved, staff_column
from core.audit import audit_csv_record
from outreach import services
from outreach.admin.campaign_display import (
    audience_estimate,
    campaign_progress_data,
    line_longest_before_launch,
    line_longest_launched,
    local_time,
    longest_text,
)
from outreach.admin.campaign_forms import (
    DATA_FIELDS,
    CampaignForm,
    ScheduleForm,
    TemplateSelect,
    TestSendForm,
)
from outreach.admin.deliveries import deliveries_url
from outreach.admin.results import results_context, results_rows
from outreach.dispatch import quiet_hours_end
from outreach.dm import CP932, UTF8, dm_csv
from outreach.models import (
    CAMPAIGN_EDITABLE,
    Campaign,
    CampaignStatus,
    DeliveryChannel,
    DeliveryStatus,
    MessageChannel,
    MessageTemplate,
    Purpose,
)
from outreach.selectors import (
    dm_labels,
    results_for_campaign,
    send_progress,
    sends_progress,
)
from reports.csv import csv_response

FINISHED = (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED)
# The postal DM address list's downloads: the URL's word, and its encoding.
DM_FILES = {"cp932": CP932, "utf8": UTF8}
RECORD_FIELDS = ("status", "launched_at", "completed_at", "send", "created_by_name", "created_at")


@admin.register(Campaign)
class CampaignAdmin(ServiceFormAdmin):
    form = CampaignForm
    list_display = (
        "name",
        "channel",
        "segment",
        "status",
        "scheduled_at",
        "launched_at",
        "progress",
    )
    list_filter = ("status", "channel")
    list_select_related = ("segment",)
    search_fields = ("name",)
    ordering = ("-created_at", "-id")
    show_full_result_count = False

    # --- Changelist: every row's progress in one query ---------------------------

    def get_changelist_instance(self, request: HttpRequest):
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)  # evaluates (and caches) the page once
        progress = sends_progress(row.send_id for row in rows if row.send_id)
        for row in rows:
            row.send_progress = progress.get(row.send_id)  # None: not launched
        return changelist

    @admin.display(description=_("progress"))
    def progress(self, obj: Campaign) -> str:
        progress = getattr(obj, "send_progress", None)
        if progress is None:
            return "—"
        return format_html(
            '<progress max="100" value="{}" style="width:6em"></progress> {}% ({}/{})',
            progress.percent,
            progress.percent,
            f"{progress.attempted:,}",
            f"{progress.sendable:,}",
        )

    # --- Change page --------------------------------------------------------------

    created_by_name = staff_column(Campaign, "created_by")

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None):
        if from_field is not None:
            return super().get_object(request, object_id, from_field)
        queryset = self.get_queryset(request).select_related(
            "template", "segment", "send", "created_by"
        )
        try:
            return queryset.get(pk=object_id)
        except (Campaign.DoesNotExist, ValidationError, ValueError):
            return None

    def get_fields(self, request: HttpRequest, obj: Campaign | None = None):
        if obj is None:
            return [*DATA_FIELDS, "scheduled_at"]
        if obj.channel == DeliveryChannel.DM and obj.status not in CAMPAIGN_EDITABLE:
            # No message, no schedule: the download sent it. (A draft keeps
            # the fields, hidden by the page while the channel is DM.)
            fields = [name for name in DATA_FIELDS if name != "template"]
            return [*fields, *RECORD_FIELDS]
        return [*DATA_FIELDS, "scheduled_at", *RECORD_FIELDS]

    def get_readonly_fields(self, request: HttpRequest, obj: Campaign | None = None):
        if obj is None:
            return ()
        if obj.status in CAMPAIGN_EDITABLE:
            return RECORD_FIELDS
        return (*DATA_FIELDS, "scheduled_at", *RECORD_FIELDS)

    def has_delete_permission(self, request: HttpRequest, obj: Campaign | None = None) -> bool:
        return False  # a campaign is cancelled, never deleted: its ledger stays

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        if db_field.name == "template":
            kwargs["queryset"] = MessageTemplate.objects.filter(purpose=Purpose.MARKETING)
            kwargs["widget"] = TemplateSelect
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Campaign | None = None,
    ) -> HttpResponse:
        if obj is not None and obj.pk:
            context.update(self.panel_context(request, obj))
            if "test_send_form" in context:
                context["media"] += context["test_send_form"].media
            context["editable_statuses"] = [str(status) for status in CAMPAIGN_EDITABLE]
            if obj.status not in CAMPAIGN_EDITABLE:
                context.update(show_save=False, show_save_and_continue=False)
                context.update(show_save_and_add_another=False)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def panel_context(self, request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
        """Status, audience or progress, and the buttons this state allows."""
        can_act = self.has_change_permission(request, campaign)
        status = campaign.status
        dm = campaign.channel == DeliveryChannel.DM
        context: dict[str, Any] = {
            "campaign": campaign,
            "can_act": can_act,
            "is_dm": dm,
        }
        context["actions"] = {
            "launch": can_act and not dm and status in CAMPAIGN_EDITABLE,
            "schedule": can_act and not dm and status in CAMPAIGN_EDITABLE,
            "pause": can_act and status == CampaignStatus.SENDING,
            "resume": can_act and status == CampaignStatus.PAUSED,
            "cancel": can_act and (status in CAMPAIGN_EDITABLE if dm else status not in FINISHED),
            "test_send": can_act and not dm,
        }
        context["action_urls"] = {
            name: reverse("admin:outreach_campaign_action", args=[campaign.pk, name])
            for name in context["actions"]
        }
        if dm and can_act and (status in CAMPAIGN_EDITABLE or campaign.send_id):
            context["dm_export_urls"] = {
                key: reverse("admin:outreach_campaign_dm_export", args=[campaign.pk, key])
                for key in DM_FILES
            }
        if campaign.send_id:
            context["progress"] = campaign_progress_data(campaign)
            context["progress_url"] = reverse(
                "admin:outreach_campaign_progress", args=[campaign.pk]
            )
            context["deliveries_url"] = deliveries_url(campaign.send_id)
            context.update(results_context(campaign))
            context["results_csv_url"] = reverse(
                "admin:outreach_campaign_results_csv", args=[campaign.pk]
            )
        else:
            try:
                context["audience"] = audience_estimate(campaign)
                if campaign.channel == MessageChannel.LINE:
                    longest = line_longest_before_launch(campaign)
                    if longest is not None:
                        context["longest"] = longest
                        context["longest_text"] = longest_text(longest)
            except ValidationError as error:
                context["audience_errors"] = error.messages
        if can_act:
            scheduled = campaign.scheduled_at and timezone.localtime(campaign.scheduled_at)
            context["schedule_form"] = ScheduleForm(initial={"scheduled_at": scheduled})
            context["test_send_form"] = TestSendForm(campaign=campaign, user=request.user)
        return context

    # --- Saving a draft -------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Campaign, form, change: bool) -> None:
        at = form.cleaned_data.get("scheduled_at")
        was_scheduled = change and obj.status == CampaignStatus.SCHEDULED
        saved = services.campaign_save(
            campaign=obj if change else None,
            name=obj.name,
            channel=obj.channel,
            template=obj.template,
            segment=obj.segment,
            holdout_percent=obj.holdout_percent,
            attribution_days=obj.attribution_days,
            actor=request.user,
        )
        if was_scheduled and at is None:
            saved = services.campaign_unschedule(campaign=saved, actor=request.user)
            self.message_user(request, gettext("Unscheduled: the campaign is a draft again."))
        elif at is not None and at != saved.scheduled_at:
            saved = services.campaign_schedule(campaign=saved, at=at, actor=request.user)
            self.message_user(
                request,
                gettext("Scheduled for %(time)s.") % {"time": local_time(saved.scheduled_at)},
                messages.SUCCESS,
            )
        copy_saved(obj, saved)

    # --- Buttons and the progress endpoint -------------------------------------------

    def get_urls(self):
        return [
            path(
                "<path:object_id>/action/<slug:action>/",
                self.admin_site.admin_view(self.action_view),
                name="outreach_campaign_action",
            ),
            path(
                "<path:object_id>/dm/<slug:file>/",
                self.admin_site.admin_view(self.dm_export_view),
                name="outreach_campaign_dm_export",
            ),
            path(
                "<path:object_id>/results.csv",
                self.admin_site.admin_view(self.results_csv_view),
                name="outreach_campaign_results_csv",
            ),
            path(
                "<path:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="outreach_campaign_progress",
            ),
            *super().get_urls(),
        ]

    def action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        handler: Callable[[HttpRequest, Campaign], str] | None = {
            "launch": self.launch,
            "schedule": self.schedule,
            "pause": self.pause,
            "resume": self.resume,
            "cancel": self.cancel,
            "test_send": self.test_send,
        }.get(action)
        if handler is None:
            raise Http404
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]  # Django's private helper, missing from django-stubs
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        try:
            text = handler(request, campaign)
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
        else:
            self.message_user(request, text, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:outreach_campaign_change", args=[campaign.pk]))

    def launch(self, request: HttpRequest, campaign: Campaign) -> str:
        # The service launches once and returns the campaign as it finds it
        # under its lock: the same send as before means it was launched.
        before = campaign.send_id
        campaign = services.campaign_launch(campaign=campaign, actor=request.user)
        if campaign.send_id is None or campaign.send_id == before:
            raise ValidationError(gettext("This campaign has already been launched."))
        assert campaign.send is not None  # the send_id just checked
        progress = send_progress(campaign.send)
        text = gettext(
            "“%(name)s” is being sent: %(queued)s recipient(s) queued, %(skipped)s skipped."
        ) % {
            "name": campaign.name,
            "queued": f"{progress.pending:,}",
            "skipped": f"{progress.ineligible:,}",
        }
        if progress.held_out:
            text += " " + gettext(
                "%(held_out)s customer(s) are held out as the comparison group and are not sent it."
            ) % {"held_out": f"{progress.held_out:,}"}
        quiet_until = quiet_hours_end(timezone.now())
        if quiet_until is not None:
            text += " " + gettext("It is quiet hours: sending starts at %(time)s.") % {
                "time": local_time(quiet_until)
            }
        if campaign.channel == MessageChannel.LINE:
            longest = line_longest_launched(campaign.send)
            if longest is not None:
                text += " " + longest_text(longest)
        return text

    def schedule(self, request: HttpRequest, campaign: Campaign) -> str:
        form = ScheduleForm(request.POST)
        if not form.is_valid():
            raise ValidationError([m for errors in form.errors.values() for m in errors])
        campaign = services.campaign_schedule(
            campaign=campaign, at=form.cleaned_data["scheduled_at"], actor=request.user
        )
        return gettext("Scheduled for %(time)s.") % {"time": local_time(campaign.scheduled_at)}

    def pause(self, request: HttpRequest, campaign: Campaign) -> str:
        services.campaign_pause(campaign=campaign, actor=request.user)
        return gettext("Paused. Messages already handed to the provider still go out.")

    def resume(self, request: HttpRequest, campaign: Campaign) -> str:
        services.campaign_resume(campaign=campaign, actor=request.user)
        return gettext("Resumed.")

    def cancel(self, request: HttpRequest, campaign: Campaign) -> str:
        services.campaign_cancel(campaign=campaign, actor=request.user)
        return gettext("Cancelled. Messages not yet sent will not go out.")

    def test_send(self, request: HttpRequest, campaign: Campaign) -> str:
        form = TestSendForm(request.POST, campaign=campaign, user=request.user)
        if not form.is_valid():
            raise ValidationError(gettext("Choose whom to send the test to, among the testers."))
        customer = form.customer(request.user)
        send = services.campaign_test_send(campaign=campaign, customer=customer, actor=request.user)
        skipped = send.deliveries.filter(status=DeliveryStatus.SKIPPED).first()
        if skipped is not None:  # e.g. no email address, or no LINE account
            raise ValidationError(
                gettext("The test cannot go to %(customer)s: %(reason)s.")
                % {"customer": customer, "reason": skipped.get_skip_reason_display()}
            )
        return gettext("A test is on its way to %(customer)s.") % {"customer": customer}

    def dm_export_view(self, request: HttpRequest, object_id: str, file: str) -> HttpResponse:
        """The postal DM's address list for the print shop: the first
        download records its recipients sent (outreach.services.dm), every
        later one gives the same list again. Audited as an export."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        encoding = DM_FILES.get(file)
        if encoding is None:
            raise Http404
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None:
            raise Http404
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        try:
            campaign, _sent = services.campaign_dm_export(campaign=campaign, actor=request.user)
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return HttpResponseRedirect(
                reverse("admin:outreach_campaign_change", args=[campaign.pk])
            )
        assert campaign.send is not None  # the export made it
        deliveries = list(dm_labels(send=campaign.send))
        audit_csv_record(
            request=request,
            rows=len(deliveries),
            held=f"postal DM address list, campaign {campaign.pk} ({file})",
        )
        charset = "windows-31j" if encoding == CP932 else UTF8
        response = HttpResponse(
            dm_csv(deliveries, encoding=encoding), content_type=f"text/csv; charset={charset}"
        )
        name = gettext("Address list %(id)s %(encoding)s.csv") % {
            "id": campaign.pk,
            "encoding": "CP932" if encoding == CP932 else "UTF-8",
        }
        response["Content-Disposition"] = (
            f"attachment; filename=\"dm-{campaign.pk}-{file}.csv\"; filename*=UTF-8''{quote(name)}"
        )
        return response

    def progress_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None:
            raise Http404
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        if not campaign.send_id:
            return JsonResponse({"status": campaign.status, "total": 0}, status=404)
        return JsonResponse(campaign_progress_data(campaign))

    def results_csv_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None:
            raise Http404
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        results = results_for_campaign(campaign)
        return csv_response(
            filename=gettext("Campaign results %(id)s.csv") % {"id": campaign.pk},
            columns=[
                gettext("Measure"),
                gettext("Recipients"),
                gettext("Holdout group"),
            ],
            rows=results_rows(results),
        )
