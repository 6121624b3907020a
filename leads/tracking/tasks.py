"""Tracking background work: process stored events, and re-send work a lost message left behind."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from leads.tracking import processing

logger = logging.getLogger(__name__)

SWEEP_BATCH_SIZE = 500


@shared_task(
    bind=True,
    autoretry_for=(OperationalError, InterfaceError, ConnectionError, TimeoutError),
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
)
def process_track_events(self, workspace_id: str, visitor_keys: list[str], lead_ids: list[str]) -> int:
    done = processing.track_events_process(workspace_id=workspace_id, visitor_keys=visitor_keys, lead_ids=lead_ids)
    # Also when nothing was left to process: a retry after a failed rescoring must still rescore.
    rescore_tracked_leads(workspace_id=workspace_id, visitor_keys=visitor_keys, lead_ids=lead_ids)
    return done


def rescore_tracked_leads(*, workspace_id, visitor_keys, lead_ids) -> None:
    """New events change behavioural scores and segment membership: the leads behind them are
    rescored and their segments re-evaluated in the same task."""
    from leads.segments.services import leads_reevaluate
    from leads.tracking.models import Visitor

    leads = set(map(str, lead_ids)) | {
        str(pk)
        for pk in Visitor.objects.filter(workspace_id=workspace_id, visitor_key__in=list(visitor_keys), lead__isnull=False).values_list(
            "lead_id", flat=True
        )
    }
    if leads:
        leads_reevaluate(workspace_id=workspace_id, lead_ids=sorted(leads), reason="new activity")


def enqueue_track_processing(workspace_id, visitor_keys, lead_ids) -> bool:
    """Sends the task without retrying the broker: events are stored, and the sweeper finds them."""
    if not visitor_keys and not lead_ids:
        return True
    try:
        process_track_events.apply_async(args=[str(workspace_id), sorted(visitor_keys), sorted(map(str, lead_ids))], retry=False)
    except Exception as error:  # noqa: BLE001 - any broker failure only delays processing
        logger.warning("could not enqueue event processing (%s); the sweeper will retry", error)
        return False
    return True


@shared_task
def sweep_unprocessed_events(stalled_seconds: int | None = None) -> int:
    """Re-enqueues events left unprocessed (a lost message, a broker outage)."""
    seconds = stalled_seconds if stalled_seconds is not None else settings.TRACK_PROCESSING_STALL_SECONDS
    work = processing.unprocessed_work(older_than=timezone.now() - timedelta(seconds=seconds), limit=SWEEP_BATCH_SIZE)
    by_workspace: dict[str, tuple[set, set]] = {}
    for workspace_id, visitor_key, lead_id in work:
        keys, leads = by_workspace.setdefault(str(workspace_id), (set(), set()))
        if visitor_key:
            keys.add(visitor_key)
        elif lead_id:
            leads.add(str(lead_id))
    return sum(enqueue_track_processing(workspace_id, keys, leads) for workspace_id, (keys, leads) in by_workspace.items())
