from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from integrations import outbound, services
from integrations.models import WebhookSubmission
from leadsmgr.queueing import drain_coalesced

PURGE_BATCH_SIZE = 5000


@shared_task(
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
)
def capture_queued_submissions(workspace_id: str) -> int:
    """Captures the workspace's queued webhook submissions in batches. One message drains what
    many requests queued (they send none while it waits); idempotent: captured rows leave the queue."""
    return drain_coalesced(
        capture_queued_submissions,
        flag=services.queued_capture_flag(workspace_id),
        args=(workspace_id,),
        drain=lambda: (services.queued_submissions_capture(workspace_id=workspace_id), True),
    )


@shared_task
def sweep_queued_submissions(stalled_seconds: int = 30) -> int:
    """Beat (every minute): re-sends the capture of submissions queued longer than `stalled_seconds`
    (a lost message, a broker outage while the request was answered)."""
    older_than = timezone.now() - timedelta(seconds=stalled_seconds)
    return sum(services.enqueue_queued_capture(workspace_id) for workspace_id in services.queued_workspaces(older_than=older_than))


@shared_task
def purge_expired_submissions() -> int:
    """Deletes raw submissions (and so their idempotency keys) past the retention period, in
    bounded batches from a fixed cutoff."""
    cutoff = timezone.now() - timedelta(days=max(settings.WEBHOOK_SUBMISSION_RETENTION_DAYS, 1))
    deleted = 0
    while True:
        # A submission still queued is kept until captured: it holds a lead nobody has yet.
        expired = WebhookSubmission.objects.filter(received_at__lt=cutoff).exclude(outcome="queued")
        ids = list(expired.values_list("pk", flat=True)[:PURGE_BATCH_SIZE])
        if not ids:
            return deleted
        deleted += WebhookSubmission.objects.filter(pk__in=ids).delete()[0]


@shared_task(acks_late=True)
def deliver_outbound(delivery_id: int) -> str | None:
    """One attempt at one outbound delivery, enqueued after the commit that created it. A no-op
    when the row is not due or another worker holds it; failures are rescheduled in the row."""
    return outbound.deliver(delivery_id)


@shared_task
def deliver_due_outbound() -> int:
    """Beat (every 30 s): sends due outbound deliveries (retries, and any whose message was lost)."""
    return outbound.deliver_due()
