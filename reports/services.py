"""Writes of the improvement cycle (改善サイクル)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from core.types import Actor
from reports.models import Countermeasure, CountermeasureStatus


def countermeasure_save(*, countermeasure: Countermeasure, actor: Actor) -> Countermeasure:
    """Create or update a countermeasure. It concerns a category or an
    incident (or both); its month is the first day of the month reviewed;
    done_at is stamped when it is first marked done and cleared if reopened."""
    if countermeasure.category_id is None and countermeasure.incident_id is None:
        raise ValidationError(
            {"category": [_("Choose the category or the incident this countermeasure is for.")]}
        )
    if countermeasure.month is not None:
        countermeasure.month = countermeasure.month.replace(day=1)
    if countermeasure.status == CountermeasureStatus.DONE:
        countermeasure.done_at = countermeasure.done_at or timezone.now()
    else:
        countermeasure.done_at = None
    if countermeasure.pk is None and actor is not None and actor.is_authenticated:
        countermeasure.created_by = actor
    countermeasure.full_clean()
    countermeasure.save()
    return countermeasure
