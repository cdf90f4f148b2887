"""What every timeline shares: the abstract record and who may be its
actor (kept out of core.models, which imports crm)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class EventRecord(models.Model):
    """What every timeline row has (customer, inquiry and campaign events):
    who did it (kept as empty when the user is deleted), the details, when."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    data = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        abstract = True


def actor_or_none(actor):
    """Only a real user is stored as an actor (not an API client, which has
    no primary key, nor nobody)."""
    return actor if getattr(actor, "pk", None) else None
