"""Scoring background work: band actions after a crossing, and the rescoring of whole workspaces
(hourly decay and inactivity, a scoring model edit). A workspace is rescored in keyset ranges of
its leads that worker tasks run in parallel, each range in bounded batches."""

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from leads.models import Lead
from leadsmgr.db import TRANSIENT_DB_ERRORS
from scoring.models import RescoreRange

logger = logging.getLogger(__name__)

RESCORE_BATCH_SIZE = 1000
# Finished ranges are kept this long (what each run changed and when it ended), then purged hourly.
RESCORE_RANGE_RETENTION = timedelta(days=7)
TRANSIENT_ERRORS = (*TRANSIENT_DB_ERRORS, ConnectionError, TimeoutError)


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


def _live_leads(workspace_id):
    """The workspace's live leads in creation order: the order their rows were written, so a batch's
    leads share pages rather than landing on a thousand random ones (at 1M leads, a batch of ids in
    uuid order took 2.7x as long to update as the same number in table order), and a pass that
    rewrites them in this order keeps it."""
    return Lead.objects.filter(workspace_id=workspace_id, deleted_at__isnull=True).order_by("created_at", "pk")


def _after(leads, key):
    """`leads` after the (created_at, id) `key`; `created_at >= …` comes first because it is what the
    index scan starts from (the OR alone is no index condition)."""
    created_at, pk = key
    return leads.filter(created_at__gte=created_at).filter(Q(created_at__gt=created_at) | Q(pk__gt=pk))


def _up_to(leads, key):
    created_at, pk = key
    return leads.filter(created_at__lte=created_at).filter(Q(created_at__lt=created_at) | Q(pk__lte=pk))


def _key_batches(workspace_id, *, after, last, batch_size: int) -> Iterator[list[tuple]]:
    """The (created_at, id) keys of the workspace's live leads in (after, last], in creation order,
    `batch_size` at a time; each page starts after the previous page's last key (keyset), so a page
    costs the same anywhere."""
    live = _live_leads(workspace_id)
    if last is not None:
        live = _up_to(live, last)
    while True:
        keys = list((_after(live, after) if after is not None else live).values_list("created_at", "pk")[:batch_size])
        if not keys:
            return
        yield keys
        after = keys[-1]


