"""Workspace A's token never reaches workspace B: B's ids answer 404, lists hold only A's rows, and a
body naming B's stage or member is a 400. B's data is re-read from the database after every request."""

from types import SimpleNamespace

import pytest
from django.db.models import Q

from leads.models import Company, Contact, Lead, LeadActivity, LeadTag, Note, Tag
from leads.services import lead_convert, lead_note_add
from pipelines.models import Pipeline, Stage
from tests.leads.factories import make_lead
from tests.pipelines.factories import make_pipeline
from tests.workspaces.factories import member
from workspaces.models import Role

VIEW, WORK, MANAGE = "view", "work", "manage"
# Roles that pass each permission level, so a 404 comes from workspace scoping and never from the role check.
ROLES_WITH = {
    VIEW: (Role.VIEWER, Role.SALES_REP, Role.MARKETER),
    WORK: (Role.SALES_REP, Role.MARKETER),
    MANAGE: (Role.MARKETER, Role.SUPER_ADMIN),
}


def workspace_state(workspace) -> dict:
    """Everything a request could change in a workspace, read fresh from the database."""
    return {
        "leads": list(
            Lead.objects.filter(workspace=workspace)
            .order_by("pk")
            .values(
                "pk",
                "name",
                "email",
                "pipeline_id",
                "stage_id",
                "owner_id",
                "status",
                "deleted_at",
                "converted_at",
                "contact_id",
                "updated_at",
            )
        ),
        "tags": list(
            LeadTag.objects.filter(Q(lead__workspace=workspace) | Q(tag__workspace=workspace))
            .order_by("lead_id", "tag__name")
            .values_list("lead_id", "tag_id")
        ),
        "notes": list(Note.objects.filter(workspace=workspace).order_by("pk").values_list("pk", "lead_id", "contact_id", "text")),
        "activities": list(LeadActivity.objects.filter(workspace=workspace).order_by("pk").values_list("pk", "lead_id", "type")),
        "contacts": list(Contact.objects.filter(workspace=workspace).order_by("pk").values_list("pk", "name", "email")),
        "companies": list(Company.objects.filter(workspace=workspace).order_by("pk").values_list("pk", "name")),
        "pipelines": list(
            Pipeline.objects.filter(workspace=workspace).order_by("pk").values_list("pk", "name", "is_default", "updated_at")
        ),
        "stages": list(
            Stage.objects.filter(workspace=workspace).order_by("pk").values_list("pk", "pipeline_id", "name", "position", "color")
        ),
    }


def send(client, method: str, path: str, body: dict | None):
    return getattr(client, method.lower())(path, body, format="json")


def default_stage(workspace, name: str) -> Stage:
    return Stage.objects.get(workspace=workspace, pipeline__is_default=True, name=name)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert body["error"]["code"] == code, body
    return body["error"]["fields"]


@pytest.fixture
def b(other_workspace):
    """Workspace B with a member, a second pipeline, a tagged and owned lead with a note, and a contact."""
    owner = other_workspace.memberships.get().user
    rep = member(other_workspace, Role.SALES_REP).user
    pipeline = make_pipeline(other_workspace, name="B Partners")
    lead = make_lead(other_workspace, name="Bea Secret", email="bea@b-corp.example", owner=rep, tags=["vip"], company={"name": "B Corp"})
    lead_note_add(lead=lead, author=owner, text="B's private note")
    converted = make_lead(other_workspace, name="Shared Person", email="shared@example.com")
    lead_convert(lead=converted, actor=owner)
    return SimpleNamespace(
        workspace=other_workspace,
        user=rep,
        lead=lead,
        pipeline=pipeline,
        default_pipeline=Pipeline.objects.get(workspace=other_workspace, is_default=True),
        stage=default_stage(other_workspace, "Contacted"),
        pipeline_stage=pipeline.stages.get(name="Trial"),
    )


@pytest.fixture
def a(workspace):
    """Workspace A with one lead in its default pipeline and a second pipeline."""
    return SimpleNamespace(
        workspace=workspace,
        lead=make_lead(workspace, name="Alan Own"),
        pipeline=make_pipeline(workspace, name="A Partners"),
        stage=default_stage(workspace, "Contacted"),
    )


