"""The board's lead actions (drawer, add, move, edit, notes, tags, assign, convert, delete, bulk) and the
workspace switcher, as a signed-in person's browser and htmx call them."""

import html
import json
import re
import uuid

import pytest
from django.test import Client

from leads.models import ActivityType, Contact, Lead, LeadActivity, LeadTag, Note
from leads.services import lead_delete, lead_note_add, lead_stage_move
from pipelines.models import Pipeline, Stage
from tests.leads.factories import make_lead
from tests.pipelines.factories import make_pipeline
from tests.workspaces.factories import UserFactory, WorkspaceFactory, member
from workspaces.models import Role

BOARD = "/leads/"
XSS = "<img src=x onerror=alert(1)>"
XSS_ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"

CARD_NAME = re.compile(r'<span class="name">(.*?)</span>')
TIMELINE_ENTRY = re.compile(r'<span class="what">(.*?)</span>\s*<small>(.*?) · ', re.S)
WORKSPACE_NAME = re.compile(r'<span class="workspace-name" data-testid="workspace-name">(.*?)</span>')


def web_client(user, *, csrf_checks: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf_checks)
    client.force_login(user)
    return client


@pytest.fixture
def web_as(workspace):
    """web_as(role, of_workspace=None, **user_fields) → a Client signed in as a new member with `role`."""

    def make(role: str = Role.MARKETER, of_workspace=None, **user_fields) -> Client:
        membership = member(of_workspace or workspace, role=role, user=UserFactory(**user_fields) if user_fields else None)
        client = web_client(membership.user)
        client.user = membership.user
        return client

    return make


@pytest.fixture
def marketer(web_as):
    return web_as(Role.MARKETER, first_name="Mara", last_name="Kett")


@pytest.fixture
def rep(web_as):
    return web_as(Role.SALES_REP, first_name="Rex", last_name="Ponds")


@pytest.fixture
def viewer(web_as):
    return web_as(Role.VIEWER)


@pytest.fixture
def lead(workspace):
    return make_lead(workspace, name="Jane Doe", email="jane@example.com")


def stage_of(workspace, name: str) -> Stage:
    return Stage.objects.get(workspace=workspace, pipeline__is_default=True, name=name)


def url(lead, action: str = "") -> str:
    return f"/leads/{lead.pk}/{action}"


def card_names(content: str) -> set[str]:
    return {html.unescape(name) for name in CARD_NAME.findall(content)}


def leads_changed(response) -> dict | bool:
    """The HX-Trigger event that tells the board to refresh; raises when the response does not send it."""
    return json.loads(response["HX-Trigger"])["leadsChanged"]


def activity_types(lead) -> list[str]:
    return list(LeadActivity.objects.filter(lead=lead).order_by("id").values_list("type", flat=True))


def tags_of(lead) -> set[str]:
    return set(LeadTag.objects.filter(lead=lead).values_list("tag__name", flat=True))


def workspace_state(workspace) -> dict:
    """Everything a lead action could change in a workspace, read fresh from the database."""
    return {
        "leads": list(
            Lead.objects.filter(workspace=workspace)
            .order_by("pk")
            .values_list(
                "pk", "name", "email", "title", "stage_id", "owner_id", "status", "deleted_at", "contact_id", "company_id", "updated_at"
            )
        ),
        "tags": sorted(LeadTag.objects.filter(lead__workspace=workspace).values_list("lead_id", "tag__name")),
        "notes": list(Note.objects.filter(workspace=workspace).order_by("pk").values_list("pk", "text")),
        "activities": LeadActivity.objects.filter(workspace=workspace).count(),
        "contacts": Contact.objects.filter(workspace=workspace).count(),
        "pipelines": Pipeline.objects.filter(workspace=workspace).count(),
    }


def edit_form(**changes) -> dict:
    form = {
        "name": "Jane Doe",
        "email": "jane@example.com",
        "phone": "",
        "company": "",
        "title": "",
        "department": "",
        "status": "new",
        "lifecycle_stage": "lead",
    }
    form.update(changes)
    return form


# Drawer


