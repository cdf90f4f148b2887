from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def worker_warm_up(**_kwargs) -> None:
    """django-q2's post_spawn, in each new worker process: import what a
    dispatch task needs while the worker is idle, not in the first batch of
    a campaign. line-bot-sdk (a second or more of CPU, ~35 MB a worker)
    only where LINE is set up."""
    from django.conf import settings

    from outreach import tasks  # noqa: F401  (the dispatch code)

    if settings.LINE_CHANNEL_ACCESS_TOKEN:
        from outreach.channels.line import _sdk

        _sdk()


class OutreachConfig(AppConfig):
    name = "outreach"
    verbose_name = _("Outreach")

    def ready(self) -> None:
        from django_q.signals import post_spawn

        post_spawn.connect(worker_warm_up, dispatch_uid="outreach.worker_warm_up")