def rescore_ranges_plan(workspace_id, *, reason: str, at, parts: int, batch_size: int = RESCORE_BATCH_SIZE) -> list[RescoreRange]:
    """Splits the workspace's live leads into up to `parts` keyset ranges of about the same size (a
    range is at least a batch) and saves them as one run, in creation order."""
    live = _live_leads(workspace_id)
    count = live.count()
    parts = max(1, min(parts, -(-count // batch_size)))
    # Leads created or deleted between these reads only move a boundary: the first range starts
    # before the first lead and the last one has no end, so every lead is in exactly one range.
    keys = live.values_list("created_at", "pk")
    cuts = sorted({cut for part in range(1, parts) for cut in keys[count * part // parts - 1 :][:1]})
    run = uuid.uuid4()
    return RescoreRange.objects.bulk_create(
        RescoreRange(
            workspace_id=workspace_id,
            run=run,
            reason=reason[:200],
            at=at,
            after_created_at=after[0] if after else None,
            after=after[1] if after else None,
            last_created_at=last[0] if last else None,
            last=last[1] if last else None,
        )
        for after, last in zip([None, *cuts], [*cuts, None], strict=True)
    )


def rescore_range(range_id: int, *, batch_size: int = RESCORE_BATCH_SIZE) -> int:
    """Rescores the range's leads after its cursor, batch after batch, then marks it done; returns how
    many scores this call changed. A done range is left alone (a redelivered message). A range also
    stops once a newer run of its workspace exists: that run rescores the same leads at a later
    instant, and going on could put back the scores of an earlier one."""
    part = RescoreRange.objects.filter(pk=range_id, done_at__isnull=True).first()
    if part is None:
        return 0
    if not part.has_creation_keys:
        # Planned by a worker of the id-order version: its bounds mean nothing in creation order.
        logger.warning("rescoring range %s has id-order bounds; closed, the next run rescores its leads", part.pk)
        RescoreRange.objects.filter(pk=part.pk).update(done_at=timezone.now())
        return 0
    changed = 0
    for keys in _key_batches(part.workspace_id, after=part.cursor_key or part.after_key, last=part.last_key, batch_size=batch_size):
        batch_changed = _rescore_batch(part, keys)
        if batch_changed is None:
            break
        changed += batch_changed
    RescoreRange.objects.filter(pk=part.pk, done_at__isnull=True).update(done_at=timezone.now())
    return changed


def _run_lock(workspace_id, *, exclusive: bool) -> None:
    """A transaction-scoped advisory lock on the workspace's rescoring runs (PostgreSQL; SQLite has
    one writer at a time already)."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(hashtextextended(%s, 0))", [f"rescore-run:{workspace_id}"])


def _rescore_batch(part: RescoreRange, keys: list[tuple]) -> int | None:
    """Rescores one batch of (created_at, id) keys; None when a newer run of the workspace exists
    (the range stops)."""
    from leads.segments.services import lead_segments_refresh
    from scoring.services import leads_rescore_changed_ids

    with transaction.atomic():
        # Checked under the run lock (shared here, exclusive while a run is planned): a newer run is
        # either visible now, or planned after this batch commits and so rescores these leads too.
        _run_lock(part.workspace_id, exclusive=False)
        if RescoreRange.objects.filter(workspace_id=part.workspace_id, pk__gt=part.pk).exclude(run=part.run).exists():
            return None
        # A lead being rescored right now by an event is skipped: that rescoring is current anyway.
        changed_ids = leads_rescore_changed_ids(
            workspace_id=part.workspace_id, lead_ids=[pk for _, pk in keys], reason=part.reason, at=part.at, skip_locked=True
        )
        # In the batch's transaction: a retry resumes after exactly what was committed.
        cursor_created_at, cursor = keys[-1]
        RescoreRange.objects.filter(pk=part.pk).update(
            cursor_created_at=cursor_created_at, cursor=cursor, changed=F("changed") + len(changed_ids)
        )
    if changed_ids:
        # A score that decayed can take a lead out of (or into) a segment: one refresh per batch, for its changed leads.
        lead_segments_refresh(workspace_id=part.workspace_id, lead_ids=changed_ids, reason=part.reason, now=part.at)
    return len(changed_ids)


@shared_task(
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
)
def rescore_range_task(range_id: int, batch_size: int = RESCORE_BATCH_SIZE) -> int:
    return rescore_range(range_id, batch_size=batch_size)


def rescore_workspace_start(workspace_id, *, reason: str, at=None, batch_size: int = RESCORE_BATCH_SIZE):
    """Starts rescoring every live lead of the workspace at one instant: settings.RESCORE_PARALLELISM
    ranges, one task each, queued once the ranges are committed. Returns the run's id
    (rescore_run_progress tells how far it got)."""
    at = at or timezone.now()
    with transaction.atomic():
        _run_lock(workspace_id, exclusive=True)
        parts = rescore_ranges_plan(workspace_id, reason=reason, at=at, parts=settings.RESCORE_PARALLELISM, batch_size=batch_size)
        range_ids = [part.pk for part in parts]
        transaction.on_commit(lambda: _enqueue_ranges(range_ids, batch_size=batch_size))
    return parts[0].run


def _enqueue_ranges(range_ids: list[int], *, batch_size: int) -> None:
    for range_id in range_ids:
        try:
            rescore_range_task.apply_async(args=[range_id, batch_size], retry=False)
        except Exception as error:  # noqa: BLE001 - the hourly job rescores anyway
            logger.warning("could not enqueue rescoring range %s: %s", range_id, error)


@dataclass(frozen=True)
class RescoreProgress:
    ranges: int
    done: int
    changed: int  # scores changed so far

    @property
    def finished(self) -> bool:
        return self.done == self.ranges


def rescore_run_progress(run) -> RescoreProgress:
    totals = RescoreRange.objects.filter(run=run).aggregate(ranges=Count("pk"), done=Count("done_at"), changed=Sum("changed"))
    return RescoreProgress(ranges=totals["ranges"], done=totals["done"], changed=totals["changed"] or 0)


def rescore_workspace(workspace_id, *, reason: str, at=None, batch_size: int = RESCORE_BATCH_SIZE) -> int:
    """Rescores every live lead of the workspace at one instant in this process, as one range (a shell,
    a command, tests); the jobs start parallel ranges with rescore_workspace_start. Returns how many
    scores changed."""
    with transaction.atomic():
        _run_lock(workspace_id, exclusive=True)
        [part] = rescore_ranges_plan(workspace_id, reason=reason, at=at or timezone.now(), parts=1, batch_size=batch_size)
    return rescore_range(part.pk, batch_size=batch_size)


@shared_task(acks_late=True)
def rescore_workspace_task(workspace_id: str, reason: str) -> str:
    return str(rescore_workspace_start(workspace_id, reason=reason))


def enqueue_workspace_rescore(workspace_id, *, reason: str) -> None:
    try:
        rescore_workspace_task.apply_async(args=[str(workspace_id), reason], retry=False)
    except Exception as error:  # noqa: BLE001 - the hourly job rescores anyway
        logger.warning("could not enqueue rescoring of workspace %s: %s", workspace_id, error)


@shared_task
def rescore_all_leads() -> int:
    """Beat: decay and inactivity move scores with time alone; every workspace is rescored at one
    fixed instant, each in parallel ranges. Returns how many workspaces were started."""
    from workspaces.models import Workspace

    at = timezone.now()
    # Also ranges that never finished (a lost message, a range stopped by a newer run's stale
    # delivery): past the retention period they describe nothing anyone waits for.
    RescoreRange.objects.filter(Q(done_at__lt=at - RESCORE_RANGE_RETENTION) | Q(created_at__lt=at - RESCORE_RANGE_RETENTION)).delete()
    workspace_ids = list(Workspace.objects.values_list("pk", flat=True))
    for workspace_id in workspace_ids:
        rescore_workspace_start(workspace_id, reason="decay", at=at)
    return len(workspace_ids)
