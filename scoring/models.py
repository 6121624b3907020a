"""A workspace's scoring model (versioned: an edit is a new version) and each lead's score history."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from workspaces.models import TenantModel, Workspace


class ScoringModel(TenantModel):
    """One version of a workspace's scoring configuration (seed 000's scoring.configure object)
    and its thresholds (setThresholds). Exactly one version is active."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.PositiveIntegerField()
    config = models.JSONField()
    thresholds = models.JSONField()
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "version"], name="scoringmodel_unique_version"),
            models.UniqueConstraint(fields=["workspace"], condition=models.Q(is_active=True), name="scoringmodel_one_active"),
        ]

    def __str__(self) -> str:
        return f"scoring model v{self.version}"


class ScoreChange(TenantModel):
    """One change of a lead's score: what it was, what it became, why, and under which model version."""

    id = models.BigAutoField(primary_key=True)
    # A rescoring writes a row for every lead whose score changed; rows of a workspace are looked up
    # only to delete it, so that lookup gets no index to keep up on every write.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Indexed by scorechange_lead_time, which starts with it.
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="score_changes", db_index=False)
    previous_score = models.IntegerField()
    new_score = models.IntegerField()
    previous_band = models.CharField(max_length=40, blank=True)
    new_band = models.CharField(max_length=40, blank=True)
    # The band entered when this change crossed a threshold; empty otherwise.
    threshold_crossed = models.CharField(max_length=40, blank=True)
    reason = models.CharField(max_length=200)
    model_version = models.PositiveIntegerField(null=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Band actions run once: the task claims the change by setting this.
    actions_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "score_changes"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lead", "-created_at"], name="scorechange_lead_time")]

    def __str__(self) -> str:
        return f"{self.previous_score} → {self.new_score} ({self.reason})"


class RescoreRange(TenantModel):
    """One keyset range of a workspace's rescoring run: its live leads with (created_at, id) keys in
    (after, last], rescored at `at` by one task, batch after batch. A run's ranges are disjoint and
    together cover every key, so each lead is rescored by exactly one task while the ranges run in
    parallel.

    The cursor (the last key done) and `changed` are written in each batch's own transaction, so a
    task that is retried or redelivered resumes after what it committed instead of redoing it."""

    id = models.BigAutoField(primary_key=True)
    run = models.UUIDField()
    reason = models.CharField(max_length=200)
    at = models.DateTimeField()
    # Each bound is a (created_at, id) key.
    after_created_at = models.DateTimeField(null=True)
    after = models.UUIDField(null=True)  # exclusive; None: from the first lead
    last_created_at = models.DateTimeField(null=True)
    last = models.UUIDField(null=True)  # inclusive; None: to the last lead, also one created meanwhile
    cursor_created_at = models.DateTimeField(null=True)
    cursor = models.UUIDField(null=True)
    changed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    done_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "rescore_ranges"
        indexes = [
            models.Index(fields=["run"], name="rescorerange_run"),
            models.Index(fields=["workspace", "id"], name="rescorerange_ws_id"),
        ]

    def __str__(self) -> str:
        return f"rescoring {self.run} ({self.after_key}, {self.last_key}]"

    @property
    def has_creation_keys(self) -> bool:
        """Every bound that is set has its created_at (a range of the id-order version has none)."""
        pairs = ((self.after_created_at, self.after), (self.last_created_at, self.last), (self.cursor_created_at, self.cursor))
        return all(created_at is not None for created_at, pk in pairs if pk is not None)

    @property
    def after_key(self) -> tuple | None:
        return (self.after_created_at, self.after) if self.after is not None else None

    @property
    def last_key(self) -> tuple | None:
        return (self.last_created_at, self.last) if self.last is not None else None

    @property
    def cursor_key(self) -> tuple | None:
        return (self.cursor_created_at, self.cursor) if self.cursor is not None else None
