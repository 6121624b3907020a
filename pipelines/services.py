"""Writes to pipelines and stages. Leads are never orphaned: a removed stage's leads move first."""

import re
import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from pipelines.models import Pipeline, Stage, StageType
from workspaces.models import Workspace

MIN_STAGES = 2
MAX_STAGES = 30
HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
DEFAULT_COLOR = "#3B82F6"
PIPELINE_NAME_MAX = 120
STAGE_NAME_MAX = 80

DEFAULT_PIPELINE_NAME = "Sales Pipeline"
# Seed 001, "Default stages".
DEFAULT_STAGES: list[dict] = [
    {"name": "New", "color": "#3B82F6", "type": StageType.OPEN},
    {"name": "Contacted", "color": "#F59E0B", "type": StageType.OPEN},
    {"name": "Qualified", "color": "#8B5CF6", "type": StageType.OPEN},
    {"name": "Proposal", "color": "#EC4899", "type": StageType.OPEN},
    {"name": "Won", "color": "#22C55E", "type": StageType.WON},
    {"name": "Lost", "color": "#EF4444", "type": StageType.LOST},
]


@dataclass(frozen=True)
class StageSpec:
    """One stage as the caller wants it; `id` names an existing stage to keep, None adds one.

    A colour or type left as None keeps a kept stage's current value; a new stage gets the defaults.
    """

    name: str
    color: str | None = None
    type: str | None = None
    id: str | None = None


def _validate_stage_specs(stages: list[StageSpec]) -> None:
    if len(stages) < MIN_STAGES:
        raise ValidationError({"stages": f"A pipeline needs at least {MIN_STAGES} stages."})
    if len(stages) > MAX_STAGES:
        raise ValidationError({"stages": f"A pipeline has at most {MAX_STAGES} stages."})
    errors = {}
    for index, spec in enumerate(stages):
        if not spec.name.strip():
            errors[f"stages[{index}].name"] = "A stage needs a name."
        elif len(spec.name.strip()) > STAGE_NAME_MAX:
            errors[f"stages[{index}].name"] = f"A stage name has at most {STAGE_NAME_MAX} characters."
        if spec.color is not None and not HEX_COLOR.match(spec.color):
            errors[f"stages[{index}].color"] = "Use a hex colour such as #3B82F6."
        if spec.type is not None and spec.type not in StageType.values:
            errors[f"stages[{index}].type"] = f"Choose one of: {', '.join(StageType.values)}."
    if errors:
        raise ValidationError(errors)


def _validate_pipeline_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A pipeline needs a name."})
    if len(name) > PIPELINE_NAME_MAX:
        raise ValidationError({"name": f"A pipeline name has at most {PIPELINE_NAME_MAX} characters."})
    return name


@transaction.atomic
def pipeline_create(*, workspace: Workspace, name: str, stages: list[StageSpec], is_default: bool = False) -> Pipeline:
    name = _validate_pipeline_name(name)
    _validate_stage_specs(stages)
    pipeline = Pipeline.objects.create(workspace=workspace, name=name, is_default=is_default)
    Stage.objects.bulk_create(
        Stage(
            workspace=workspace,
            pipeline=pipeline,
            name=spec.name.strip(),
            color=(spec.color or DEFAULT_COLOR).upper(),
            type=spec.type or StageType.OPEN,
            position=position,
        )
        for position, spec in enumerate(stages)
    )
    return pipeline


def pipeline_ensure_default(*, workspace: Workspace) -> tuple[Pipeline, bool]:
    """Returns the workspace's default pipeline, creating it with the seed's 6 stages when missing."""
    existing = Pipeline.objects.filter(workspace=workspace, is_default=True).first()
    if existing is not None:
        return existing, False
    with transaction.atomic():
        # Two first visits at once: the partial unique index lets one win; the other reads it.
        Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
        existing = Pipeline.objects.filter(workspace=workspace, is_default=True).first()
        if existing is not None:
            return existing, False
        pipeline = pipeline_create(
            workspace=workspace,
            name=DEFAULT_PIPELINE_NAME,
            stages=[StageSpec(**stage) for stage in DEFAULT_STAGES],
            is_default=True,
        )
    return pipeline, True


