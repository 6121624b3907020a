"""Pipeline services: the default pipeline exists once, and no change to pipelines or stages orphans a lead."""

import pytest
from django.core.exceptions import ValidationError

from leads.models import ActivityType, Lead, LeadActivity
from leads.services import lead_delete
from pipelines.models import Pipeline, Stage
from pipelines.services import StageSpec, pipeline_delete, pipeline_ensure_default, pipeline_update
from tests.leads.factories import make_lead
from tests.pipelines.factories import default_stage_names, make_pipeline
from workspaces.models import Workspace


def stages_of(pipeline) -> list[Stage]:
    return list(pipeline.stages.order_by("position"))


def spec(stage: Stage, **changes) -> StageSpec:
    return StageSpec(**{"id": str(stage.pk), "name": stage.name, "color": stage.color, "type": stage.type, **changes})


def assert_no_orphans():
    """Every lead sits in a stage of its own pipeline."""
    mismatched = [lead.pk for lead in Lead.objects.select_related("stage") if lead.stage.pipeline_id != lead.pipeline_id]
    assert mismatched == []


def moves_of(lead) -> list[LeadActivity]:
    return list(LeadActivity.objects.filter(lead=lead, type=ActivityType.STAGE_MOVED))


# pipeline_ensure_default


def test_ensure_default_creates_the_seed_pipeline_then_returns_it(db):
    workspace = Workspace.objects.create(slug="fresh", name="Fresh")

    pipeline, created = pipeline_ensure_default(workspace=workspace)
    again, created_again = pipeline_ensure_default(workspace=workspace)

    assert (created, created_again) == (True, False)
    assert again.pk == pipeline.pk
    assert pipeline.is_default and pipeline.workspace == workspace
    assert [s.name for s in stages_of(pipeline)] == default_stage_names()
    assert [s.type for s in stages_of(pipeline)] == ["open", "open", "open", "open", "won", "lost"]
    assert Pipeline.objects.filter(workspace=workspace).count() == 1
    assert Stage.objects.filter(workspace=workspace).count() == 6


def test_ensure_default_keeps_an_edited_default_and_ignores_other_pipelines(workspace):
    default = Pipeline.objects.get(workspace=workspace, is_default=True)
    make_pipeline(workspace)
    pipeline_update(pipeline=default, name="Inbound", stages=[spec(s) for s in stages_of(default)[:3]])

    pipeline, created = pipeline_ensure_default(workspace=workspace)

    assert not created
    assert pipeline.pk == default.pk
    assert [s.name for s in stages_of(pipeline)] == ["New", "Contacted", "Qualified"]
    assert Pipeline.objects.filter(workspace=workspace, is_default=True).count() == 1


def test_ensure_default_is_per_workspace(workspace, other_workspace):
    mine, _ = pipeline_ensure_default(workspace=workspace)
    theirs, _ = pipeline_ensure_default(workspace=other_workspace)
    assert mine.pk != theirs.pk
    assert theirs.workspace == other_workspace


# pipeline_update


def test_update_removing_stages_moves_live_and_deleted_leads(workspace):
    pipeline = Pipeline.objects.get(workspace=workspace, is_default=True)
    new, contacted, qualified, proposal, won, lost = stages_of(pipeline)
    live = make_lead(workspace, stage=contacted)
    deleted = make_lead(workspace, stage=proposal)
    lead_delete(lead=deleted, actor=None)
    staying = make_lead(workspace, stage=won)

    pipeline_update(pipeline=pipeline, stages=[spec(s) for s in (new, qualified, won, lost)], reassign={str(proposal.pk): str(lost.pk)})

    assert_no_orphans()
    assert not Stage.objects.filter(pk__in=[contacted.pk, proposal.pk]).exists()
    live.refresh_from_db()
    deleted.refresh_from_db()
    staying.refresh_from_db()
    assert live.stage_id == new.pk
    assert deleted.stage_id == lost.pk and deleted.deleted_at is not None
    assert staying.stage_id == won.pk
    assert [a.data["reason"] for a in moves_of(live)] == ["stage removed"]
    assert [a.data["toStage"] for a in moves_of(deleted)] == ["Lost"]
    assert moves_of(staying) == []