LEAD = "/api/v1/leads/{b.lead.pk}"
PIPELINE = "/api/v1/lead-pipelines/{b.pipeline.pk}"
DEFAULT_PIPELINE = "/api/v1/lead-pipelines/{b.default_pipeline.pk}"

# name: (permission level, method, path template, body(client, a, b) or None). Paths hold B's real ids.
CROSS_TENANT_REQUESTS = {
    "lead detail": (VIEW, "GET", LEAD, None),
    "lead edit": (MANAGE, "PATCH", LEAD, lambda c, a, b: {"name": "Hijacked"}),
    "lead edit to B's stage": (MANAGE, "PATCH", LEAD, lambda c, a, b: {"stageId": str(b.stage.pk)}),
    "lead delete": (MANAGE, "DELETE", LEAD, None),
    "stage move to A's stage": (WORK, "PATCH", LEAD + "/stage", lambda c, a, b: {"stageId": str(a.stage.pk)}),
    "stage move to B's stage": (WORK, "PATCH", LEAD + "/stage", lambda c, a, b: {"stageId": str(b.stage.pk)}),
    "assign to self": (WORK, "PATCH", LEAD + "/assign", lambda c, a, b: {"assignedTo": c.user.pk}),
    "unassign": (MANAGE, "PATCH", LEAD + "/assign", lambda c, a, b: {"assignedTo": None}),
    "convert": (WORK, "POST", LEAD + "/convert", lambda c, a, b: {}),
    "notes list": (VIEW, "GET", LEAD + "/notes", None),
    "note add": (WORK, "POST", LEAD + "/notes", lambda c, a, b: {"value": "planted"}),
    "pipeline detail": (VIEW, "GET", PIPELINE, None),
    "default pipeline detail": (VIEW, "GET", DEFAULT_PIPELINE, None),
    "pipeline rename": (MANAGE, "PATCH", PIPELINE, lambda c, a, b: {"name": "Hijacked"}),
    "pipeline stages replace": (MANAGE, "PATCH", PIPELINE, lambda c, a, b: {"stages": [{"name": "One"}, {"name": "Two"}]}),
    "pipeline delete": (MANAGE, "DELETE", PIPELINE, None),
    "pipeline delete moving leads to B's stage": (MANAGE, "DELETE", PIPELINE + "?moveToStageId={b.stage.pk}", None),
    # The default pipeline cannot be deleted; saying so (400) would confirm that B's id exists.
    "default pipeline delete": (MANAGE, "DELETE", DEFAULT_PIPELINE, None),
}


@pytest.mark.parametrize(
    ("name", "role"),
    [(name, role) for name, (level, *_) in CROSS_TENANT_REQUESTS.items() for role in ROLES_WITH[level]],
)
def test_another_workspaces_id_is_404_and_changes_nothing(api_as, a, b, name, role):
    _, method, path, body = CROSS_TENANT_REQUESTS[name]
    client = api_as(role)
    before_b, before_a = workspace_state(b.workspace), workspace_state(a.workspace)

    response = send(client, method, path.format(b=b), body(client, a, b) if body else None)

    assert_error(response, 404, "not_found")
    assert b"Bea Secret" not in response.content and b"private note" not in response.content
    assert workspace_state(b.workspace) == before_b
    assert workspace_state(a.workspace) == before_a


def test_lead_list_holds_only_own_workspaces_leads(api, a, b):
    response = api.get("/api/v1/leads", {"limit": 100})

    assert response.status_code == 200
    body = response.json()
    assert [lead["id"] for lead in body["results"]] == [str(a.lead.pk)]
    assert body["count"] == 1


@pytest.mark.parametrize(
    "params",
    [
        lambda b: {"search": "Bea Secret"},
        lambda b: {"search": "b-corp"},
        lambda b: {"stageId": str(default_stage(b.workspace, "New").pk)},
        lambda b: {"pipelineId": str(b.default_pipeline.pk)},
        lambda b: {"assignedTo": str(b.user.pk)},
        lambda b: {"tag": "vip"},
    ],
    ids=["name", "email", "stageId", "pipelineId", "assignedTo", "tag"],
)
def test_lead_list_filtered_by_another_workspaces_values_is_empty(api, a, b, params):
    response = api.get("/api/v1/leads", params(b))

    assert response.status_code == 200, response.content
    assert response.json()["results"] == []
    assert response.json()["count"] == 0