def test_drawer_shows_the_lead_its_custom_fields_notes_and_timeline(marketer, workspace):
    author = member(workspace, role=Role.SALES_REP, user=UserFactory(first_name="Nora", last_name="Quill")).user
    lead = make_lead(
        workspace,
        name="Jane Doe",
        company={"name": "Acme Corp"},
        custom_fields={"Budget Range": "10-50k", "preferred_contact": "phone"},
        tags=["hot"],
    )
    lead_stage_move(lead=lead, stage=stage_of(workspace, "Contacted"), actor=author)
    lead_note_add(lead=lead, author=author, text="Call back Monday")

    response = marketer.get(url(lead))

    assert response.status_code == 200
    content = response.content.decode()
    assert '<h2 id="drawer-title">Jane Doe</h2>' in content
    assert "<dt>Budget Range</dt><dd>10-50k</dd>" in content
    assert "<dt>preferred_contact</dt><dd>phone</dd>" in content
    assert "budgetRange" not in content
    assert "_displayNames" not in content
    assert '<span class="tag">hot' in content
    assert re.search(r'<li class="note"><p>Call back Monday</p><small>Nora Quill · ', content)
    assert [(html.unescape(what).strip(), who) for what, who in TIMELINE_ENTRY.findall(content)] == [
        ("Note: Call back Monday", "Nora Quill"),
        ("Moved from New to Contacted", "Nora Quill"),
        ("Created (manual) in New", "System"),
    ]


def test_drawer_for_a_viewer_has_no_forms(viewer, lead):
    content = viewer.get(url(lead)).content.decode()
    assert "Jane Doe" in content
    assert "jane@example.com" in content
    assert "<form" not in content
    assert "Delete lead" not in content


def test_drawer_of_another_workspaces_lead_is_404(marketer, other_workspace):
    theirs = make_lead(other_workspace, name="Their Lead")
    response = marketer.get(url(theirs))
    assert response.status_code == 404
    assert b"Their Lead" not in response.content


def test_drawer_of_a_deleted_lead_is_404(marketer, lead):
    lead_delete(lead=lead, actor=None)
    assert marketer.get(url(lead)).status_code == 404


@pytest.mark.parametrize("lead_id", ["not-a-uuid", str(uuid.uuid4())])
def test_drawer_of_an_unknown_lead_is_404(marketer, lead_id):
    assert marketer.get(f"/leads/{lead_id}/").status_code == 404


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("move", {}),
        ("edit", edit_form(name="Hijacked")),
        ("stage", {}),
        ("notes", {"text": "Hijacked"}),
        ("tags", {"add": "hijacked"}),
        ("assign", {"owner": ""}),
        ("convert", {}),
        ("delete", {}),
    ],
)
def test_actions_on_another_workspaces_lead_are_404_and_change_nothing(marketer, other_workspace, action, data):
    theirs = make_lead(other_workspace, name="Their Lead")
    if action in ("move", "stage"):
        data = {"stage": str(stage_of(other_workspace, "Won").pk)}
    before = workspace_state(other_workspace)
    assert marketer.post(url(theirs, action), data).status_code == 404
    assert workspace_state(other_workspace) == before


# Add lead


def test_add_lead_form_carries_the_pipeline(marketer, workspace):
    partners = make_pipeline(workspace)
    response = marketer.get(f"/leads/new?pipeline={partners.pk}")
    assert response.status_code == 200
    assert f'<input type="hidden" name="pipeline" value="{partners.pk}">' in response.content.decode()


def test_add_lead_without_a_name_shows_the_error_and_creates_nothing(marketer, workspace):
    response = marketer.post("/leads/new", {"name": "  ", "email": "jane@example.com"})
    assert response.status_code == 200
    assert '<span class="field-error" data-error-for="name">This field is required.</span>' in response.content.decode()
    assert "HX-Trigger" not in response
    assert not Lead.objects.filter(workspace=workspace).exists()


def test_add_lead_with_an_invalid_email_shows_the_error_and_creates_nothing(marketer, workspace):
    response = marketer.post("/leads/new", {"name": "Jane Doe", "email": "jane@@example", "company": "Acme"})
    assert response.status_code == 200
    content = response.content.decode()
    assert 'data-error-for="email"' in content
    assert 'data-error-for="name"' not in content
    assert 'value="Jane Doe"' in content  # what was typed stays in the form
    assert "HX-Trigger" not in response
    assert not Lead.objects.filter(workspace=workspace).exists()


