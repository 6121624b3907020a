import secrets
import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone

from workspaces.models import TenantModel, hash_token

WEBHOOK_KEY_PREFIX = "whk_"


class DedupStrategy(models.TextChoices):
    """Seed 000's deduplication strategies for a submission matching an existing lead."""

    MERGE = "merge", "Merge (fill empty fields, union tags and custom fields)"
    REPLACE = "replace", "Replace (overwrite with the new values)"
    SKIP = "skip", "Skip (keep the original unchanged)"


class ResponseMode(models.TextChoices):
    """When a webhook answers. `sync`: after the lead is written, with its id (about 25 ms). `queued`:
    as soon as the submission is checked and stored, 202 with a submission id; a worker captures
    queued submissions in batches (for high-volume sources; a request may also ask for it with
    `Prefer: respond-async`)."""

    SYNC = "sync", "Answer with the lead id (after the lead is written)"
    QUEUED = "queued", "Answer 202 at once; capture in the background (high volume)"


class LeadWebhook(TenantModel):
    """An inbound lead endpoint: POST /webhooks/leads/<key>. The key is its only credential and is
    stored hashed; regenerating it makes the old URL fail at once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_hint = models.CharField(max_length=16, editable=False)
    # Incoming field name → core field (`job_title` → `title`); everything unmapped is a custom field.
    field_mapping = models.JSONField(default=dict, blank=True)
    pipeline = models.ForeignKey("pipelines.Pipeline", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    stage = models.ForeignKey("pipelines.Stage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    dedup_strategy = models.CharField(max_length=10, choices=DedupStrategy.choices, default=DedupStrategy.MERGE)
    # A hidden form field people never fill; bots do. Empty disables the check.
    honeypot_field = models.CharField(max_length=60, blank=True, default="_hp")
    response_mode = models.CharField(max_length=6, choices=ResponseMode.choices, default=ResponseMode.SYNC)
    is_active = models.BooleanField(default=True)
    total_received = models.PositiveIntegerField(default=0)
    duplicates_received = models.PositiveIntegerField(default=0)
    discarded_received = models.PositiveIntegerField(default=0)
    last_received_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Moves on every save (not on the counters' updates): a web process keeps the webhook in memory,
    # and storing a queued submission checks it still has this version (integrations.services).
    version = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        db_table = "lead_webhooks"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if self._state.adding:
            return super().save(*args, **kwargs)
        # Counted in the database, so two edits saved at once still give two versions.
        self.version = models.F("version") + 1
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "version"}
        super().save(*args, **kwargs)
        self.refresh_from_db(fields=["version"])

    @staticmethod
    def generate_key() -> str:
        return WEBHOOK_KEY_PREFIX + secrets.token_urlsafe(24)

    def set_key(self, raw: str) -> None:
        self.key_hash = hash_token(raw)
        self.key_hint = raw[:10]

    @property
    def duplicate_rate(self) -> float:
        return self.duplicates_received / self.total_received if self.total_received else 0.0


class SubmissionOutcome(models.TextChoices):
    CREATED = "created", "Created"
    MERGED = "merged", "Merged"
    DUPLICATE = "duplicate", "Duplicate"
    DISCARDED = "discarded", "Discarded (honeypot)"
    REJECTED = "rejected", "Rejected"
    QUEUED = "queued", "Queued (capture pending)"


class WebhookSubmission(TenantModel):
    """Every accepted or discarded submission as received, with the answer given: the audit trail
    and the idempotency record (a replay with the same Idempotency-Key gets this answer again)."""

    id = models.BigAutoField(primary_key=True)
    webhook = models.ForeignKey(LeadWebhook, null=True, on_delete=models.SET_NULL, related_name="submissions")
    idempotency_key = models.CharField(max_length=200, blank=True)
    body_sha256 = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    outcome = models.CharField(max_length=12, choices=SubmissionOutcome.choices)
    response = models.JSONField(default=dict)
    status_code = models.PositiveSmallIntegerField(default=200)
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="submissions")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    # The Referer of a form post: its landing page (read again when a queued submission is captured).
    page_url = models.CharField(max_length=1000, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["webhook", "idempotency_key"], condition=~models.Q(idempotency_key=""), name="submission_idempotency_unique"
            )
        ]
        indexes = [
            models.Index(fields=["received_at"], name="submission_received"),
            # The capture worker's queue: small, since rows leave it as they are captured.
            models.Index(fields=["workspace", "id"], condition=models.Q(outcome="queued"), name="submission_queued"),
        ]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} · {self.received_at:%Y-%m-%d %H:%M:%S}"


OUTBOUND_SECRET_PREFIX = "whsec_"
validate_outbound_url = URLValidator(schemes=["http", "https"])


class OutboundWebhook(TenantModel):
    """A partner's URL that receives our events (score changes, segment entries, …) as signed JSON
    POSTs. The secret is stored as is: it is needed to sign every request."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    url = models.URLField(max_length=2000, validators=[validate_outbound_url])
    secret = models.CharField(max_length=80, editable=False)
    # The event types it wants, e.g. ["lead.score_changed"]; empty means every event.
    event_types = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    # The result of the latest attempt: its HTTP status code, "timeout" or "connection_error".
    last_status = models.CharField(max_length=40, blank=True)

    class Meta:
        db_table = "outbound_webhooks"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def generate_secret() -> str:
        return OUTBOUND_SECRET_PREFIX + secrets.token_urlsafe(32)

    @property
    def secret_hint(self) -> str:
        return self.secret[:10]

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class OutboundDelivery(TenantModel):
    """One event for one webhook, and the state of sending it. A pending row is due at
    next_attempt_at; the beat runner claims due rows, so a lost broker message only delays it."""

    id = models.BigAutoField(primary_key=True)
    webhook = models.ForeignKey(OutboundWebhook, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=80)
    # Sent as X-Leadsmgr-Delivery and kept across retries, so a receiver can drop repeats.
    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    # Publishers may pass ids, times and decimals as they are: they are stored as JSON strings.
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "outbound_deliveries"
        verbose_name_plural = "outbound deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["webhook", "event_id"], name="outbound_delivery_event_unique")]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], condition=models.Q(status="pending"), name="outbound_delivery_due"),
            models.Index(fields=["webhook", "-created_at"], name="outbound_delivery_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.webhook_id} · {self.get_status_display()}"