def _move_leads_between_stages(*, workspace: Workspace, moves: dict[Stage, Stage], actor, reason: str) -> int:
    """Moves every live and deleted lead from each source stage to its target, set-based, with one
    activity per moved lead."""
    from leads.services import leads_move_stage_bulk

    moved = 0
    for source, target in moves.items():
        moved += leads_move_stage_bulk(workspace=workspace, source_stage=source, target_stage=target, actor=actor, reason=reason)
    return moved


def _canonical_id(value) -> str:
    """Stage ids as the database spells them, so `ABC…` and `abc…` name the same stage."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return str(value)


@transaction.atomic
def pipeline_update(
    *,
    pipeline: Pipeline,
    actor=None,
    name: str | None = None,
    stages: list[StageSpec] | None = None,
    reassign: dict[str, str] | None = None,
) -> Pipeline:
    """Renames the pipeline and/or replaces its stage list (order = list order).

    Stages absent from `stages` are removed; their leads move to `reassign[removed_id]` (a stage kept
    in this pipeline) or, by default, to the first stage of the new list.
    """
    pipeline = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    if name is not None:
        pipeline.name = _validate_pipeline_name(name)
        pipeline.save(update_fields=["name", "updated_at"])
    if stages is None:
        return pipeline

    _validate_stage_specs(stages)
    current = {str(stage.id): stage for stage in pipeline.stages.select_for_update()}
    kept_ids = [spec.id for spec in stages if spec.id]
    unknown = [stage_id for stage_id in kept_ids if stage_id not in current]
    if unknown:
        raise ValidationError({"stages": f"Stage {unknown[0]} is not a stage of this pipeline."})
    if len(set(kept_ids)) != len(kept_ids):
        raise ValidationError({"stages": "A stage appears twice."})

    saved: list[Stage] = []
    for position, spec in enumerate(stages):
        stage = current[spec.id] if spec.id else Stage(workspace=pipeline.workspace, pipeline=pipeline)
        stage.name, stage.position = spec.name.strip(), position
        stage.color = (spec.color or stage.color or DEFAULT_COLOR).upper()
        stage.type = spec.type or stage.type or StageType.OPEN
        saved.append(stage)
    Stage.objects.bulk_update([s for s in saved if not s._state.adding], ["name", "color", "type", "position"])
    Stage.objects.bulk_create([s for s in saved if s._state.adding])

    removed = [stage for stage_id, stage in current.items() if stage_id not in set(kept_ids)]
    reassign = {_canonical_id(key): _canonical_id(value) for key, value in (reassign or {}).items()}
    not_removed = sorted(key for key in reassign if key not in {str(stage.id) for stage in removed})
    if not_removed:
        raise ValidationError({"reassign": f"{not_removed[0]} is not a stage this change removes."})
    if removed:
        saved_by_id = {str(stage.id): stage for stage in saved}
        moves = {}
        for stage in removed:
            target_id = reassign.get(str(stage.id))
            if target_id is not None and target_id not in saved_by_id:
                raise ValidationError({"reassign": f"Leads of {stage.name} must move to a stage kept in this pipeline."})
            moves[stage] = saved_by_id[target_id] if target_id else saved[0]
        _move_leads_between_stages(workspace=pipeline.workspace, moves=moves, actor=actor, reason="stage removed")
        Stage.objects.filter(pk__in=[stage.pk for stage in removed]).delete()
    Pipeline.objects.filter(pk=pipeline.pk).update(updated_at=timezone.now())
    return pipeline


@transaction.atomic
def pipeline_delete(*, pipeline: Pipeline, actor=None, move_to_stage: Stage | None = None) -> int:
    """Deletes a non-default pipeline; its leads move to `move_to_stage` (in another pipeline of the
    workspace) or to the first stage of the default pipeline. Returns how many leads moved."""
    pipeline = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    if pipeline.is_default:
        raise ValidationError({"pipeline": "The default pipeline cannot be deleted."})
    if move_to_stage is None:
        default, _ = pipeline_ensure_default(workspace=pipeline.workspace)
        move_to_stage = default.stages.order_by("position").first()
    elif move_to_stage.pipeline_id == pipeline.pk or move_to_stage.workspace_id != pipeline.workspace_id:
        raise ValidationError({"moveToStageId": "Choose a stage of another pipeline of this workspace."})
    moved = _move_leads_between_stages(
        workspace=pipeline.workspace,
        moves={stage: move_to_stage for stage in pipeline.stages.all()},
        actor=actor,
        reason="pipeline deleted",
    )
    pipeline.delete()
    return moved