def test_update_does_not_touch_leads_of_other_workspaces(workspace, other_workspace):
    pipeline = Pipeline.objects.get(workspace=workspace, is_default=True)
    theirs = make_lead(other_workspace)
    before = (theirs.stage_id, theirs.updated_at)

    pipeline_update(pipeline=pipeline, stages=[spec(s) for s in stages_of(pipeline)[1:]])

    theirs.refresh_from_db()
    assert (theirs.stage_id, theirs.updated_at) == before
    assert moves_of(theirs) == []


def test_update_that_fails_validation_changes_nothing(workspace):
    pipeline = Pipeline.objects.get(workspace=workspace, is_default=True)
    new, contacted, *rest = stages_of(pipeline)
    lead = make_lead(workspace, stage=contacted)

    with pytest.raises(ValidationError) as error:
        pipeline_update(
            pipeline=pipeline,
            name="Renamed",
            stages=[spec(new, name="Fresh"), *[spec(s) for s in rest]],
            reassign={str(contacted.pk): str(contacted.pk)},
        )

    assert "reassign" in error.value.message_dict
    pipeline.refresh_from_db()
    assert pipeline.name == "Sales Pipeline"
    assert [s.name for s in stages_of(pipeline)] == default_stage_names()
    lead.refresh_from_db()
    assert lead.stage_id == contacted.pk
    assert moves_of(lead) == []


# pipeline_delete


def test_delete_moves_live_and_deleted_leads_to_the_default_pipeline(workspace):
    partners = make_pipeline(workspace)
    _, trial, signed = stages_of(partners)
    live = make_lead(workspace, stage=trial)
    deleted = make_lead(workspace, stage=signed)
    lead_delete(lead=deleted, actor=None)
    first = stages_of(Pipeline.objects.get(workspace=workspace, is_default=True))[0]

    moved = pipeline_delete(pipeline=partners)

    assert moved == 2
    assert not Pipeline.objects.filter(pk=partners.pk).exists()
    assert_no_orphans()
    for lead in (live, deleted):
        lead.refresh_from_db()
        assert (lead.pipeline_id, lead.stage_id) == (first.pipeline_id, first.pk)
        assert [a.data["reason"] for a in moves_of(lead)] == ["pipeline deleted"]


def test_delete_to_a_chosen_stage_of_another_pipeline(workspace):
    partners = make_pipeline(workspace, name="Partners")
    resellers = make_pipeline(workspace, name="Resellers", stage_names=("Applied", "Active"))
    active = stages_of(resellers)[1]
    lead = make_lead(workspace, stage=stages_of(partners)[0])

    assert pipeline_delete(pipeline=partners, move_to_stage=active) == 1

    lead.refresh_from_db()
    assert (lead.pipeline_id, lead.stage_id) == (resellers.pk, active.pk)
    assert_no_orphans()


def test_delete_recreates_a_missing_default_pipeline_for_the_leads(db):
    workspace = Workspace.objects.create(slug="legacy", name="Legacy")
    legacy = make_pipeline(workspace, name="Legacy")
    lead = make_lead(workspace, stage=stages_of(legacy)[1])

    assert pipeline_delete(pipeline=legacy) == 1

    default = Pipeline.objects.get(workspace=workspace)
    assert default.is_default
    lead.refresh_from_db()
    assert lead.stage == stages_of(default)[0]
    assert_no_orphans()


def test_delete_of_the_default_pipeline_is_refused(workspace):
    default = Pipeline.objects.get(workspace=workspace, is_default=True)
    lead = make_lead(workspace)
    with pytest.raises(ValidationError):
        pipeline_delete(pipeline=default)
    assert Pipeline.objects.filter(pk=default.pk).exists()
    lead.refresh_from_db()
    assert lead.pipeline_id == default.pk


def test_delete_into_its_own_stage_or_another_workspace_is_refused(workspace, other_workspace):
    partners = make_pipeline(workspace)
    lead = make_lead(workspace, stage=stages_of(partners)[0])
    theirs = stages_of(Pipeline.objects.get(workspace=other_workspace, is_default=True))[0]
    for target in (stages_of(partners)[2], theirs):
        with pytest.raises(ValidationError) as error:
            pipeline_delete(pipeline=partners, move_to_stage=target)
        assert "moveToStageId" in error.value.message_dict
    assert Pipeline.objects.filter(pk=partners.pk).exists()
    lead.refresh_from_db()
    assert lead.pipeline_id == partners.pk
    assert not Lead.objects.filter(workspace=other_workspace).exists()