def test_add_lead_creates_a_manual_lead_in_the_first_stage(marketer, workspace):
    response = marketer.post(
        "/leads/new", {"name": "Jane Doe", "email": "Jane@Example.com", "company": "Acme", "title": "CTO", "tags": "Hot, referral,"}
    )

    assert response.status_code == 200
    lead = Lead.objects.get(workspace=workspace)
    assert (lead.name, lead.email, lead.company.name, lead.title) == ("Jane Doe", "jane@example.com", "Acme", "CTO")
    assert lead.source_type == "manual"
    assert lead.stage == stage_of(workspace, "New")
    assert tags_of(lead) == {"hot", "referral"}
    assert activity_types(lead) == [ActivityType.CREATED]
    assert LeadActivity.objects.get(lead=lead).actor == marketer.user
    assert leads_changed(response) == {"created": str(lead.pk)}
    assert "Added Jane Doe to New." in response.content.decode()
    assert "Jane Doe" in card_names(marketer.get(BOARD).content.decode())


def test_add_lead_to_another_pipeline_uses_its_first_stage(marketer, workspace):
    partners = make_pipeline(workspace, stage_names=("Intro", "Trial"))
    marketer.post("/leads/new", {"name": "Jane Doe", "pipeline": str(partners.pk)})
    lead = Lead.objects.get(workspace=workspace)
    assert (lead.pipeline_id, lead.stage.name) == (partners.pk, "Intro")


def test_add_lead_naming_another_workspaces_pipeline_uses_the_default(marketer, workspace, other_workspace):
    theirs = make_pipeline(other_workspace)
    marketer.post("/leads/new", {"name": "Jane Doe", "pipeline": str(theirs.pk)})
    lead = Lead.objects.get(workspace=workspace)
    assert lead.stage == stage_of(workspace, "New")
    assert not Lead.objects.filter(workspace=other_workspace).exists()


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.VIEWER])
def test_add_lead_is_refused_to_roles_without_manage(web_as, workspace, role):
    client = web_as(role)
    assert client.get("/leads/new").status_code == 403
    assert client.post("/leads/new", {"name": "Jane Doe"}).status_code == 403
    assert not Lead.objects.filter(workspace=workspace).exists()


# Move (drag and drop)


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.MARKETER])
def test_move_answers_json_and_logs_the_move(web_as, workspace, lead, role):
    client = web_as(role)
    qualified = stage_of(workspace, "Qualified")

    response = client.post(url(lead, "move"), {"stage": str(qualified.pk)})

    assert response.status_code == 200
    assert response.json() == {"ok": True, "leadId": str(lead.pk), "stageId": str(qualified.pk)}
    lead.refresh_from_db()
    assert lead.stage_id == qualified.pk
    moved = LeadActivity.objects.get(lead=lead, type=ActivityType.STAGE_MOVED)
    assert (moved.data["fromStage"], moved.data["toStage"], moved.actor) == ("New", "Qualified", client.user)


def test_move_to_a_stage_of_another_pipeline_moves_the_lead_there(marketer, workspace, lead):
    partners = make_pipeline(workspace)
    trial = partners.stages.get(name="Trial")
    assert marketer.post(url(lead, "move"), {"stage": str(trial.pk)}).json()["ok"] is True
    lead.refresh_from_db()
    assert (lead.pipeline_id, lead.stage_id) == (partners.pk, trial.pk)


def test_move_to_the_same_stage_logs_nothing(marketer, workspace, lead):
    response = marketer.post(url(lead, "move"), {"stage": str(lead.stage_id)})
    assert response.json()["ok"] is True
    assert activity_types(lead) == [ActivityType.CREATED]


@pytest.mark.parametrize("stage", ["unknown", "malformed", "missing", "foreign"])
def test_move_to_an_unknown_stage_is_a_json_400(marketer, workspace, other_workspace, lead, stage):
    data = {
        "unknown": {"stage": str(uuid.uuid4())},
        "malformed": {"stage": "not-a-uuid"},
        "missing": {},
        "foreign": {"stage": str(stage_of(other_workspace, "Won").pk)},
    }[stage]
    before = workspace_state(workspace)

    response = marketer.post(url(lead, "move"), data)

    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False
    assert body["error"]
    assert workspace_state(workspace) == before


def test_move_is_refused_to_a_viewer(viewer, workspace, lead):
    before = workspace_state(workspace)
    response = viewer.post(url(lead, "move"), {"stage": str(stage_of(workspace, "Won").pk)})
    assert response.status_code == 403
    assert workspace_state(workspace) == before


def test_move_of_a_deleted_lead_is_refused(marketer, workspace, lead):
    lead_delete(lead=lead, actor=None)
    response = marketer.post(url(lead, "move"), {"stage": str(stage_of(workspace, "Won").pk)})
    assert response.status_code == 404
    lead.refresh_from_db()
    assert lead.stage == stage_of(workspace, "New")


