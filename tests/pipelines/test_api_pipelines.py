"""The pipelines endpoints of the partner API (/api/v1/lead-pipelines), as a partner's integration would call them."""

import re
import uuid

import pytest
from rest_framework.test import APIClient

from leads.models import ActivityType, Lead, LeadActivity
from leads.services import lead_delete
from pipelines.models import Pipeline, Stage
from tests.leads.factories import make_lead
from tests.pipelines.factories import default_stage_names, make_pipeline
from workspaces.models import Role, Workspace

URL = "/api/v1/lead-pipelines"

SEED_STAGES = [
    ("New", "#3B82F6", "open"),
    ("Contacted", "#F59E0B", "open"),
    ("Qualified", "#8B5CF6", "open"),
    ("Proposal", "#EC4899", "open"),
    ("Won", "#22C55E", "won"),
    ("Lost", "#EF4444", "lost"),
]


def detail_url(pipeline) -> str:
    return f"{URL}/{pipeline.pk}"


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "fields"} <= set(body["error"]), body
    return body["error"]


def names_field(fields: dict, name: str) -> bool:
    """True when the error names `name`; a stage's field may be spelt stages[1].color or stages.1.color
    (the spelling itself is checked once, in test_stage_errors_spell_the_field_as_the_service_does)."""
    return name in fields or re.sub(r"\[(\d+)\]", r".\1", name) in fields


def stage_rows(body) -> list[tuple]:
    return [(stage["name"], stage["color"], stage["type"]) for stage in body["stages"]]


def default_pipeline(workspace) -> Pipeline:
    return Pipeline.objects.get(workspace=workspace, is_default=True)


def stages_of(pipeline) -> list[Stage]:
    return list(pipeline.stages.order_by("position"))


def as_input(stage: Stage, **changes) -> dict:
    return {"id": str(stage.pk), "name": stage.name, "color": stage.color, "type": stage.type, **changes}


def stage_moves(lead) -> list[LeadActivity]:
    return list(LeadActivity.objects.filter(lead=lead, type=ActivityType.STAGE_MOVED))


@pytest.fixture
def bare_workspace(db):
    """A workspace that has no pipeline yet (one created before pipelines existed, say)."""
    return Workspace.objects.create(slug="bare", name="Bare")


# List


def test_list_returns_pipelines_with_stages_in_order(api, workspace):
    partners = make_pipeline(workspace, name="Partners", stage_names=("Intro", "Trial", "Signed"))
    response = api.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    default, other = body["results"]
    assert default["isDefault"] is True and default["name"] == "Sales Pipeline"
    assert stage_rows(default) == SEED_STAGES
    assert [stage["position"] for stage in default["stages"]] == [0, 1, 2, 3, 4, 5]
    assert other["id"] == str(partners.pk) and other["isDefault"] is False
    assert [stage["name"] for stage in other["stages"]] == ["Intro", "Trial", "Signed"]


def test_list_shows_only_the_callers_workspace(api, other_workspace):
    make_pipeline(other_workspace, name="Their Secret Pipeline")
    body = api.get(URL).json()
    assert [p["name"] for p in body["results"]] == ["Sales Pipeline"]
    assert str(default_pipeline(other_workspace).pk) not in {p["id"] for p in body["results"]}


def test_list_needs_a_token():
    response = APIClient().get(URL)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


# Ensure default


def test_ensure_default_creates_the_seed_stages_once(api_as, bare_workspace):
    client = api_as(Role.VIEWER, bare_workspace)

    first = client.post(f"{URL}/ensure-default")
    assert first.status_code == 201, first.content
    assert first.json()["isDefault"] is True
    assert stage_rows(first.json()) == SEED_STAGES

    second = client.post(f"{URL}/ensure-default")
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert [s["id"] for s in second.json()["stages"]] == [s["id"] for s in first.json()["stages"]]
    assert Pipeline.objects.filter(workspace=bare_workspace).count() == 1
    assert Stage.objects.filter(workspace=bare_workspace).count() == 6


def test_ensure_default_returns_the_existing_default_with_its_changes(api, workspace):
    pipeline = default_pipeline(workspace)
    pipeline.name = "Renamed"
    pipeline.save()
    response = api.post(f"{URL}/ensure-default")
    assert response.status_code == 200
    assert response.json()["id"] == str(pipeline.pk)
    assert response.json()["name"] == "Renamed"
    assert Pipeline.objects.filter(workspace=workspace).count() == 1


