"""Outbound webhooks: our events POSTed to partners' URLs, signed with HMAC-SHA256 and retried.

Publishing writes one pending OutboundDelivery per matching webhook in the caller's transaction and
enqueues them after commit. Every pending row is also due at `next_attempt_at`, and the beat task
`deliver_due_outbound` claims due rows (SKIP LOCKED), so a broker outage or a lost message only
delays a delivery. A claim moves `next_attempt_at` past the request's longest run (a lease): a
worker that dies mid-request leaves the row to be tried again once the lease ends.

A receiver verifies a request with `verify_signature` (see README, "Outbound webhooks").
"""

import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from datetime import datetime, timedelta

import requests
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from integrations.models import DeliveryStatus, OutboundDelivery, OutboundWebhook, validate_outbound_url
from workspaces.models import Workspace

logger = logging.getLogger(__name__)

# The events a webhook may subscribe to; a feature that publishes a new event type adds it here.
OUTBOUND_EVENT_TYPES = ("lead.score_changed", "lead.segment_entered", "lead.segment_exited")
# Sent only by "test" to the webhook being tested, whatever its event types.
TEST_EVENT_TYPE = "webhook.test"

USER_AGENT = "LeadsManager-Webhooks/1"
CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 10
MAX_ATTEMPTS = 8
# Wait after the n-th failed attempt; later attempts wait as long as the last entry. A random
# 0-20 % is added so endpoints recovering from an outage are not hit by every retry at once.
RETRY_DELAYS = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(hours=1), timedelta(hours=6))
RETRY_JITTER = 0.2
# Longer than any one request takes (3 s to connect, 10 s between bytes, a capped body).
CLAIM_LEASE = timedelta(minutes=2)
DUE_BATCH_SIZE = 50
RESPONSE_EXCERPT_BYTES = 500
MAX_EVENT_TYPES = 50


# Signing


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The X-Leadsmgr-Signature value: `sha256=` + hex HMAC-SHA256 of `<timestamp>.<raw body>`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str, timestamp: int | str, body: bytes | str, header: str, *, tolerance_seconds: int | None = None, now: float | None = None
) -> bool:
    """Whether `header` (X-Leadsmgr-Signature) signs `timestamp` (X-Leadsmgr-Timestamp) and the raw
    `body` with `secret`. With `tolerance_seconds`, a timestamp further than that from `now` also
    fails, which stops a captured request being replayed later. Several comma-separated signatures
    are accepted if any one matches."""
    if isinstance(body, str):
        body = body.encode()
    timestamp = str(timestamp).strip()
    if not timestamp.isdigit() or not header:
        return False
    if tolerance_seconds is not None and abs((time.time() if now is None else now) - int(timestamp)) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate.strip()) for candidate in header.split(","))


# Managing webhooks


def _validated_settings(data: dict) -> dict:
    clean = {}
    if "name" in data:
        name = (data["name"] or "").strip()
        if not name or len(name) > 120:
            raise ValidationError({"name": "A webhook needs a name of 1 to 120 characters."})
        clean["name"] = name
    if "url" in data:
        url = (data["url"] or "").strip()
        try:
            validate_outbound_url(url)
        except ValidationError:
            raise ValidationError({"url": "Enter a full http:// or https:// URL."}) from None
        if len(url) > 2000:
            raise ValidationError({"url": "At most 2000 characters."})
        clean["url"] = url
    if "event_types" in data:
        clean["event_types"] = _validated_event_types(data["event_types"])
    if "is_active" in data:
        clean["is_active"] = bool(data["is_active"])
    return clean


def _validated_event_types(value) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError({"eventTypes": "A list of event type names; empty for every event."})
    if len(value) > MAX_EVENT_TYPES:
        raise ValidationError({"eventTypes": f"At most {MAX_EVENT_TYPES} event types."})
    chosen: list[str] = []
    for item in value:
        name = item.strip()
        if name not in OUTBOUND_EVENT_TYPES:
            raise ValidationError({"eventTypes": f"Unknown event type {name!r}; choose from {', '.join(OUTBOUND_EVENT_TYPES)}."})
        if name not in chosen:
            chosen.append(name)
    return chosen


def outbound_webhook_create(
    *, workspace: Workspace, name: str, url: str, event_types: list[str] | None = None, is_active: bool = True
) -> tuple[OutboundWebhook, str]:
    """Returns the webhook and its signing secret, which the API shows only in this answer."""
    clean = _validated_settings({"name": name, "url": url, "event_types": event_types, "is_active": is_active})
    webhook = OutboundWebhook.objects.create(workspace=workspace, secret=OutboundWebhook.generate_secret(), **clean)
    return webhook, webhook.secret


