"""django-q2 entry points for crm: thin, safe to run twice."""

import logging

from crm.services import lifecycle_recompute

logger = logging.getLogger(__name__)


def lifecycle_recompute_task() -> int:
    changed = lifecycle_recompute()
    logger.info("lifecycle_recompute: %d customers changed", changed)
    return changed