def test_move_needs_post(marketer, lead):
    assert marketer.get(url(lead, "move")).status_code == 405


# Edit


def test_edit_saves_the_fields_and_refreshes_the_board(marketer, workspace, lead):
    form = edit_form(
        name="Jane Smith",
        email="JANE@acme.com",
        phone="(415) 555-0100",
        company="Acme",
        title="CTO",
        department="IT",
        status="working",
        lifecycle_stage="mql",
    )

    response = marketer.post(url(lead, "edit"), form)

    assert response.status_code == 200
    assert leads_changed(response) is True
    lead.refresh_from_db()
    assert (lead.name, lead.email, lead.phone, lead.company.name, lead.title, lead.department, lead.status, lead.lifecycle_stage) == (
        "Jane Smith",
        "jane@acme.com",
        "+14155550100",
        "Acme",
        "CTO",
        "IT",
        "working",
        "mql",
    )
    update = LeadActivity.objects.get(lead=lead, type=ActivityType.FIELD_UPDATED)
    assert update.data["changes"]["name"] == {"from": "Jane Doe", "to": "Jane Smith"}
    assert '<h2 id="drawer-title">Jane Smith</h2>' in response.content.decode()


@pytest.mark.parametrize(
    ("change", "field"),
    [({"email": "not-an-email"}, "email"), ({"name": "   "}, "name"), ({"status": "bogus"}, "status")],
)
def test_invalid_edit_shows_the_error_and_changes_nothing(marketer, workspace, lead, change, field):
    before = workspace_state(workspace)
    response = marketer.post(url(lead, "edit"), edit_form(**{**change, "title": "CEO"}))
    assert response.status_code == 200
    assert "HX-Trigger" not in response
    content = response.content.decode()
    assert re.search(rf'<div class="field has-error">\s*<label for="id_{field}">', content)
    assert '<span class="field-error">' in content
    assert workspace_state(workspace) == before


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.VIEWER])
def test_edit_is_refused_to_roles_without_manage(web_as, workspace, lead, role):
    before = workspace_state(workspace)
    assert web_as(role).post(url(lead, "edit"), edit_form(name="Hijacked")).status_code == 403
    assert workspace_state(workspace) == before


# Stage (drawer)


def test_stage_from_the_drawer_moves_the_lead(rep, workspace, lead):
    response = rep.post(url(lead, "stage"), {"stage": str(stage_of(workspace, "Proposal").pk)})
    assert response.status_code == 200
    assert leads_changed(response) is True
    lead.refresh_from_db()
    assert lead.stage.name == "Proposal"
    content = response.content.decode()
    assert "Moved from New to Proposal" in content
    assert "Rex Ponds" in content


@pytest.mark.parametrize("stage", ["foreign", "malformed"])
def test_stage_from_the_drawer_refuses_an_unknown_stage(rep, workspace, other_workspace, lead, stage):
    stage_id = str(stage_of(other_workspace, "Won").pk) if stage == "foreign" else "nope"
    before = workspace_state(workspace)
    response = rep.post(url(lead, "stage"), {"stage": stage_id})
    assert "Choose a stage of this workspace." in response.content.decode()
    assert "HX-Trigger" not in response
    assert workspace_state(workspace) == before


def test_stage_from_the_drawer_is_refused_to_a_viewer(viewer, workspace, lead):
    before = workspace_state(workspace)
    assert viewer.post(url(lead, "stage"), {"stage": str(stage_of(workspace, "Won").pk)}).status_code == 403
    assert workspace_state(workspace) == before


# Notes


def test_note_is_added_with_its_author(rep, workspace, lead):
    response = rep.post(url(lead, "notes"), {"text": "  Called, no answer.\nTry again Friday.  "})
    assert response.status_code == 200
    note = Note.objects.get(lead=lead)
    assert (note.text, note.author) == ("Called, no answer.\nTry again Friday.", rep.user)
    assert re.search(r"<p>Called, no answer.<br>Try again Friday.</p><small>Rex Ponds · ", response.content.decode())
    assert ActivityType.NOTE_ADDED in activity_types(lead)


@pytest.mark.parametrize("text", ["", "   \n  "])
def test_empty_note_shows_an_error_and_creates_nothing(rep, workspace, lead, text):
    before = workspace_state(workspace)
    response = rep.post(url(lead, "notes"), {"text": text})
    assert response.status_code == 200
    assert '<span class="field-error">This field is required.</span>' in response.content.decode()
    assert workspace_state(workspace) == before


