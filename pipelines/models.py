import uuid

from django.db import models
from django.utils import timezone

from workspaces.models import TenantModel


class Pipeline(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_default", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["workspace"], condition=models.Q(is_default=True), name="pipeline_one_default_per_workspace")
        ]
        db_table = "lead_pipelines"

    def __str__(self) -> str:
        return self.name


class StageType(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"


class Stage(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=80)
    position = models.PositiveIntegerField(default=0)
    color = models.CharField(max_length=7, default="#3B82F6")
    type = models.CharField(max_length=10, choices=StageType.choices, default=StageType.OPEN)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["pipeline", "position"]
        db_table = "lead_pipeline_stages"
        indexes = [models.Index(fields=["pipeline", "position"], name="stage_pipeline_position")]

    def __str__(self) -> str:
        return f"{self.pipeline.name} / {self.name}"