def test_pipeline_list_holds_only_own_workspaces_pipelines(api, a, b):
    response = api.get("/api/v1/lead-pipelines")

    assert response.status_code == 200
    listed = {pipeline["id"] for pipeline in response.json()["results"]}
    assert listed == {str(pk) for pk in Pipeline.objects.filter(workspace=a.workspace).values_list("pk", flat=True)}
    assert response.json()["count"] == 2
    listed_stages = {stage["id"] for pipeline in response.json()["results"] for stage in pipeline["stages"]}
    assert not listed_stages & {str(pk) for pk in Stage.objects.filter(workspace=b.workspace).values_list("pk", flat=True)}


def test_notes_list_holds_only_the_leads_own_notes(api, a, b):
    lead_note_add(lead=a.lead, author=api.user, text="A's note")

    response = api.get(f"/api/v1/leads/{a.lead.pk}/notes")

    assert response.status_code == 200
    assert [note["value"] for note in response.json()["results"]] == ["A's note"]


def test_creates_land_in_own_workspace_and_reuse_nothing_of_another(api, a, b):
    before_b = workspace_state(b.workspace)

    lead = api.post(
        "/api/v1/leads",
        {"id": str(b.lead.pk), "name": "Bea Secret", "company": "B Corp", "tags": ["vip"]},
        format="json",
    )
    pipeline = api.post("/api/v1/lead-pipelines", {"name": "B Partners"}, format="json")
    ensured = api.post("/api/v1/lead-pipelines/ensure-default")

    assert lead.status_code == 201, lead.content
    created = Lead.objects.get(pk=lead.json()["id"])
    assert created.pk != b.lead.pk
    assert created.workspace_id == a.workspace.pk
    assert created.company.workspace_id == a.workspace.pk
    assert Tag.objects.get(lead_tags__lead=created).workspace_id == a.workspace.pk
    assert created.stage.workspace_id == a.workspace.pk
    assert pipeline.status_code == 201, pipeline.content
    assert Pipeline.objects.get(pk=pipeline.json()["id"]).workspace_id == a.workspace.pk
    assert ensured.status_code == 200, ensured.content
    assert ensured.json()["id"] == str(Pipeline.objects.get(workspace=a.workspace, is_default=True).pk)
    assert workspace_state(b.workspace) == before_b


