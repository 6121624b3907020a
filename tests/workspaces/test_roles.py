"""What each role may do through the API; a refused write is a 403 in the error shape and changes nothing."""

from types import SimpleNamespace

import pytest

from leads.models import Contact, Lead, LeadActivity, LeadTag, Note
from leads.services import lead_note_add
from pipelines.models import Pipeline, Stage
from tests.leads.factories import make_lead
from tests.pipelines.factories import make_pipeline
from tests.workspaces.factories import member
from workspaces.models import Role


def workspace_state(workspace) -> dict:
    return {
        "leads": list(
            Lead.objects.filter(workspace=workspace)
            .order_by("pk")
            .values("pk", "name", "stage_id", "owner_id", "status", "deleted_at", "contact_id", "updated_at")
        ),
        "tags": list(LeadTag.objects.filter(lead__workspace=workspace).order_by("lead_id", "tag_id").values_list("lead_id", "tag_id")),
        "notes": list(Note.objects.filter(workspace=workspace).order_by("pk").values_list("pk", "lead_id", "text")),
        "activities": LeadActivity.objects.filter(workspace=workspace).count(),
        "contacts": Contact.objects.filter(workspace=workspace).count(),
        "pipelines": list(Pipeline.objects.filter(workspace=workspace).order_by("pk").values_list("pk", "name", "is_default")),
        "stages": list(Stage.objects.filter(workspace=workspace).order_by("pk").values_list("pk", "pipeline_id", "name", "position")),
    }


@pytest.fixture
def scene(workspace):
    colleague = member(workspace, Role.SALES_REP).user
    lead = make_lead(workspace, name="Open Lead")
    lead_note_add(lead=lead, author=colleague, text="First call went well")
    return SimpleNamespace(
        workspace=workspace,
        colleague=colleague,
        lead=lead,
        owned_lead=make_lead(workspace, name="Colleague's Lead", owner=colleague),
        pipeline=make_pipeline(workspace, name="Partners"),
        contacted=Stage.objects.get(workspace=workspace, pipeline__is_default=True, name="Contacted"),
    )


def fresh(lead: Lead) -> Lead:
    return Lead.objects.get(pk=lead.pk)


# name: (request(client, scene), status when allowed, what the allowed request visibly did)
ACTIONS = {
    "list leads": (
        lambda c, s: c.get("/api/v1/leads"),
        200,
        lambda c, s, r: str(s.lead.pk) in {lead["id"] for lead in r.json()["results"]},
    ),
    "lead detail": (lambda c, s: c.get(f"/api/v1/leads/{s.lead.pk}"), 200, lambda c, s, r: r.json()["name"] == "Open Lead"),
    "list notes": (
        lambda c, s: c.get(f"/api/v1/leads/{s.lead.pk}/notes"),
        200,
        lambda c, s, r: [note["value"] for note in r.json()["results"]] == ["First call went well"],
    ),
    "list pipelines": (
        lambda c, s: c.get("/api/v1/lead-pipelines"),
        200,
        lambda c, s, r: str(s.pipeline.pk) in {p["id"] for p in r.json()["results"]},
    ),
    "pipeline detail": (lambda c, s: c.get(f"/api/v1/lead-pipelines/{s.pipeline.pk}"), 200, lambda c, s, r: r.json()["name"] == "Partners"),
    # The README grants ensure-default to `leads:view`: with a default pipeline present it only reads it.
    "ensure default pipeline": (
        lambda c, s: c.post("/api/v1/lead-pipelines/ensure-default"),
        200,
        lambda c, s, r: r.json()["isDefault"] is True and Pipeline.objects.filter(workspace=s.workspace).count() == 2,
    ),
    "move stage": (
        lambda c, s: c.patch(f"/api/v1/leads/{s.lead.pk}/stage", {"stageId": str(s.contacted.pk)}, format="json"),
        200,
        lambda c, s, r: fresh(s.lead).stage_id == s.contacted.pk,
    ),
    "add note": (
        lambda c, s: c.post(f"/api/v1/leads/{s.lead.pk}/notes", {"value": "Sent the proposal"}, format="json"),
        201,
        lambda c, s, r: Note.objects.filter(lead=s.lead, author=c.user, text="Sent the proposal").exists(),
    ),
    "convert": (
        lambda c, s: c.post(f"/api/v1/leads/{s.lead.pk}/convert", {}, format="json"),
        201,
        lambda c, s, r: fresh(s.lead).contact_id is not None,
    ),
    "assign to self": (
        lambda c, s: c.patch(f"/api/v1/leads/{s.lead.pk}/assign", {"assignedTo": c.user.pk}, format="json"),
        200,
        lambda c, s, r: fresh(s.lead).owner_id == c.user.pk,
    ),
    "assign to someone else": (
        lambda c, s: c.patch(f"/api/v1/leads/{s.lead.pk}/assign", {"assignedTo": s.colleague.pk}, format="json"),
        200,
        lambda c, s, r: fresh(s.lead).owner_id == s.colleague.pk,
    ),
    "unassign someone else's lead": (
        lambda c, s: c.patch(f"/api/v1/leads/{s.owned_lead.pk}/assign", {"assignedTo": None}, format="json"),
        200,
        lambda c, s, r: fresh(s.owned_lead).owner_id is None,
    ),
    "create lead": (
        lambda c, s: c.post("/api/v1/leads", {"name": "Brand New"}, format="json"),
        201,
        lambda c, s, r: Lead.objects.filter(workspace=s.workspace, name="Brand New").exists(),
    ),
    "edit lead": (
        lambda c, s: c.patch(f"/api/v1/leads/{s.lead.pk}", {"name": "Renamed Lead"}, format="json"),
        200,
        lambda c, s, r: fresh(s.lead).name == "Renamed Lead",
    ),
    "delete lead": (
        lambda c, s: c.delete(f"/api/v1/leads/{s.lead.pk}"),
        204,
        lambda c, s, r: fresh(s.lead).deleted_at is not None,
    ),
    "bulk action": (
        lambda c, s: c.post(
            "/api/v1/leads/bulk-action",
            {"action": "move_stage", "leadIds": [str(s.lead.pk)], "stageId": str(s.contacted.pk)},
            format="json",
        ),
        200,
        lambda c, s, r: fresh(s.lead).stage_id == s.contacted.pk,
    ),
    "create pipeline": (
        lambda c, s: c.post("/api/v1/lead-pipelines", {"name": "Renewals"}, format="json"),
        201,
        lambda c, s, r: Pipeline.objects.filter(workspace=s.workspace, name="Renewals").exists(),
    ),
    "edit pipeline": (
        lambda c, s: c.patch(f"/api/v1/lead-pipelines/{s.pipeline.pk}", {"name": "Channel Partners"}, format="json"),
        200,
        lambda c, s, r: Pipeline.objects.get(pk=s.pipeline.pk).name == "Channel Partners",
    ),
    "delete pipeline": (
        lambda c, s: c.delete(f"/api/v1/lead-pipelines/{s.pipeline.pk}"),
        200,
        lambda c, s, r: not Pipeline.objects.filter(pk=s.pipeline.pk).exists(),
    ),
}