def test_note_is_refused_to_a_viewer(viewer, workspace, lead):
    before = workspace_state(workspace)
    assert viewer.post(url(lead, "notes"), {"text": "Hello"}).status_code == 403
    assert workspace_state(workspace) == before


# Tags


def test_tags_are_added_and_removed(marketer, workspace, lead):
    added = marketer.post(url(lead, "tags"), {"add": "Hot, Referral ,, "})
    assert added.status_code == 200
    assert leads_changed(added) is True
    assert tags_of(lead) == {"hot", "referral"}
    assert '<span class="tag">hot' in added.content.decode()

    removed = marketer.post(url(lead, "tags"), {"remove": "hot"})
    assert removed.status_code == 200
    assert tags_of(lead) == {"referral"}
    assert '<span class="tag">hot' not in removed.content.decode()
    tagged, untagged = (
        LeadActivity.objects.get(lead=lead, type=kind).data["tags"] for kind in (ActivityType.TAGGED, ActivityType.UNTAGGED)
    )
    assert (tagged, untagged) == (["hot", "referral"], ["hot"])


def test_more_than_50_tags_are_refused_with_the_error_shown(marketer, workspace, lead):
    before = workspace_state(workspace)
    response = marketer.post(url(lead, "tags"), {"add": ",".join(f"tag{n}" for n in range(51))})
    assert response.status_code in (200, 400)
    assert "A lead has at most 50 tags." in response.content.decode()
    assert "HX-Trigger" not in response
    assert workspace_state(workspace) == before


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.VIEWER])
def test_tags_are_refused_to_roles_without_manage(web_as, workspace, role):
    lead = make_lead(workspace, tags=["keep"])
    before = workspace_state(workspace)
    client = web_as(role)
    assert client.post(url(lead, "tags"), {"add": "hijacked"}).status_code == 403
    assert client.post(url(lead, "tags"), {"remove": "keep"}).status_code == 403
    assert workspace_state(workspace) == before


# Assign


def test_marketer_assigns_and_unassigns_any_member(marketer, rep, workspace, lead):
    response = marketer.post(url(lead, "assign"), {"owner": str(rep.user.pk)})
    assert response.status_code == 200
    assert leads_changed(response) is True
    lead.refresh_from_db()
    assert lead.owner == rep.user
    assert "<dd>Rex Ponds</dd>" in response.content.decode()

    marketer.post(url(lead, "assign"), {"owner": ""})
    lead.refresh_from_db()
    assert lead.owner is None


def test_sales_rep_may_assign_a_lead_to_themself(rep, workspace, lead):
    response = rep.post(url(lead, "assign"), {"owner": str(rep.user.pk)})
    assert response.status_code == 200
    lead.refresh_from_db()
    assert lead.owner == rep.user
    assert LeadActivity.objects.get(lead=lead, type=ActivityType.ASSIGNED).actor == rep.user


@pytest.mark.parametrize("target", ["colleague", "nobody"])
def test_sales_rep_may_not_assign_to_someone_else(rep, workspace, target):
    colleague = member(workspace, role=Role.SALES_REP).user
    lead = make_lead(workspace, owner=rep.user)
    before = workspace_state(workspace)

    response = rep.post(url(lead, "assign"), {"owner": str(colleague.pk) if target == "colleague" else ""})

    assert response.status_code == 403
    assert "Your role may only assign leads to yourself." in response.content.decode()
    assert workspace_state(workspace) == before


@pytest.mark.parametrize("owner", ["outsider", "abc"])
def test_assign_to_a_non_member_is_refused(marketer, workspace, lead, owner):
    owner_id = str(UserFactory().pk) if owner == "outsider" else owner
    before = workspace_state(workspace)
    response = marketer.post(url(lead, "assign"), {"owner": owner_id})
    assert "Choose a member of this workspace." in response.content.decode()
    assert "HX-Trigger" not in response
    assert workspace_state(workspace) == before


def test_assign_is_refused_to_a_viewer(viewer, workspace, lead):
    before = workspace_state(workspace)
    assert viewer.post(url(lead, "assign"), {"owner": str(viewer.user.pk)}).status_code == 403
    assert workspace_state(workspace) == before


# Convert


