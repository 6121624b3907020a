from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from integrations import outbound
from integrations.models import WebhookSubmission

PURGE_BATCH_SIZE = 5000


@shared_task
def purge_expired_submissions() -> int:
    """Deletes raw submissions (and so their idempotency keys) past the retention period, in
    bounded batches from a fixed cutoff."""
    cutoff = timezone.now() - timedelta(days=max(settings.WEBHOOK_SUBMISSION_RETENTION_DAYS, 1))
    deleted = 0
    while True:
        ids = list(WebhookSubmission.objects.filter(received_at__lt=cutoff).values_list("pk", flat=True)[:PURGE_BATCH_SIZE])
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