# Create


def test_create_with_stages(api, workspace):
    response = api.post(
        URL,
        {
            "name": "  Partners  ",
            "stages": [
                {"name": "Intro", "color": "#10b981", "type": "open"},
                {"name": "Signed", "color": "#22C55E", "type": "won"},
                {"name": "Dropped", "type": "lost"},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Partners"
    assert body["isDefault"] is False
    assert stage_rows(body) == [("Intro", "#10B981", "open"), ("Signed", "#22C55E", "won"), ("Dropped", "#3B82F6", "lost")]
    pipeline = Pipeline.objects.get(pk=body["id"])
    assert pipeline.workspace == workspace
    assert [s.name for s in stages_of(pipeline)] == ["Intro", "Signed", "Dropped"]
    assert default_pipeline(workspace).pk != pipeline.pk


def test_create_without_stages_gets_the_default_stages(api, workspace):
    response = api.post(URL, {"name": "Enterprise"}, format="json")
    assert response.status_code == 201, response.content
    assert stage_rows(response.json()) == SEED_STAGES
    assert Stage.objects.filter(pipeline_id=response.json()["id"]).count() == 6


def test_create_ignores_server_owned_fields(api, workspace):
    default = default_pipeline(workspace)
    response = api.post(URL, {"name": "Sneaky", "id": str(default.pk), "isDefault": True}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["id"] != str(default.pk)
    assert response.json()["isDefault"] is False
    assert list(Pipeline.objects.filter(workspace=workspace, is_default=True)) == [default]


@pytest.mark.parametrize("stages", [[], [{"name": "Only"}]])
def test_create_with_fewer_than_two_stages_is_400_naming_stages(api, workspace, stages):
    response = api.post(URL, {"name": "Tiny", "stages": stages}, format="json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "validation_error"
    assert "stages" in error_of(response)["fields"]
    assert not Pipeline.objects.filter(name="Tiny").exists()


@pytest.mark.parametrize(
    ("stage", "field"),
    [
        ({"name": "B", "color": "blue"}, "stages[1].color"),
        ({"name": "B", "color": "#12345"}, "stages[1].color"),
        ({"name": "B", "color": "#GGGGGG"}, "stages[1].color"),
        ({"name": "B", "type": "closed"}, "stages[1].type"),
        ({"name": ""}, "stages[1].name"),
    ],
)
def test_create_with_a_bad_stage_is_400_naming_the_field(api, stage, field):
    response = api.post(URL, {"name": "Bad", "stages": [{"name": "A"}, stage]}, format="json")
    assert response.status_code == 400
    assert names_field(error_of(response)["fields"], field), error_of(response)
    assert not Pipeline.objects.filter(name="Bad").exists()


def test_stage_errors_spell_the_field_as_the_service_does(api, workspace):
    """pipelines.services names a bad stage field `stages[1].color` (and leadsmgr.api.exceptions._flatten
    promises `field.sub[0]`), so a client maps every error of the same field to one key."""
    response = api.post(URL, {"name": "Bad", "stages": [{"name": "A"}, {"name": "B", "color": "blue", "shade": 1}]}, format="json")
    assert response.status_code == 400
    assert set(error_of(response)["fields"]) >= {"stages[1].color", "stages[1].shade"}, error_of(response)


def test_create_without_a_name_is_400_naming_name(api):
    response = api.post(URL, {"stages": [{"name": "A"}, {"name": "B"}]}, format="json")
    assert response.status_code == 400
    assert "name" in error_of(response)["fields"]


# Update: stages


def test_patch_renames_the_pipeline(api, workspace):
    pipeline = default_pipeline(workspace)
    response = api.patch(detail_url(pipeline), {"name": "Inbound"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Inbound"
    assert stage_rows(response.json()) == SEED_STAGES
    pipeline.refresh_from_db()
    assert pipeline.name == "Inbound"


def test_patch_sending_back_what_get_returned_changes_nothing(api, workspace):
    pipeline = default_pipeline(workspace)
    lead = make_lead(workspace)
    before = api.get(URL).json()["results"][0]
    response = api.patch(detail_url(pipeline), before, format="json")
    assert response.status_code == 200, response.content
    after = response.json()
    assert after["stages"] == before["stages"]
    assert after["name"] == before["name"]
    lead.refresh_from_db()
    assert lead.stage.name == "New"
    assert stage_moves(lead) == []


def test_patch_renames_reorders_recolours_and_retypes_stages_keeping_their_leads(api, workspace):
    pipeline = default_pipeline(workspace)
    new, contacted, qualified, proposal, won, lost = stages_of(pipeline)
    lead = make_lead(workspace, stage=proposal)
    assert lead.stage == proposal

    stages = [
        as_input(new),
        as_input(qualified, name="Meeting booked"),
        as_input(contacted, color="#123abc"),
        as_input(proposal, name="Closed - Paid", type="won"),
        as_input(won, type="open"),
        as_input(lost),
    ]
    response = api.patch(detail_url(pipeline), {"stages": stages}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert stage_rows(body) == [
        ("New", "#3B82F6", "open"),
        ("Meeting booked", "#8B5CF6", "open"),
        ("Contacted", "#123ABC", "open"),
        ("Closed - Paid", "#EC4899", "won"),
        ("Won", "#22C55E", "open"),
        ("Lost", "#EF4444", "lost"),
    ]
    assert [s["id"] for s in body["stages"]] == [str(s.pk) for s in (new, qualified, contacted, proposal, won, lost)]
    assert [s["position"] for s in body["stages"]] == [0, 1, 2, 3, 4, 5]
    assert [s.name for s in stages_of(pipeline)] == ["New", "Meeting booked", "Contacted", "Closed - Paid", "Won", "Lost"]
    lead.refresh_from_db()
    assert lead.stage_id == proposal.pk
    assert stage_moves(lead) == []


def test_patch_renaming_a_stage_without_its_colour_or_type_keeps_them(api, workspace):
    """A partner renaming the Won stage sends its id and new name; it must stay a green Won stage."""
    pipeline = default_pipeline(workspace)
    stages = stages_of(pipeline)
    body = [as_input(stage) for stage in stages]
    body[4] = {"id": str(stages[4].pk), "name": "Closed Won"}
    response = api.patch(detail_url(pipeline), {"stages": body}, format="json")
    assert response.status_code == 200, response.content
    assert stage_rows(response.json())[4] == ("Closed Won", "#22C55E", "won")
    won = Stage.objects.get(pk=stages[4].pk)
    assert (won.name, won.color, won.type) == ("Closed Won", "#22C55E", "won")


def test_patch_adds_a_stage(api, workspace):
    pipeline = default_pipeline(workspace)
    stages = stages_of(pipeline)
    body = [as_input(stage) for stage in stages]
    body.insert(3, {"name": "Demo", "color": "#0EA5E9"})
    response = api.patch(detail_url(pipeline), {"stages": body}, format="json")
    assert response.status_code == 200, response.content
    rows = stage_rows(response.json())
    assert [name for name, _, _ in rows] == ["New", "Contacted", "Qualified", "Demo", "Proposal", "Won", "Lost"]
    assert rows[3] == ("Demo", "#0EA5E9", "open")
    assert [s["id"] for s in response.json()["stages"] if s["name"] != "Demo"] == [str(s.pk) for s in stages]
    demo = Stage.objects.get(pipeline=pipeline, name="Demo")
    assert demo.workspace == workspace and demo.position == 3


def test_patch_removing_a_stage_moves_its_leads_to_the_first_stage(api, workspace):
    pipeline = default_pipeline(workspace)
    new, contacted, *rest = stages_of(pipeline)
    moved = [make_lead(workspace, stage=contacted) for _ in range(3)]
    gone = make_lead(workspace, stage=contacted)
    lead_delete(lead=gone, actor=None)
    untouched = make_lead(workspace, stage=rest[0])

    body = [as_input(stage) for stage in [new, *rest]]
    response = api.patch(detail_url(pipeline), {"stages": body}, format="json")
    assert response.status_code == 200, response.content
    assert "Contacted" not in [s["name"] for s in response.json()["stages"]]
    assert not Stage.objects.filter(pk=contacted.pk).exists()
    for lead in [*moved, gone]:
        lead.refresh_from_db()
        assert lead.stage_id == new.pk
        assert lead.pipeline_id == pipeline.pk
        [activity] = stage_moves(lead)
        assert activity.data["fromStage"] == "Contacted" and activity.data["toStageId"] == str(new.pk)
        assert activity.actor == api.user
    untouched.refresh_from_db()
    assert untouched.stage_id == rest[0].pk
    assert stage_moves(untouched) == []
    assert not Lead.objects.filter(stage_id=contacted.pk).exists()


def test_patch_removing_a_stage_moves_its_leads_to_the_reassign_target(api, workspace):
    pipeline = default_pipeline(workspace)
    new, contacted, qualified, proposal, won, lost = stages_of(pipeline)
    lead = make_lead(workspace, stage=proposal)

    body = [as_input(stage) for stage in (new, contacted, qualified, won, lost)]
    response = api.patch(detail_url(pipeline), {"stages": body, "reassign": {str(proposal.pk): str(qualified.pk)}}, format="json")
    assert response.status_code == 200, response.content
    lead.refresh_from_db()
    assert lead.stage_id == qualified.pk
    [activity] = stage_moves(lead)
    assert (activity.data["fromStage"], activity.data["toStage"]) == ("Proposal", "Qualified")


def test_patch_replacing_every_stage_moves_leads_to_the_new_first_stage(api, workspace):
    pipeline = default_pipeline(workspace)
    leads = [make_lead(workspace, stage=stage) for stage in stages_of(pipeline)]
    response = api.patch(detail_url(pipeline), {"stages": [{"name": "Open"}, {"name": "Closed", "type": "won"}]}, format="json")
    assert response.status_code == 200, response.content
    first = Stage.objects.get(pipeline=pipeline, position=0)
    assert first.name == "Open"
    assert Stage.objects.filter(pipeline=pipeline).count() == 2
    for lead in leads:
        lead.refresh_from_db()
        assert lead.stage_id == first.pk
    # The lead already in "New" moved too: "New" itself was removed.
    assert all(len(stage_moves(lead)) == 1 for lead in leads)


def test_patch_reassigning_to_a_removed_stage_is_400_and_changes_nothing(api, workspace):
    pipeline = default_pipeline(workspace)
    new, _, qualified, proposal, won, lost = stages_of(pipeline)
    lead = make_lead(workspace, stage=proposal)
    body = [as_input(stage, name=stage.name.upper()) for stage in (new, won, lost)]
    response = api.patch(detail_url(pipeline), {"stages": body, "reassign": {str(proposal.pk): str(qualified.pk)}}, format="json")
    assert response.status_code == 400
    assert "reassign" in error_of(response)["fields"]
    assert [s.name for s in stages_of(pipeline)] == default_stage_names()
    lead.refresh_from_db()
    assert lead.stage_id == proposal.pk


@pytest.mark.parametrize("count", [0, 1])
def test_patch_with_fewer_than_two_stages_is_400_naming_stages(api, workspace, count):
    pipeline = default_pipeline(workspace)
    body = [as_input(stage) for stage in stages_of(pipeline)[:count]]
    response = api.patch(detail_url(pipeline), {"stages": body}, format="json")
    assert response.status_code == 400
    assert "stages" in error_of(response)["fields"]
    assert [s.name for s in stages_of(pipeline)] == default_stage_names()


@pytest.mark.parametrize(
    ("change", "field"),
    [({"color": "red"}, "stages[2].color"), ({"color": "#1234567"}, "stages[2].color"), ({"type": "pending"}, "stages[2].type")],
)
def test_patch_with_a_bad_colour_or_type_is_400_naming_the_field(api, workspace, change, field):
    pipeline = default_pipeline(workspace)
    body = [as_input(stage) for stage in stages_of(pipeline)]
    body[2].update(change)
    response = api.patch(detail_url(pipeline), {"stages": body}, format="json")
    assert response.status_code == 400
    assert names_field(error_of(response)["fields"], field), error_of(response)
    qualified = Stage.objects.get(pipeline=pipeline, name="Qualified")
    assert (qualified.color, qualified.type) == ("#8B5CF6", "open")


def test_patch_naming_a_stage_of_another_pipeline_is_400_and_moves_nothing(api, workspace):
    pipeline = default_pipeline(workspace)
    partners = make_pipeline(workspace)
    foreign = stages_of(partners)[0]
    lead = make_lead(workspace, stage=foreign)
    body = [as_input(stage) for stage in stages_of(pipeline)] + [as_input(foreign)]
    response = api.patch(detail_url(pipeline), {"stages": body}, format="json")
    assert response.status_code == 400
    assert "stages" in error_of(response)["fields"]
    foreign.refresh_from_db()
    assert foreign.pipeline_id == partners.pk
    assert Stage.objects.filter(pipeline=pipeline).count() == 6
    lead.refresh_from_db()
    assert lead.stage_id == foreign.pk


def test_patch_naming_a_stage_of_another_workspace_is_400(api, workspace, other_workspace):
    pipeline = default_pipeline(workspace)
    theirs = stages_of(default_pipeline(other_workspace))[0]
    body = [as_input(stage) for stage in stages_of(pipeline)[:2]] + [as_input(theirs, name="Stolen")]
    response = api.patch(detail_url(pipeline), {"stages": body}, format="json")
    assert response.status_code == 400
    assert "stages" in error_of(response)["fields"]
    theirs.refresh_from_db()
    assert theirs.name == "New" and theirs.workspace == other_workspace
    assert Stage.objects.filter(pipeline=pipeline).count() == 6


def test_patch_naming_a_stage_twice_is_400(api, workspace):
    pipeline = default_pipeline(workspace)
    new, contacted, *_ = stages_of(pipeline)
    response = api.patch(detail_url(pipeline), {"stages": [as_input(new), as_input(contacted), as_input(new)]}, format="json")
    assert response.status_code == 400
    assert "stages" in error_of(response)["fields"]
    assert Stage.objects.filter(pipeline=pipeline).count() == 6


def test_patch_of_another_workspaces_pipeline_is_404(api, other_workspace):
    theirs = default_pipeline(other_workspace)
    response = api.patch(detail_url(theirs), {"name": "Mine now"}, format="json")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.name == "Sales Pipeline"


# Delete


def test_delete_of_the_default_pipeline_is_400_and_it_stays(api, workspace):
    pipeline = default_pipeline(workspace)
    lead = make_lead(workspace)
    response = api.delete(detail_url(pipeline))
    assert response.status_code == 400
    assert error_of(response)["code"] == "validation_error"
    assert Pipeline.objects.filter(pk=pipeline.pk, is_default=True).exists()
    assert Stage.objects.filter(pipeline=pipeline).count() == 6
    lead.refresh_from_db()
    assert lead.pipeline_id == pipeline.pk


def test_delete_moves_leads_to_the_default_pipelines_first_stage(api, workspace):
    partners = make_pipeline(workspace)
    intro, trial, signed = stages_of(partners)
    leads = [make_lead(workspace, stage=stage) for stage in (intro, trial, trial, signed)]
    gone = make_lead(workspace, stage=signed)
    lead_delete(lead=gone, actor=None)
    first = stages_of(default_pipeline(workspace))[0]

    response = api.delete(detail_url(partners))
    assert response.status_code == 200, response.content
    assert response.json() == {"deleted": True, "movedLeads": 5}
    assert not Pipeline.objects.filter(pk=partners.pk).exists()
    assert not Stage.objects.filter(pk__in=[intro.pk, trial.pk, signed.pk]).exists()
    for lead in [*leads, gone]:
        lead.refresh_from_db()
        assert (lead.pipeline_id, lead.stage_id) == (first.pipeline_id, first.pk)
        [activity] = stage_moves(lead)
        assert activity.data["toStageId"] == str(first.pk)
    assert api.get(URL).json()["count"] == 1


def test_delete_moves_leads_to_the_stage_named_by_move_to_stage_id(api, workspace):
    partners = make_pipeline(workspace)
    lead = make_lead(workspace, stage=stages_of(partners)[1])
    won = Stage.objects.get(pipeline=default_pipeline(workspace), name="Won")

    response = api.delete(f"{detail_url(partners)}?moveToStageId={won.pk}")
    assert response.status_code == 200, response.content
    assert response.json()["movedLeads"] == 1
    lead.refresh_from_db()
    assert (lead.pipeline_id, lead.stage_id) == (won.pipeline_id, won.pk)
    assert [a.data["toStage"] for a in stage_moves(lead)] == ["Won"]


def test_delete_of_an_empty_pipeline_moves_nothing(api, workspace):
    partners = make_pipeline(workspace)
    response = api.delete(detail_url(partners))
    assert response.status_code == 200
    assert response.json() == {"deleted": True, "movedLeads": 0}
    assert not Pipeline.objects.filter(pk=partners.pk).exists()


@pytest.mark.parametrize("target", ["own", "other_workspace", "unknown", "garbage"])
def test_delete_with_a_bad_move_to_stage_id_is_400_and_deletes_nothing(api, workspace, other_workspace, target):
    partners = make_pipeline(workspace)
    lead = make_lead(workspace, stage=stages_of(partners)[0])
    stage_id = {
        "own": str(stages_of(partners)[2].pk),
        "other_workspace": str(stages_of(default_pipeline(other_workspace))[0].pk),
        "unknown": str(uuid.uuid4()),
        "garbage": "not-a-uuid",
    }[target]
    response = api.delete(f"{detail_url(partners)}?moveToStageId={stage_id}")
    assert response.status_code == 400
    assert "moveToStageId" in error_of(response)["fields"]
    assert Pipeline.objects.filter(pk=partners.pk).exists()
    lead.refresh_from_db()
    assert lead.pipeline_id == partners.pk


def test_delete_of_another_workspaces_pipeline_is_404(api, other_workspace):
    theirs = make_pipeline(other_workspace)
    response = api.delete(detail_url(theirs))
    assert response.status_code == 404
    assert Pipeline.objects.filter(pk=theirs.pk).exists()


# Permissions


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.VIEWER])
def test_roles_without_leads_manage_can_read_but_not_configure(api_as, workspace, role):
    client = api_as(role)
    pipeline = default_pipeline(workspace)
    partners = make_pipeline(workspace)
    assert client.get(URL).status_code == 200
    assert client.post(URL, {"name": "Nope"}, format="json").status_code == 403
    assert client.patch(detail_url(pipeline), {"name": "Nope"}, format="json").status_code == 403
    assert client.delete(detail_url(partners)).status_code == 403
    assert error_of(client.delete(detail_url(partners)))["code"] == "permission_denied"
    assert not Pipeline.objects.filter(name="Nope").exists()
    assert Pipeline.objects.filter(pk=partners.pk).exists()


# Bodies


@pytest.mark.parametrize(
    ("method", "body", "unknown"),
    [
        ("post", {"name": "X", "colour": "red"}, "colour"),
        ("post", {"name": "X", "stages": [{"name": "A"}, {"name": "B", "label": "b"}]}, "stages[1].label"),
        ("patch", {"name": "X", "default": True}, "default"),
        ("patch", {"stages": [{"name": "A", "order": 1}, {"name": "B"}]}, "stages[0].order"),
    ],
)
def test_unknown_fields_are_400_naming_them(api, workspace, method, body, unknown):
    pipeline = default_pipeline(workspace)
    url = URL if method == "post" else detail_url(pipeline)
    response = getattr(api, method)(url, body, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert names_field(error["fields"], unknown), error
    assert Pipeline.objects.filter(workspace=workspace).count() == 1
    pipeline.refresh_from_db()
    assert pipeline.name == "Sales Pipeline"


@pytest.mark.parametrize("method", ["post", "patch"])
def test_malformed_json_is_400_malformed_json(api, workspace, method):
    pipeline = default_pipeline(workspace)
    url = URL if method == "post" else detail_url(pipeline)
    response = getattr(api, method)(url, '{"name": "X", "stages": [', content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed_json"
    assert Pipeline.objects.filter(workspace=workspace).count() == 1


def test_reassign_naming_a_stage_that_is_not_removed_is_refused(api, workspace):
    from pipelines.models import Pipeline

    pipeline = Pipeline.objects.get(workspace=workspace, is_default=True)
    stages = list(pipeline.stages.order_by("position"))
    body = {
        "stages": [{"id": str(s.pk), "name": s.name} for s in stages],
        "reassign": {str(stages[0].pk): str(stages[1].pk)},
    }
    response = api.patch(f"/api/v1/lead-pipelines/{pipeline.pk}", body, format="json")
    assert response.status_code == 400
    assert "reassign" in response.json()["error"]["fields"]


def test_reassign_keys_are_matched_whatever_their_case(api, workspace):
    from leads.models import Lead
    from pipelines.models import Pipeline
    from tests.leads.factories import make_lead

    pipeline = Pipeline.objects.get(workspace=workspace, is_default=True)
    stages = list(pipeline.stages.order_by("position"))
    proposal, won = stages[3], stages[4]
    lead = make_lead(workspace, stage=proposal)
    body = {
        "stages": [{"id": str(s.pk), "name": s.name} for s in stages if s != proposal],
        "reassign": {str(proposal.pk).upper(): str(won.pk)},
    }
    response = api.patch(f"/api/v1/lead-pipelines/{pipeline.pk}", body, format="json")
    assert response.status_code == 200, response.content
    assert Lead.objects.get(pk=lead.pk).stage_id == won.pk
