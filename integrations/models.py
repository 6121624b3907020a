import secrets
import uuid

from django.db import models
from django.utils import timezone

from workspaces.models import TenantModel, hash_token

WEBHOOK_KEY_PREFIX = "whk_"


class DedupStrategy(models.TextChoices):
    """Seed 000's deduplication strategies for a submission matching an existing lead."""

    MERGE = "merge", "Merge (fill empty fields, union tags and custom fields)"
    REPLACE = "replace", "Replace (overwrite with the new values)"
    SKIP = "skip", "Skip (keep the original unchanged)"


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
    is_active = models.BooleanField(default=True)
    total_received = models.PositiveIntegerField(default=0)
    duplicates_received = models.PositiveIntegerField(default=0)
    discarded_received = models.PositiveIntegerField(default=0)
    last_received_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "lead_webhooks"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

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
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["webhook", "idempotency_key"], condition=~models.Q(idempotency_key=""), name="submission_idempotency_unique"
            )
        ]
        indexes = [models.Index(fields=["received_at"], name="submission_received")]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} · {self.received_at:%Y-%m-%d %H:%M:%S}"