def test_convert_twice_makes_one_contact(rep, workspace, lead):
    first = rep.post(url(lead, "convert"), {"name": "Jane Contact"})
    second = rep.post(url(lead, "convert"), {"name": "Someone Else"})

    assert (first.status_code, second.status_code) == (200, 200)
    contact = Contact.objects.get(workspace=workspace)
    assert (contact.name, contact.email) == ("Jane Contact", "jane@example.com")
    lead.refresh_from_db()
    assert (lead.contact_id, lead.status) == (contact.pk, "converted")
    assert activity_types(lead).count(ActivityType.CONVERTED) == 1
    assert leads_changed(first) is True
    assert "Converted to contact <strong>Jane Contact</strong>." in second.content.decode()
    assert 'data-testid="convert"' not in second.content.decode()


def test_convert_is_refused_to_a_viewer(viewer, workspace, lead):
    before = workspace_state(workspace)
    assert viewer.post(url(lead, "convert")).status_code == 403
    assert workspace_state(workspace) == before


# Delete


def test_delete_is_soft_and_takes_the_lead_off_the_board(marketer, workspace, lead):
    response = marketer.post(url(lead, "delete"))

    assert response.status_code == 200
    assert "Jane Doe was deleted." in response.content.decode()
    assert leads_changed(response) == {"deleted": str(lead.pk)}
    lead.refresh_from_db()
    assert lead.deleted_at is not None
    assert activity_types(lead) == [ActivityType.CREATED, ActivityType.DELETED]
    assert "Jane Doe" not in card_names(marketer.get(BOARD).content.decode())
    assert marketer.get(url(lead)).status_code == 404
    assert marketer.post(url(lead, "delete")).status_code == 404


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.VIEWER])
def test_delete_is_refused_to_roles_without_manage(web_as, workspace, lead, role):
    before = workspace_state(workspace)
    assert web_as(role).post(url(lead, "delete")).status_code == 403
    assert workspace_state(workspace) == before


# Bulk


@pytest.fixture
def three_leads(workspace):
    return [make_lead(workspace, name=f"Bulk {n}") for n in range(3)]


@pytest.fixture
def their_lead(other_workspace):
    return make_lead(other_workspace, name="Their Lead")


def bulk(client, action: str, leads, **data):
    return client.post("/leads/bulk", {"action": action, "lead": [str(lead.pk) for lead in leads], **data})


def test_bulk_move_stage(marketer, workspace, other_workspace, three_leads, their_lead):
    first, second, untouched = three_leads
    before_theirs = workspace_state(other_workspace)
    won = stage_of(workspace, "Won")

    response = bulk(marketer, "move_stage", [first, second, their_lead], stage=str(won.pk))

    assert response.status_code == 200
    assert "2 of 3 leads updated." in response.content.decode()
    assert leads_changed(response) is True
    assert set(Lead.objects.filter(stage=won).values_list("pk", flat=True)) == {first.pk, second.pk}
    untouched.refresh_from_db()
    assert untouched.stage.name == "New"
    assert workspace_state(other_workspace) == before_theirs


def test_bulk_assign_and_unassign(marketer, rep, workspace, other_workspace, three_leads, their_lead):
    before_theirs = workspace_state(other_workspace)
    response = bulk(marketer, "assign", [*three_leads[:2], their_lead], owner=str(rep.user.pk))
    assert "2 of 3 leads updated." in response.content.decode()
    assert [lead.owner_id for lead in Lead.objects.filter(pk__in=[x.pk for x in three_leads]).order_by("name")] == [
        rep.user.pk,
        rep.user.pk,
        None,
    ]
    bulk(marketer, "assign", three_leads[:1], owner="")
    assert Lead.objects.get(pk=three_leads[0].pk).owner is None
    assert workspace_state(other_workspace) == before_theirs


def test_bulk_tag(marketer, workspace, other_workspace, three_leads, their_lead):
    before_theirs = workspace_state(other_workspace)
    response = bulk(marketer, "tag", [*three_leads[:2], their_lead], tags="VIP, hot")
    assert "2 of 3 leads updated." in response.content.decode()
    assert [tags_of(lead) for lead in three_leads] == [{"hot", "vip"}, {"hot", "vip"}, set()]
    assert workspace_state(other_workspace) == before_theirs


def test_bulk_delete(marketer, workspace, other_workspace, three_leads, their_lead):
    before_theirs = workspace_state(other_workspace)
    response = bulk(marketer, "delete", [*three_leads[:2], their_lead])
    assert "2 of 3 leads updated." in response.content.decode()
    assert set(Lead.objects.filter(workspace=workspace, deleted_at__isnull=True).values_list("name", flat=True)) == {"Bulk 2"}
    assert card_names(marketer.get(BOARD).content.decode()) == {"Bulk 2"}
    assert workspace_state(other_workspace) == before_theirs


