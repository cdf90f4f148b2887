from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrisisConfig(AppConfig):
    """Incidents, their playbooks and emergency broadcasts, and sales
    suspensions: what a manager runs a crisis with. An app of its own
    because it stands on all three domains (customers and orders from crm,
    inquiries from tickets, the delivery ledger from outreach) and none of
    them needs to know it exists."""

    name = "crisis"
    verbose_name = _("Crisis response")
