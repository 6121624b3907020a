"""Dynamic segments: criteria compiled to one SQL query, stored membership, enter/exit history."""

import uuid

from django.db import models
from django.utils import timezone

from workspaces.models import TenantModel


class RefreshInterval(models.TextChoices):
    EVERY_5_MINUTES = "5m", "Every 5 minutes"
    EVERY_15_MINUTES = "15m", "Every 15 minutes"
    HOURLY = "hourly", "Hourly"
    DAILY = "daily", "Daily"


REFRESH_MINUTES = {"5m": 5, "15m": 15, "hourly": 60, "daily": 1440}


def default_automation() -> dict:
    return {"onEnter": [], "onExit": []}


class Segment(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=160)
    description = models.TextField(blank=True)
    criteria = models.JSONField()
    refresh_interval = models.CharField(max_length=10, choices=RefreshInterval.choices, default=RefreshInterval.HOURLY)
    # Seed 000's setAutomation: {"onEnter": [actions], "onExit": [actions]}.
    automation = models.JSONField(default=default_automation, blank=True)
    member_count = models.PositiveIntegerField(default=0)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    next_refresh_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["next_refresh_at"], name="segment_next_refresh")]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="+")
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="segment_memberships")
    entered_at = models.DateTimeField()

    class Meta:
        db_table = "segment_memberships"
        # (segment, lead) is unique; a lead's memberships are found by the lead foreign key's own index.
        constraints = [models.UniqueConstraint(fields=["segment", "lead"], name="segmentmembership_unique")]

    def __str__(self) -> str:
        return f"{self.lead_id} in {self.segment_id}"


class SegmentEventKind(models.TextChoices):
    ENTERED = "entered", "Entered"
    EXITED = "exited", "Exited"


class SegmentEvent(TenantModel):
    """A lead entering or leaving a segment, with when and what caused it."""

    id = models.BigAutoField(primary_key=True)
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="events")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="segment_events")
    kind = models.CharField(max_length=10, choices=SegmentEventKind.choices)
    reason = models.CharField(max_length=120, blank=True)
    at = models.DateTimeField(default=timezone.now)
    automations_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "segment_events"
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["segment", "-at"], name="segmentevent_segment_time"),
            models.Index(fields=["lead", "-at"], name="segmentevent_lead_time"),
            models.Index(fields=["at"], condition=models.Q(automations_started_at__isnull=True), name="segmentevent_automations_due"),
        ]

    def __str__(self) -> str:
        return f"{self.lead_id} {self.kind} {self.segment_id}"