@pytest.mark.parametrize(
    ("action", "extra", "message"),
    [
        ("move_stage", {"stage": "foreign"}, "Choose a stage."),
        ("assign", {"owner": "outsider"}, "Choose a member of this workspace."),
        ("tag", {"tags": " , "}, "tag needs at least one tag."),
        ("explode", {}, "Choose one of: move_stage, assign, delete, tag."),
    ],
)
def test_bulk_refuses_bad_input_and_changes_nothing(marketer, workspace, other_workspace, three_leads, action, extra, message):
    if extra.get("stage") == "foreign":
        extra = {"stage": str(stage_of(other_workspace, "Won").pk)}
    if extra.get("owner") == "outsider":
        extra = {"owner": str(member(other_workspace).user.pk)}
    before = workspace_state(workspace)
    response = bulk(marketer, action, three_leads, **extra)
    assert message in response.content.decode()
    assert "HX-Trigger" not in response
    assert workspace_state(workspace) == before


def test_bulk_without_selected_leads_says_so(marketer, workspace):
    response = bulk(marketer, "delete", [])
    assert "Select at least one lead." in response.content.decode()


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.VIEWER])
def test_bulk_is_refused_to_roles_without_manage(web_as, workspace, three_leads, role):
    before = workspace_state(workspace)
    client = web_as(role)
    for action, extra in [("delete", {}), ("move_stage", {"stage": str(stage_of(workspace, "Won").pk)}), ("tag", {"tags": "x"})]:
        assert bulk(client, action, three_leads, **extra).status_code == 403
    assert workspace_state(workspace) == before


# CSRF


CSRF_ACTIONS = {
    "new": lambda lead, ws: ("/leads/new", {"name": "Sneaky Lead"}),
    "move": lambda lead, ws: (url(lead, "move"), {"stage": str(stage_of(ws, "Won").pk)}),
    "edit": lambda lead, ws: (url(lead, "edit"), edit_form(name="Sneaky")),
    "stage": lambda lead, ws: (url(lead, "stage"), {"stage": str(stage_of(ws, "Won").pk)}),
    "notes": lambda lead, ws: (url(lead, "notes"), {"text": "Sneaky"}),
    "tags": lambda lead, ws: (url(lead, "tags"), {"add": "sneaky"}),
    "assign": lambda lead, ws: (url(lead, "assign"), {"owner": str(ws.memberships.first().user_id)}),
    "convert": lambda lead, ws: (url(lead, "convert"), {}),
    "delete": lambda lead, ws: (url(lead, "delete"), {}),
    "bulk": lambda lead, ws: ("/leads/bulk", {"action": "delete", "lead": [str(lead.pk)]}),
}


@pytest.mark.parametrize("with_token", [False, True], ids=["without-token", "with-token"])
@pytest.mark.parametrize("action", list(CSRF_ACTIONS))
def test_posts_need_the_csrf_token(workspace, lead, action, with_token):
    client = web_client(member(workspace, role=Role.MARKETER).user, csrf_checks=True)
    path, data = CSRF_ACTIONS[action](lead, workspace)
    headers = {}
    if with_token:
        client.get(BOARD)  # the page sets the cookie; htmx sends the token in X-CSRFToken
        headers = {"X-CSRFToken": client.cookies["csrftoken"].value}
    before = workspace_state(workspace)

    response = client.post(path, data, headers=headers)

    if with_token:
        assert response.status_code == 200
        assert workspace_state(workspace) != before
    else:
        assert response.status_code == 403
        assert workspace_state(workspace) == before


# Escaping


def test_lead_data_is_escaped_on_the_board_and_in_the_drawer(marketer, workspace):
    lead = make_lead(
        workspace,
        name=XSS,
        company={"name": "<script>alert(2)</script>"},
        custom_fields={"<b>Key</b>": "<svg onload=alert(3)>"},
        tags=["<i>tag</i>"],
    )
    lead_note_add(lead=lead, author=marketer.user, text="<iframe src=javascript:alert(4)>")

    board = marketer.get(BOARD).content.decode()
    drawer = marketer.get(url(lead)).content.decode()

    assert f'<span class="name">{XSS_ESCAPED}</span>' in board
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in board
    assert "&lt;i&gt;tag&lt;/i&gt;" in board
    for raw in (XSS, "<script>alert(2)", "<i>tag"):
        assert raw not in board
    assert f'<h2 id="drawer-title">{XSS_ESCAPED}</h2>' in drawer
    assert "<dt>&lt;b&gt;Key&lt;/b&gt;</dt><dd>&lt;svg onload=alert(3)&gt;</dd>" in drawer
    assert "&lt;iframe src=javascript:alert(4)&gt;" in drawer
    for raw in ("<img", "<script", "<svg", "<b>", "<i>", "<iframe"):
        assert raw not in drawer


