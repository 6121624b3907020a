"""Segment background work: scheduled refreshes and enter/exit automations."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task
def refresh_due_segments() -> int:
    from leads.segments.services import refresh_due_segments as refresh

    return refresh()


@shared_task(acks_late=True)
def run_segment_automations(event_ids: list[int]) -> int:
    from leads.segments.actions import segment_event_automations_run

    return sum(1 for event_id in event_ids if segment_event_automations_run(event_id=event_id) is not None)


def enqueue_segment_automations(event_ids: list[int]) -> None:
    if not event_ids:
        return
    try:
        run_segment_automations.apply_async(args=[list(event_ids)], retry=False)
    except Exception as error:  # noqa: BLE001 - a broker outage must not undo the membership change
        logger.warning("could not enqueue segment automations for %s events: %s", len(event_ids), error)


@shared_task
def sweep_segment_automations(stalled_seconds: int = 60, limit: int = 500) -> int:
    """Re-sends automations of enter/exit events that were never started (a broker outage when
    the lead entered or left): the membership changed, so its actions still have to run."""
    from datetime import timedelta

    from django.utils import timezone

    from leads.segments.models import SegmentEvent

    cutoff = timezone.now() - timedelta(seconds=stalled_seconds)
    ids = list(
        SegmentEvent.objects.filter(automations_started_at__isnull=True, at__lte=cutoff).order_by("at").values_list("pk", flat=True)[:limit]
    )
    enqueue_segment_automations(ids)
    return len(ids)