def outbound_webhook_update(*, webhook: OutboundWebhook, **settings_data) -> OutboundWebhook:
    clean = _validated_settings(settings_data)
    for key, value in clean.items():
        setattr(webhook, key, value)
    if clean:
        webhook.save(update_fields=list(clean))
    return webhook


def outbound_webhook_delete(*, webhook: OutboundWebhook) -> None:
    """Its deliveries go with it, sent or not."""
    webhook.delete()


# Publishing


def outbound_event_publish(*, workspace: Workspace, event_type: str, payload: dict) -> int:
    """Queues `payload` for every active webhook of the workspace that wants `event_type`; returns
    how many deliveries were created. They are written in the current transaction and sent after
    it commits (nothing is sent for a rolled-back change)."""
    if event_type not in OUTBOUND_EVENT_TYPES:
        raise ValueError(f"Unknown outbound event type {event_type!r}; add it to OUTBOUND_EVENT_TYPES.")
    webhooks = [webhook for webhook in OutboundWebhook.objects.filter(workspace=workspace, is_active=True) if webhook.wants(event_type)]
    return len(_create_deliveries(webhooks, event_type, payload))


def outbound_webhook_test(*, webhook: OutboundWebhook) -> OutboundDelivery:
    """Sends a `webhook.test` event to this webhook only, whatever event types it wants."""
    if not webhook.is_active:
        raise ValidationError({"isActive": "The webhook is inactive; activate it to send a test."})
    payload = {"message": "A test event from Leads Manager.", "webhookId": str(webhook.pk), "webhookName": webhook.name}
    return _create_deliveries([webhook], TEST_EVENT_TYPE, payload)[0]


def _create_deliveries(webhooks: list[OutboundWebhook], event_type: str, payload: dict) -> list[OutboundDelivery]:
    if not webhooks:
        return []
    now = timezone.now()
    event_id = uuid.uuid4()
    with transaction.atomic():
        deliveries = OutboundDelivery.objects.bulk_create(
            [
                OutboundDelivery(
                    workspace_id=webhook.workspace_id,
                    webhook=webhook,
                    event_type=event_type,
                    event_id=event_id,
                    payload=payload,
                    next_attempt_at=now,
                    created_at=now,
                )
                for webhook in webhooks
            ]
        )
        ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: enqueue_deliveries(ids))
    return deliveries


def enqueue_deliveries(delivery_ids: list[int]) -> int:
    """Sends one task per delivery without retrying the broker: if it is down, the rows stay due and
    the beat runner sends them. Returns how many were enqueued."""
    from integrations.tasks import deliver_outbound

    enqueued = 0
    for delivery_id in delivery_ids:
        try:
            deliver_outbound.apply_async(args=[delivery_id], retry=False)
        except Exception as error:  # noqa: BLE001 - any broker failure only delays delivery
            logger.warning(
                "could not enqueue %d outbound deliveries (%s); the beat runner will send them", len(delivery_ids) - enqueued, error
            )
            break
        enqueued += 1
    return enqueued


def outbound_delivery_retry(*, delivery: OutboundDelivery) -> bool:
    """Makes a pending or failed delivery due now ("retry now" in admin) and enqueues it. It gets one
    more attempt even past MAX_ATTEMPTS. Returns False for a delivered one, which is left alone."""
    with transaction.atomic():
        changed = OutboundDelivery.objects.filter(
            pk=delivery.pk, status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED], webhook__is_active=True
        ).update(status=DeliveryStatus.PENDING, next_attempt_at=timezone.now())
        if changed:
            transaction.on_commit(lambda: enqueue_deliveries([delivery.pk]))
    return bool(changed)


# Delivering


def deliver(delivery_id: int) -> str | None:
    """One attempt at a due pending delivery. Returns its status afterwards, or None when it was not
    due or another worker holds it (the call is then a no-op, so a repeated task is harmless)."""
    claimed = _claim(OutboundDelivery.objects.filter(pk=delivery_id), timezone.now())
    return None if claimed is None else _attempt(claimed)


def deliver_due(*, batch_size: int | None = None, now: datetime | None = None) -> int:
    """Attempts up to `batch_size` (DUE_BATCH_SIZE) deliveries due at `now`, oldest first, claiming
    each with SKIP LOCKED so concurrent runners share the work. Returns how many were attempted."""
    cutoff = now or timezone.now()
    limit = batch_size or DUE_BATCH_SIZE
    attempted = 0
    while attempted < limit:
        claimed = _claim(OutboundDelivery.objects.all(), cutoff)
        if claimed is None:
            break
        _attempt(claimed)
        attempted += 1
    return attempted