READS = {"list leads", "lead detail", "list notes", "list pipelines", "pipeline detail", "ensure default pipeline"}
SALES_REP_WORK = {"move stage", "add note", "convert", "assign to self"}
ALLOWED = {
    Role.VIEWER: READS,
    Role.SALES_REP: READS | SALES_REP_WORK,
    Role.MARKETER: set(ACTIONS),
    Role.ADMIN: set(ACTIONS),
    Role.SUPER_ADMIN: set(ACTIONS),
}


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("role", list(ALLOWED))
def test_role_may_or_may_not_act(api_as, scene, role, action):
    request, allowed_status, did_it = ACTIONS[action]
    client = api_as(role)
    before = workspace_state(scene.workspace)

    response = request(client, scene)

    if action in ALLOWED[role]:
        assert response.status_code == allowed_status, response.content
        assert did_it(client, scene, response)
    else:
        assert response.status_code == 403, response.content
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, body
        assert body["error"]["code"] == "permission_denied"
        assert body["error"]["message"]
        assert workspace_state(scene.workspace) == before


def test_sales_rep_may_take_a_colleagues_lead_but_not_give_it_away(api_as, scene):
    rep = api_as(Role.SALES_REP)

    taken = rep.patch(f"/api/v1/leads/{scene.owned_lead.pk}/assign", {"assignedTo": rep.user.pk}, format="json")
    given_back = rep.patch(f"/api/v1/leads/{scene.owned_lead.pk}/assign", {"assignedTo": scene.colleague.pk}, format="json")

    assert taken.status_code == 200, taken.content
    assert given_back.status_code == 403, given_back.content
    assert fresh(scene.owned_lead).owner_id == rep.user.pk


def test_a_role_change_takes_effect_on_the_next_request(api_as, scene):
    client = api_as(Role.VIEWER)
    refused = client.patch(f"/api/v1/leads/{scene.lead.pk}", {"name": "Promoted Edit"}, format="json")

    client.membership.role = Role.MARKETER
    client.membership.save(update_fields=["role"])
    allowed = client.patch(f"/api/v1/leads/{scene.lead.pk}", {"name": "Promoted Edit"}, format="json")

    assert refused.status_code == 403
    assert allowed.status_code == 200, allowed.content
    assert fresh(scene.lead).name == "Promoted Edit"