def test_convert_never_links_another_workspaces_contact(api, a, b):
    lead = make_lead(a.workspace, name="Shared Person", email="shared@example.com")
    before_b = workspace_state(b.workspace)

    response = api.post(f"/api/v1/leads/{lead.pk}/convert", {}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["created"] is True
    assert Contact.objects.get(pk=response.json()["contact"]["id"]).workspace_id == a.workspace.pk
    assert workspace_state(b.workspace) == before_b


@pytest.mark.parametrize(
    ("action", "extra"),
    [
        ("move_stage", lambda a: {"stageId": str(a.stage.pk)}),
        ("assign", lambda a: {"assignedTo": None}),
        ("delete", lambda a: {}),
        ("tag", lambda a: {"tags": ["vip", "hot"]}),
    ],
)
def test_bulk_action_reports_another_workspaces_leads_as_not_found(api, a, b, action, extra):
    if action == "assign":
        a.lead.owner = api.user
        a.lead.save(update_fields=["owner"])
    before_b = workspace_state(b.workspace)

    response = api.post(
        "/api/v1/leads/bulk-action",
        {"action": action, "leadIds": [str(a.lead.pk), str(b.lead.pk)], **extra(a)},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["notFound"] == [str(b.lead.pk)]
    assert (body["requested"], body["matched"], body["updated"]) == (2, 1, 1)
    assert workspace_state(b.workspace) == before_b
    assert LeadActivity.objects.filter(workspace=a.workspace, lead=a.lead).count() == 2


def test_bulk_action_with_only_another_workspaces_leads_touches_nothing(api, a, b):
    before = workspace_state(b.workspace), workspace_state(a.workspace)

    response = api.post("/api/v1/leads/bulk-action", {"action": "delete", "leadIds": [str(b.lead.pk)]}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["notFound"] == [str(b.lead.pk)]
    assert response.json()["updated"] == 0
    assert (workspace_state(b.workspace), workspace_state(a.workspace)) == before


A_LEAD = "/api/v1/leads/{a.lead.pk}"
A_PIPELINE = "/api/v1/lead-pipelines/{a.pipeline.pk}"


def _keep_two_stages_moving_signed_to_bs_stage(a, b) -> dict:
    kept = a.pipeline.stages.order_by("position")[:2]
    return {
        "stages": [{"id": str(stage.pk), "name": stage.name} for stage in kept],
        "reassign": {str(a.pipeline.stages.get(name="Signed").pk): str(b.pipeline_stage.pk)},
    }


# name: (method, path template, body(a, b) or None, field the 400 names): requests on A's own rows naming a row of B.
FOREIGN_REFERENCES = {
    "create in B's stage": ("POST", "/api/v1/leads", lambda a, b: {"name": "X", "stageId": str(b.stage.pk)}, "stageId"),
    "create in B's pipeline": ("POST", "/api/v1/leads", lambda a, b: {"name": "X", "pipelineId": str(b.pipeline.pk)}, "pipelineId"),
    "create assigned to B's member": ("POST", "/api/v1/leads", lambda a, b: {"name": "X", "assignedTo": b.user.pk}, "assignedTo"),
    "edit to B's stage": ("PATCH", A_LEAD, lambda a, b: {"stageId": str(b.stage.pk)}, "stageId"),
    "edit to B's pipeline": ("PATCH", A_LEAD, lambda a, b: {"pipelineId": str(b.pipeline.pk), "stageId": str(a.stage.pk)}, "pipelineId"),
    "edit assigned to B's member": ("PATCH", A_LEAD, lambda a, b: {"assignedTo": b.user.pk}, "assignedTo"),
    "stage move to B's stage": ("PATCH", A_LEAD + "/stage", lambda a, b: {"stageId": str(b.stage.pk)}, "stageId"),
    "assign to B's member": ("PATCH", A_LEAD + "/assign", lambda a, b: {"assignedTo": b.user.pk}, "assignedTo"),
    "bulk move to B's stage": (
        "POST",
        "/api/v1/leads/bulk-action",
        lambda a, b: {"action": "move_stage", "leadIds": [str(a.lead.pk)], "stageId": str(b.stage.pk)},
        "stageId",
    ),
    "bulk assign to B's member": (
        "POST",
        "/api/v1/leads/bulk-action",
        lambda a, b: {"action": "assign", "leadIds": [str(a.lead.pk)], "assignedTo": b.user.pk},
        "assignedTo",
    ),
    "pipeline keeping B's stage": (
        "PATCH",
        A_PIPELINE,
        lambda a, b: {"stages": [{"id": str(b.pipeline_stage.pk), "name": "Stolen"}, {"name": "Two"}]},
        "stages",
    ),
    "pipeline moving a removed stage's leads to B's stage": ("PATCH", A_PIPELINE, _keep_two_stages_moving_signed_to_bs_stage, "reassign"),
    "pipeline delete moving leads to B's stage": ("DELETE", A_PIPELINE + "?moveToStageId={b.stage.pk}", None, "moveToStageId"),
}


@pytest.mark.parametrize("name", list(FOREIGN_REFERENCES))
def test_body_naming_another_workspaces_row_is_400_naming_the_field(api, a, b, name):
    method, path, body, field = FOREIGN_REFERENCES[name]
    make_lead(a.workspace, name="In A Partners", stage=a.pipeline.stages.get(name="Signed"))
    before = workspace_state(b.workspace), workspace_state(a.workspace)

    response = send(api, method, path.format(a=a, b=b), body(a, b) if body else None)

    fields = assert_error(response, 400, "validation_error")
    assert field in fields, fields
    assert (workspace_state(b.workspace), workspace_state(a.workspace)) == before
