"""Choices that every app shares. Kept in core, which imports no domain
app, so that core's own models and services may use them too."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    RAKUTEN = "rakuten", _("Rakuten Ichiba")
    AMAZON = "amazon", _("Amazon")
    YAHOO = "yahoo", _("Yahoo! Shopping")
    OWN_SITE = "own_site", _("Own site")
    STORE = "store", _("Real shop")
    LINE = "line", _("LINE")
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
