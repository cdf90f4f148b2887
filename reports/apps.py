from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    """What managers read: the monthly trouble analysis, the improvement
    cycle's countermeasures, mall health and the home page per role. An app
    of its own because it only reads the other apps (inquiries, orders,
    incidents, campaigns) and none of them needs to know of it."""

    name = "reports"
    verbose_name = _("Reports")
