"""Incidents built through the services (the tests of incidents,
playbooks and their admin share them)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from crisis.models import Incident, IncidentKind
from crisis.services.incidents import incident_open


def incident(
    *,
    actor,
    kind: str = IncidentKind.MALL_OUTAGE,
    channel: str = "rakuten",
    title: str = "楽天市場 障害（スーパーSALE中）",
    started_at: datetime | None = None,
    expected_recovery_at: datetime | None = None,
    **kwargs,
) -> Incident:
    started_at = started_at or timezone.now() - timedelta(minutes=10)
    if kind != IncidentKind.MALL_OUTAGE and channel == "rakuten":
        channel = ""
        kwargs.setdefault("system", "受注管理システム")
    return incident_open(
        kind=kind,
        title=title,
        channel=channel,
        started_at=started_at,
        expected_recovery_at=expected_recovery_at or started_at + timedelta(hours=3),
        actor=actor,
        **kwargs,
    )
