from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from core.models import IdempotencyRecord


def idempotency_purge_task() -> int:
    """Forget idempotency records older than the retention window."""
    cutoff = timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_RETENTION_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