def _claim(candidates, cutoff: datetime) -> OutboundDelivery | None:
    """Locks the oldest due pending row among `candidates` and takes it for one attempt: counts the
    attempt and moves `next_attempt_at` past the lease, so no other runner finds it due meanwhile.
    A row whose webhook was deactivated is failed instead, unsent."""
    while True:
        with transaction.atomic():
            delivery = (
                candidates.select_for_update(skip_locked=True, of=("self",))
                .select_related("webhook")
                .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=cutoff)
                .order_by("next_attempt_at", "pk")
                .first()
            )
            if delivery is None:
                return None
            if not delivery.webhook.is_active:
                OutboundDelivery.objects.filter(pk=delivery.pk).update(
                    status=DeliveryStatus.FAILED, next_attempt_at=None, last_error="The webhook is inactive; not sent."
                )
                continue
            delivery.attempts += 1
            delivery.next_attempt_at = timezone.now() + CLAIM_LEASE
            OutboundDelivery.objects.filter(pk=delivery.pk).update(attempts=delivery.attempts, next_attempt_at=delivery.next_attempt_at)
            return delivery


def delivery_body(delivery: OutboundDelivery) -> bytes:
    """The JSON sent, the same bytes on every attempt."""
    envelope = {
        "id": str(delivery.event_id),
        "type": delivery.event_type,
        "createdAt": delivery.created_at.isoformat().replace("+00:00", "Z"),
        "workspaceId": str(delivery.workspace_id),
        "data": delivery.payload,
    }
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def _attempt(delivery: OutboundDelivery) -> str:
    webhook = delivery.webhook
    body = delivery_body(delivery)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Leadsmgr-Event": delivery.event_type,
        "X-Leadsmgr-Delivery": str(delivery.event_id),
        "X-Leadsmgr-Timestamp": str(timestamp),
        "X-Leadsmgr-Signature": sign(webhook.secret, timestamp, body),
    }
    code, error, last_status = None, "", ""
    try:
        # Redirects are not followed: a POST must not turn into a GET somewhere else.
        with requests.post(
            webhook.url,
            data=body,
            headers=headers,
            timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
            allow_redirects=False,
            stream=True,
        ) as response:
            code = response.status_code
            last_status = str(code)
            if not 200 <= code < 300:
                excerpt = response.raw.read(RESPONSE_EXCERPT_BYTES, decode_content=True) or b""
                error = f"HTTP {code}: {excerpt.decode('utf-8', 'replace')}".strip()
    except requests.Timeout as exc:
        error, last_status = f"Timeout: {exc}", "timeout"
    except requests.ConnectionError as exc:
        error, last_status = f"Connection error: {exc}", "connection_error"
    except Exception as exc:  # counted as a failed attempt, so a row that always fails cannot be retried forever
        logger.exception("outbound delivery %s could not be sent", delivery.pk)
        error, last_status = f"{exc.__class__.__name__}: {exc}", "error"
    return _record(delivery, code, error[:2000], last_status)


def _record(delivery: OutboundDelivery, code: int | None, error: str, last_status: str) -> str:
    now = timezone.now()
    gone = code == 410
    if code is not None and 200 <= code < 300:
        changes = {"status": DeliveryStatus.DELIVERED, "delivered_at": now, "next_attempt_at": None}
    elif gone or delivery.attempts >= MAX_ATTEMPTS:
        changes = {"status": DeliveryStatus.FAILED, "next_attempt_at": None}
    else:
        changes = {"status": DeliveryStatus.PENDING, "next_attempt_at": now + retry_delay(delivery.attempts)}
    if gone:
        error = f"{error} (the receiver answered 410 Gone: the webhook was deactivated)"
    with transaction.atomic():
        # Only the holder of this attempt records it (a lease that ran out may have let another in).
        recorded = OutboundDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts).update(
            last_response_code=code, last_error=error, **changes
        )
        if recorded:
            webhook_changes = {"last_delivery_at": now, "last_status": last_status}
            if gone:
                webhook_changes["is_active"] = False
            OutboundWebhook.objects.filter(pk=delivery.webhook_id).update(**webhook_changes)
    if gone:
        logger.info("outbound webhook %s answered 410 Gone and was deactivated", delivery.webhook_id)
    return changes["status"]


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after `attempts` failed attempts: the schedule, plus up to 20 % jitter."""
    base = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    return base * (1 + random.uniform(0, RETRY_JITTER))
