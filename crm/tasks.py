"""django-q2 entry points for crm: thin, safe to run twice."""

import logging

from crm.services import lifecycle_recompute
from crm.services.lifecycle import customer_indexes_rebuild
from crm.services.retention import retention_run

logger = logging.getLogger(__name__)


def lifecycle_recompute_task() -> int:
    """The nightly run: every customer's figures and segment; after a run
    that rewrote many of them, the customer table's indexes rebuilt."""
    changed = lifecycle_recompute()
    logger.info("lifecycle_recompute: %d customers changed", changed)
    if customer_indexes_rebuild(changed=changed):
        logger.info("lifecycle_recompute: indexes of crm_customer rebuilt after the rewrite")
    return changed


def retention_run_task() -> list[dict]:
    """The nightly retention job: each channel's buyers past their period
    anonymised, then the consent ledger pruned (crm.services.retention)."""
    events = retention_run()
    for event in events:
        logger.info("retention %s %s: %s", event.kind, event.channel or "-", event.data)
    return [event.data for event in events]


def import_job_run_task(job_id: int) -> str:
    """A CSV import (crm.imports.runner); a second run of the task finds
    the job taken and does nothing."""
    from crm.imports.runner import import_job_run

    job = import_job_run(job_id=job_id)
    return "" if job is None else job.status
