"""The Django admin ops staff use: every model is there, pages render, and staff see only their workspaces."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient

from integrations.models import LeadWebhook, WebhookSubmission
from integrations.services import submission_ingest, webhook_create
from leads.models import ActivityType, Company, ConsentRecord, Contact, FailedJob, Lead, LeadActivity, Note, Tag
from leads.services import lead_convert, lead_note_add, lead_stage_move
from pipelines.models import Pipeline, Stage
from tests.leads.factories import make_lead
from tests.pipelines.factories import make_pipeline
from tests.workspaces.factories import UserFactory, member, token_for
from workspaces.models import ApiToken, Membership, Role, User, Workspace

ALL_MODELS = [
    User, Workspace, Membership, ApiToken, Pipeline, Stage, Lead, Company, Contact, Tag, Note, LeadActivity,
    ConsentRecord, FailedJob, LeadWebhook, WebhookSubmission,
]  # fmt: skip


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(email="ops@example.com", password="ops-pass-123")


@pytest.fixture
def su_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def full_data(workspace):
    """One row of every model, made the way the product makes them."""
    membership = member(workspace, role=Role.MARKETER)
    token_for(membership)
    lead = make_lead(
        workspace,
        actor=membership.user,
        name="Jane Doe",
        email="jane@acme.com",
        phone="+14155550134",
        company={"name": "Acme Corp", "domain": "acme.com"},
        tags=["hot"],
    )
    lead_stage_move(lead=lead, stage=Stage.objects.get(workspace=workspace, name="Qualified"), actor=membership.user)
    lead_note_add(lead=lead, author=membership.user, text="Called, left a voicemail.")
    lead_convert(lead=lead, actor=membership.user)
    make_pipeline(workspace)
    webhook, _ = webhook_create(workspace=workspace, name="Landing Page Form")
    submission_ingest(webhook=webhook, payload={"email": "form@acme.com", "consent": {"sms": True}}, raw_body=b"{}")
    FailedJob.objects.create(workspace=workspace, lead=lead, task_name="leads.tasks.process_lead", args=[str(lead.pk)], error="boom")
    lead.refresh_from_db()
    return lead


def test_every_model_is_registered():
    missing = [model.__name__ for model in ALL_MODELS if not admin.site.is_registered(model)]
    assert missing == []


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_page_render_for_a_superuser(su_client, full_data, model):
    assert model._default_manager.exists(), f"no {model.__name__} to show"
    response = su_client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    obj = model._default_manager.first()
    assert str(obj) in response.content.decode()

    change = su_client.get(admin_url(model, "change", obj.pk))
    assert change.status_code == 200


def test_lead_changelist_search_and_filters_render(su_client, full_data):
    url = admin_url(Lead, "changelist")
    found = su_client.get(url, {"q": "jane@acme.com"})
    assert found.status_code == 200
    assert "Jane Doe" in found.content.decode()
    filtered = su_client.get(url, {"stage__id__exact": str(full_data.stage_id), "source_type__exact": "manual"})
    assert filtered.status_code == 200
    assert "Jane Doe" in filtered.content.decode()


# Audit log and tokens


def test_lead_activity_cannot_be_added_or_edited(su_client, full_data):
    activity = LeadActivity.objects.filter(lead=full_data, type=ActivityType.STAGE_MOVED).get()
    before = (activity.type, activity.data)

    assert su_client.get(admin_url(LeadActivity, "add")).status_code == 403
    response = su_client.post(admin_url(LeadActivity, "add"), {"type": "converted", "lead": str(full_data.pk)})
    assert response.status_code == 403

    change = su_client.post(
        admin_url(LeadActivity, "change", activity.pk), {"type": ActivityType.DELETED, "data": "{}", "lead": str(full_data.pk)}
    )
    assert change.status_code == 403
    activity.refresh_from_db()
    assert (activity.type, activity.data) == before
    assert LeadActivity.objects.filter(lead=full_data).count() == 4
    page = su_client.get(admin_url(LeadActivity, "change", activity.pk)).content.decode()
    assert 'name="_save"' not in page


def test_api_token_cannot_be_added_in_admin(su_client, workspace):
    assert su_client.get(admin_url(ApiToken, "add")).status_code == 403
    response = su_client.post(admin_url(ApiToken, "add"), {"name": "forged", "membership": str(Membership.objects.first().pk)})
    assert response.status_code == 403
    assert not ApiToken.objects.exists()
    changelist = su_client.get(admin_url(ApiToken, "changelist")).content.decode()
    assert admin_url(ApiToken, "add") not in changelist


def test_revoke_action_revokes_the_selected_tokens_only(su_client, workspace):
    doomed_membership, kept_membership = member(workspace), member(workspace)
    doomed_raw, kept_raw = token_for(doomed_membership), token_for(kept_membership)
    doomed = ApiToken.objects.get(membership=doomed_membership)

    response = su_client.post(admin_url(ApiToken, "changelist"), {"action": "revoke", "_selected_action": [str(doomed.pk)]}, follow=True)

    assert response.status_code == 200
    assert "Revoked 1 token" in response.content.decode()
    doomed.refresh_from_db()
    assert doomed.revoked_at is not None
    assert ApiToken.objects.get(membership=kept_membership).revoked_at is None
    api = APIClient()
    assert api.get("/api/v1/leads", HTTP_AUTHORIZATION=f"Bearer {doomed_raw}").status_code == 401
    assert api.get("/api/v1/leads", HTTP_AUTHORIZATION=f"Bearer {kept_raw}").status_code == 200


# Staff scoped to their workspaces


@pytest.fixture
def two_workspaces(workspace, other_workspace):
    """Workspace A (administered by the staff user) and B (where they are only a Viewer), each with a
    lead and a second pipeline named so a leak is easy to spot."""
    Workspace.objects.filter(pk=workspace.pk).update(name="Alpha Works")
    Workspace.objects.filter(pk=other_workspace.pk).update(name="Bravo Holdings")
    a_pipeline = make_pipeline(workspace, name="Alpha Partners")
    b_pipeline = make_pipeline(other_workspace, name="Bravo Partners")
    a_lead = make_lead(workspace, name="Alice Alpha", stage=a_pipeline.stages.first())
    b_lead = make_lead(other_workspace, name="Bob Bravo", stage=b_pipeline.stages.first())
    return a_lead, b_lead


@pytest.fixture
def staff_client(client, workspace, other_workspace):
    """A staff user who is Admin of workspace A and Viewer of B, with the model permissions an ops group gives."""
    staff = UserFactory(is_staff=True)
    member(workspace, role=Role.ADMIN, user=staff)
    member(other_workspace, role=Role.VIEWER, user=staff)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["leads", "pipelines"]))
    client.force_login(staff)
    return client


def test_staff_admin_sees_only_their_workspaces_leads_and_pipelines(staff_client, two_workspaces, workspace):
    a_lead, _ = two_workspaces

    leads = staff_client.get(admin_url(Lead, "changelist"))
    assert leads.status_code == 200
    assert [lead.pk for lead in leads.context["cl"].result_list] == [a_lead.pk]
    assert "Alice Alpha" in leads.content.decode()
    assert "Bob Bravo" not in leads.content.decode()

    pipelines = staff_client.get(admin_url(Pipeline, "changelist"))
    assert pipelines.status_code == 200
    shown = {p.name for p in pipelines.context["cl"].result_list}
    assert shown == {"Sales Pipeline", "Alpha Partners"}
    assert {p.workspace_id for p in pipelines.context["cl"].result_list} == {workspace.pk}
    assert "Bravo Partners" not in pipelines.content.decode()


def test_staff_admin_can_open_their_own_lead(staff_client, two_workspaces):
    a_lead, _ = two_workspaces
    response = staff_client.get(admin_url(Lead, "change", a_lead.pk))
    assert response.status_code == 200
    assert "Alice Alpha" in response.content.decode()


def test_staff_admin_cannot_open_or_change_another_workspaces_lead(staff_client, two_workspaces):
    _, b_lead = two_workspaces

    response = staff_client.get(admin_url(Lead, "change", b_lead.pk))
    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert str(b_lead.pk) not in response["Location"]
    assert "Bob Bravo" not in response.content.decode()

    staff_client.post(admin_url(Lead, "change", b_lead.pk), {"name": "Hijacked"})
    staff_client.post(admin_url(Lead, "delete", b_lead.pk), {"post": "yes"})
    b_lead.refresh_from_db()
    assert b_lead.name == "Bob Bravo"


def test_staff_admin_lead_filters_do_not_list_other_workspaces(staff_client, two_workspaces):
    page = staff_client.get(admin_url(Lead, "changelist")).content.decode()
    assert "Alpha Partners" in page
    leaked = [name for name in ("Bravo Holdings", "Bravo Partners") if name in page]
    assert leaked == []


def test_workspace_admin_needs_no_model_permissions_to_administer_their_workspace(client, two_workspaces, workspace, other_workspace):
    staff = UserFactory(is_staff=True)
    member(workspace, role=Role.SUPER_ADMIN, user=staff)
    client.force_login(staff)
    a_lead, _ = two_workspaces

    index = client.get(reverse("admin:index"))
    assert index.status_code == 200 and "Leads" in index.content.decode()
    changelist = client.get(admin_url(Lead, "changelist"))
    assert [lead.pk for lead in changelist.context["cl"].result_list] == [a_lead.pk]
    assert client.get(admin_url(Workspace, "change", workspace.pk)).status_code == 200
    assert client.get(admin_url(Workspace, "change", other_workspace.pk)).status_code == 302  # not theirs: sent away


def test_staff_who_administer_no_workspace_see_nothing(client, two_workspaces, workspace):
    staff = UserFactory(is_staff=True)
    member(workspace, role=Role.SALES_REP, user=staff)
    client.force_login(staff)
    assert client.get(admin_url(Lead, "changelist")).status_code == 403


def _lead_form(lead, **changes):
    data = {
        "name": lead.name,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "email": lead.email,
        "phone": lead.phone,
        "title": lead.title,
        "department": lead.department,
        "stage": str(lead.stage_id),
        "owner": str(lead.owner_id or ""),
        "status": lead.status,
        "lifecycle_stage": lead.lifecycle_stage,
        "source_type": lead.source_type,
        "custom_fields": "{}",
        **{f: "" for f in ("source_campaign", "source_medium", "source_referrer", "source_landing_url")},
        **{f: "" for f in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")},
    }
    for prefix in ("lead_tags", "notes", "activities"):
        data.update(
            {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0", f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "0"}
        )
    data.update(changes)
    return data


def test_a_lead_edited_in_admin_is_logged_like_any_change(su_client, workspace, superuser):
    lead = make_lead(workspace, name="Jane", title="CTO")
    won = Stage.objects.get(workspace=workspace, pipeline__is_default=True, name="Won")
    response = su_client.post(admin_url(Lead, "change", lead.pk), _lead_form(lead, title="CEO", stage=str(won.pk)))
    assert response.status_code == 302, response.content.decode()[:2000]
    lead.refresh_from_db()
    assert (lead.title, lead.stage_id) == ("CEO", won.pk)
    updated = LeadActivity.objects.get(lead=lead, type=ActivityType.FIELD_UPDATED)
    assert updated.data["changes"]["title"] == {"from": "CTO", "to": "CEO"} and updated.actor == superuser
    assert LeadActivity.objects.filter(lead=lead, type=ActivityType.STAGE_MOVED).count() == 1


def test_admin_refuses_a_stage_or_owner_from_another_workspace(su_client, workspace, other_workspace):
    lead = make_lead(workspace)
    foreign_stage = Stage.objects.filter(workspace=other_workspace).first()
    outsider = member(other_workspace, role=Role.MARKETER).user
    response = su_client.post(admin_url(Lead, "change", lead.pk), _lead_form(lead, stage=str(foreign_stage.pk), owner=str(outsider.pk)))
    assert response.status_code == 200  # the form again, with errors
    errors = response.context["adminform"].form.errors
    assert "stage" in errors and "owner" in errors
    lead.refresh_from_db()
    assert lead.stage.workspace_id == workspace.pk and lead.owner is None


def test_workspace_admin_cannot_add_another_tenants_user_as_member(client, workspace, other_workspace):
    staff = UserFactory(is_staff=True)
    member(workspace, role=Role.ADMIN, user=staff)
    outsider = member(other_workspace, role=Role.VIEWER).user
    client.force_login(staff)
    response = client.post(admin_url(Membership, "add"), {"workspace": str(workspace.pk), "user": str(outsider.pk), "role": "viewer"})
    assert response.status_code == 200
    assert "user" in response.context["adminform"].form.errors
    assert not Membership.objects.filter(workspace=workspace, user=outsider).exists()


def test_pipeline_admin_deletes_through_the_service_moving_leads(su_client, workspace):
    partners = make_pipeline(workspace, name="Partners")
    lead = make_lead(workspace, stage=partners.stages.first())
    default = Pipeline.objects.get(workspace=workspace, is_default=True)
    response = su_client.post(
        admin_url(Pipeline, "changelist"),
        {"action": "delete_moving_leads", "_selected_action": [str(partners.pk), str(default.pk)]},
    )
    assert response.status_code == 302
    assert not Pipeline.objects.filter(pk=partners.pk).exists()
    assert Pipeline.objects.filter(pk=default.pk).exists()  # the default cannot be deleted
    lead.refresh_from_db()
    assert lead.pipeline_id == default.pk and lead.stage.name == "New"


def test_an_import_jobs_page_shows_its_parts(su_client, workspace):
    from leads.models import ImportJob, ImportJobPart

    job = ImportJob.objects.create(workspace=workspace, file_name="a.csv", original_name="people.csv", rows=12000, status="running")
    ImportJobPart.objects.create(job=job, index=0, file_name="a.part0.jsonl", rows=6001, status="done")
    ImportJobPart.objects.create(job=job, index=1, file_name="a.part1.jsonl", rows=5999, status="running")
    page = su_client.get(admin_url(ImportJob, "change", job.pk)).content.decode()
    assert "6001" in page and "5999" in page and "Running" in page
