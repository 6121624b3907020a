"""Scoring background work: band actions after a crossing, and the periodic rescoring that
applies decay and inactivity to every lead in bounded batches."""

import logging

from celery import shared_task
from django.utils import timezone

from leads.models import Lead

logger = logging.getLogger(__name__)

RESCORE_BATCH_SIZE = 1000


@shared_task(acks_late=True)
def run_band_actions(change_id: int):
    from scoring.actions import band_actions_run

    return band_actions_run(change_id=change_id)


@shared_task(acks_late=True)
def run_band_actions_many(change_ids: list[int]) -> int:
    from scoring.actions import band_actions_run

    return sum(1 for change_id in change_ids if band_actions_run(change_id=change_id) is not None)


def enqueue_band_actions_many(change_ids: list[int]) -> None:
    if not change_ids:
        return
    try:
        run_band_actions_many.apply_async(args=[list(change_ids)], retry=False)
    except Exception as error:  # noqa: BLE001 - the broker being down must not undo the rescoring
        logger.warning("could not enqueue band actions of %s score changes: %s", len(change_ids), error)


def rescore_workspace(workspace_id, *, reason: str, at=None, batch_size: int = RESCORE_BATCH_SIZE) -> int:
    """Rescores every live lead of the workspace at one instant, batch by batch (keyset by id, a
    fixed number of queries per batch). Returns how many scores changed."""
    from leads.segments.services import lead_segments_refresh
    from scoring.services import leads_rescore_changed_ids

    at = at or timezone.now()
    changed, after = 0, None
    live = Lead.objects.filter(workspace_id=workspace_id, deleted_at__isnull=True).order_by("pk")
    while True:
        page = live.filter(pk__gt=after) if after is not None else live
        ids = list(page.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return changed
        # A lead being rescored right now by an event is skipped: that rescoring is current anyway.
        changed_ids = leads_rescore_changed_ids(workspace_id=workspace_id, lead_ids=ids, reason=reason, at=at, skip_locked=True)
        if changed_ids:
            # A score that decayed can take a lead out of (or into) a segment: one refresh per batch, for its changed leads.
            lead_segments_refresh(workspace_id=workspace_id, lead_ids=changed_ids, reason=reason, now=at)
        changed += len(changed_ids)
        after = ids[-1]


@shared_task(acks_late=True)
def rescore_workspace_task(workspace_id: str, reason: str) -> int:
    return rescore_workspace(workspace_id, reason=reason)


def enqueue_workspace_rescore(workspace_id, *, reason: str) -> None:
    try:
        rescore_workspace_task.apply_async(args=[str(workspace_id), reason], retry=False)
    except Exception as error:  # noqa: BLE001 - the hourly job rescores anyway
        logger.warning("could not enqueue rescoring of workspace %s: %s", workspace_id, error)


@shared_task
def rescore_all_leads() -> int:
    """Beat: decay and inactivity move scores with time alone; every workspace is rescored at one
    fixed instant."""
    from workspaces.models import Workspace

    at = timezone.now()
    return sum(rescore_workspace(workspace_id, reason="decay", at=at) for workspace_id in Workspace.objects.values_list("pk", flat=True))
