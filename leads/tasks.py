"""Lead background work. Tasks take ids, are idempotent, and never rely on the broker remembering
a delay: stalled work is found in PostgreSQL by the sweeper."""

import logging
from datetime import timedelta

from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from leads import processing
from leads.models import FailedJob, Lead
from leads.segments import tasks as segment_tasks  # noqa: F401 - registers the segment tasks with Celery
from leads.tracking import tasks as tracking_tasks  # noqa: F401 - registers the tracking tasks with Celery

logger = logging.getLogger(__name__)

SWEEP_BATCH_SIZE = 500
TRANSIENT_ERRORS = (processing.TransientError, OperationalError, InterfaceError, ConnectionError, TimeoutError)


class RecordsFailures(Task):
    """Parks a task that failed for good as a FailedJob, which ops can replay from admin."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        lead_id = (args or [kwargs.get("lead_id")])[0]
        lead = Lead.objects.filter(pk=lead_id).only("pk", "workspace_id").first()
        FailedJob.objects.create(
            workspace_id=lead.workspace_id if lead else None,
            lead=lead,
            task_name=self.name,
            args=[str(arg) for arg in args],
            error=f"{exc.__class__.__name__}: {exc}"[:5000],
            attempts=self.request.retries + 1,
        )
        if lead is not None:
            processing.mark_failed(lead.pk)
        logger.error("task %s%s failed for good: %s", self.name, tuple(args), exc)


@shared_task(
    bind=True,
    base=RecordsFailures,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=settings.LEAD_PROCESSING_MAX_RETRIES,
    acks_late=True,
)
def process_lead(self, lead_id: str) -> str | None:
    """Processes the lead, together with the leads of its workspace still waiting behind it: under
    a burst of webhooks one set-based batch (~30 statements) replaces dozens of single runs (~25
    each), and their own messages then find them done. This lead keeps its retries: if its step
    fails in the batch, the error is raised here; another lead's failure is left to its own message."""
    return processing.process(lead_id, along=processing.leads_waiting_with(lead_id, limit=settings.LEAD_PROCESSING_CATCH_UP))


def enqueue_processing(lead_id) -> bool:
    """Sends the task without retrying the broker: if it is down, the lead waits for the sweeper."""
    try:
        process_lead.apply_async(args=[str(lead_id)], retry=False)
    except Exception as error:  # noqa: BLE001 - any broker failure only delays processing
        logger.warning("could not enqueue processing of lead %s (%s); the sweeper will retry", lead_id, error)
        return False
    return True


@shared_task(acks_late=True)
def process_leads(lead_ids: list[str]) -> int:
    """Processes a batch of new leads (an import's) from one message, set-based: one message and
    ~25 queries per lead cost more than capturing the lead. A lead whose processing fails is handed
    to process_lead, which retries it and records a failure for good; the others go on. Returns how
    many leads did not fail."""
    try:
        outcome = processing.process_many(lead_ids)
    except Exception as error:  # noqa: BLE001 - the leads are retried one by one, each with its own retries
        logger.warning("processing a batch of %d leads failed (%s); retrying them one by one", len(lead_ids), error)
        for lead_id in lead_ids:
            enqueue_processing(lead_id)
        return 0
    for lead_id, error in outcome.failed.items():
        logger.warning("processing lead %s in a batch failed (%s); retrying it alone", lead_id, error)
        enqueue_processing(lead_id)
    return len(lead_ids) - len(outcome.failed)


def enqueue_processing_many(lead_ids) -> bool:
    """One message for many leads; if the broker is down they wait for the sweeper like any lead."""
    if not lead_ids:
        return True
    try:
        process_leads.apply_async(args=[[str(lead_id) for lead_id in lead_ids]], retry=False)
    except Exception as error:  # noqa: BLE001 - any broker failure only delays processing
        logger.warning("could not enqueue processing of %d leads (%s); the sweeper will retry", len(lead_ids), error)
        return False
    return True


@shared_task
def compact_stage_counts() -> int:
    from leads.services import stage_counts_compact

    return stage_counts_compact()


@shared_task
def sweep_pending_leads(stalled_seconds: int | None = None) -> int:
    """Re-enqueues leads stuck in a pending state (a lost message, a broker outage), oldest first."""
    stalled = timedelta(seconds=stalled_seconds if stalled_seconds is not None else settings.LEAD_PROCESSING_STALL_SECONDS)
    cutoff = timezone.now() - stalled
    lead_ids = list(
        Lead.objects.filter(processing_state__in=processing.PENDING_STATES, processing_state_at__lte=cutoff, deleted_at__isnull=True)
        .order_by("processing_state_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH_SIZE]
    )
    return sum(enqueue_processing(lead_id) for lead_id in lead_ids)


def failed_job_replay(*, job: FailedJob) -> bool:
    """Puts the lead back to received and enqueues it again; the job is marked replayed."""
    if job.replayed_at is not None:
        return False
    if job.lead_id is not None:
        Lead.objects.filter(pk=job.lead_id, processing_state="failed").update(
            processing_state="received", processing_state_at=timezone.now()
        )
    FailedJob.objects.filter(pk=job.pk).update(replayed_at=timezone.now())
    return enqueue_processing(job.args[0])


@shared_task(acks_late=True)
def run_import_job(job_id: str) -> str | None:
    from leads.import_jobs import import_job_run

    job = import_job_run(job_id=job_id)
    return job.status if job else None


@shared_task(acks_late=True)
def run_import_part(part_id: str) -> str | None:
    from leads.import_jobs import import_part_run

    part = import_part_run(part_id=part_id)
    return part.status if part else None


@shared_task
def sweep_import_jobs(stalled_seconds: int | None = None) -> int:
    """Re-sends import jobs and parts still queued after a while (a message lost with the broker),
    and queues again runs that stopped saving batches (a lost worker): they resume where they were."""
    from leads.import_jobs import import_runs_sweep

    queued_for = stalled_seconds if stalled_seconds is not None else settings.LEAD_PROCESSING_STALL_SECONDS
    stalled_for = stalled_seconds if stalled_seconds is not None else settings.IMPORT_STALL_SECONDS
    return import_runs_sweep(queued_for=timedelta(seconds=queued_for), stalled_for=timedelta(seconds=stalled_for))