def test_added_and_deleted_messages_escape_the_name(marketer, workspace):
    added = marketer.post("/leads/new", {"name": XSS}).content.decode()
    assert f"Added {XSS_ESCAPED} to New." in added
    assert "<img" not in added
    deleted = marketer.post(url(Lead.objects.get(workspace=workspace), "delete")).content.decode()
    assert f"{XSS_ESCAPED} was deleted." in deleted
    assert "<img" not in deleted


# Workspace switching


@pytest.fixture
def two_workspaces(db):
    alpha, beta = WorkspaceFactory(slug="alpha-team"), WorkspaceFactory(slug="beta-team")
    user = UserFactory()
    member(alpha, role=Role.MARKETER, user=user)
    member(beta, role=Role.VIEWER, user=user)
    return {
        "alpha": alpha,
        "beta": beta,
        "alpha_lead": make_lead(alpha, name="Alpha Lead"),
        "beta_lead": make_lead(beta, name="Beta Lead"),
        "user": user,
        "client": web_client(user),
    }


def shown_workspace(client) -> tuple[str, set[str]]:
    content = client.get(BOARD).content.decode()
    return WORKSPACE_NAME.search(content).group(1), card_names(content)


def test_switching_workspace_shows_the_other_workspaces_leads(two_workspaces):
    client, beta = two_workspaces["client"], two_workspaces["beta"]
    assert shown_workspace(client) == ("Alpha Team", {"Alpha Lead"})
    assert f'<option value="{beta.pk}">Beta Team</option>' in client.get(BOARD).content.decode()

    response = client.post("/workspace/switch", {"workspace": str(beta.pk)})

    assert response.status_code == 302
    assert response["Location"] == BOARD
    assert shown_workspace(client) == ("Beta Team", {"Beta Lead"})
    assert client.get(url(two_workspaces["alpha_lead"])).status_code == 404
    assert client.get(url(two_workspaces["beta_lead"])).status_code == 200


def test_after_switching_the_role_of_the_new_workspace_applies(two_workspaces):
    client, beta, beta_lead = two_workspaces["client"], two_workspaces["beta"], two_workspaces["beta_lead"]
    assert 'id="add-lead-button"' in client.get(BOARD).content.decode()  # Marketer in Alpha
    client.post("/workspace/switch", {"workspace": str(beta.pk)})
    assert 'id="add-lead-button"' not in client.get(BOARD).content.decode()  # Viewer in Beta
    response = client.post(url(beta_lead, "move"), {"stage": str(stage_of(beta, "Won").pk)})
    assert response.status_code == 403
    beta_lead.refresh_from_db()
    assert beta_lead.stage.name == "New"


@pytest.mark.parametrize("target", ["not-a-member", "malformed", "missing"])
def test_switching_to_a_workspace_one_is_not_a_member_of_keeps_the_current_one(two_workspaces, target):
    client = two_workspaces["client"]
    client.post("/workspace/switch", {"workspace": str(two_workspaces["beta"].pk)})
    outsider = WorkspaceFactory(slug="gamma-team")
    make_lead(outsider, name="Gamma Lead")
    data = {"not-a-member": {"workspace": str(outsider.pk)}, "malformed": {"workspace": "nope"}, "missing": {}}[target]

    response = client.post("/workspace/switch", data)

    assert response.status_code == 302
    assert shown_workspace(client) == ("Beta Team", {"Beta Lead"})


def test_switching_workspace_needs_the_csrf_token(two_workspaces):
    client = web_client(two_workspaces["user"], csrf_checks=True)
    response = client.post("/workspace/switch", {"workspace": str(two_workspaces["beta"].pk)})
    assert response.status_code == 403
    assert shown_workspace(client) == ("Alpha Team", {"Alpha Lead"})


def test_switching_workspace_needs_a_signed_in_user(two_workspaces):
    response = Client().post("/workspace/switch", {"workspace": str(two_workspaces["beta"].pk)})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
