"""Lead services: one write path, an activity with every change, no half-written state."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from leads.models import ActivityType, Company, Contact, Lead, LeadActivity
from leads.services import lead_convert, lead_create, lead_delete, lead_stage_move, lead_update, leads_bulk_action
from pipelines.models import Stage
from tests.leads.factories import make_lead
from tests.workspaces.factories import WorkspaceFactory


def test_company_is_shared_by_domain_then_name(workspace):
    first = make_lead(workspace, company={"name": "Acme Corp", "domain": "acme.com"})
    second = make_lead(workspace, company={"name": "ACME CORP"})
    third = make_lead(workspace, company={"name": "Acme (US)", "domain": "ACME.com", "industry": "Tech"})
    assert first.company_id == second.company_id == third.company_id
    company = Company.objects.get()
    assert company.industry == "Tech"  # an empty attribute is filled, a set one is kept


def test_companies_are_per_workspace(workspace, other_workspace):
    make_lead(workspace, company={"name": "Acme"})
    make_lead(other_workspace, company={"name": "Acme"})
    assert Company.objects.count() == 2


def test_create_writes_exactly_one_created_activity(workspace):
    lead = make_lead(workspace)
    assert list(LeadActivity.objects.filter(lead=lead).values_list("type", flat=True)) == [ActivityType.CREATED]


def test_stage_from_another_workspace_is_refused(workspace, other_workspace):
    foreign = Stage.objects.filter(workspace=other_workspace).first()
    with pytest.raises(ValidationError):
        lead_create(workspace=workspace, actor=None, data={"name": "X", "stage": foreign})
    assert not Lead.objects.filter(workspace=workspace).exists()

    lead = make_lead(workspace)
    with pytest.raises(ValidationError):
        lead_stage_move(lead=lead, stage=foreign, actor=None)
    lead.refresh_from_db()
    assert lead.stage.workspace_id == workspace.pk


def test_deleted_lead_refuses_changes(workspace):
    lead = make_lead(workspace)
    lead_delete(lead=lead, actor=None)
    with pytest.raises(ValidationError):
        lead_update(lead=lead, actor=None, data={"title": "CEO"})
    with pytest.raises(ValidationError):
        lead_convert(lead=lead, actor=None)
    assert not Contact.objects.exists()


def test_delete_twice_logs_once(workspace):
    lead = make_lead(workspace)
    lead_delete(lead=lead, actor=None)
    lead_delete(lead=lead, actor=None)
    assert LeadActivity.objects.filter(lead=lead, type=ActivityType.DELETED).count() == 1


def test_convert_links_by_phone(workspace):
    existing = Contact.objects.create(workspace=workspace, name="J", phone="+14155550100")
    lead = make_lead(workspace, email="", phone="(415) 555-0100")
    contact, created = lead_convert(lead=lead, actor=None)
    assert (contact.pk, created) == (existing.pk, False)


def test_convert_never_links_another_workspaces_contact(workspace, other_workspace):
    Contact.objects.create(workspace=other_workspace, name="J", email="jane@acme.com")
    lead = make_lead(workspace, email="jane@acme.com")
    contact, created = lead_convert(lead=lead, actor=None)
    assert created and contact.workspace_id == workspace.pk


def test_bulk_action_ignores_other_workspaces_leads(workspace, other_workspace):
    mine, theirs = make_lead(workspace), make_lead(other_workspace)
    result = leads_bulk_action(workspace=workspace, actor=None, action="delete", lead_ids=[str(mine.pk), str(theirs.pk)])
    assert result["updated"] == 1 and result["notFound"] == [str(theirs.pk)]
    theirs.refresh_from_db()
    assert theirs.deleted_at is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_click_convert_creates_one_contact():
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    workspace = WorkspaceFactory()
    lead = make_lead(workspace, email="race@example.com")
    barrier = threading.Barrier(4)
    results = []

    def convert():
        barrier.wait()
        try:
            results.append(lead_convert(lead=Lead.objects.get(pk=lead.pk), actor=None)[0].pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=convert) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert Contact.objects.filter(workspace=workspace).count() == 1
    assert LeadActivity.objects.filter(lead=lead, type=ActivityType.CONVERTED).count() == 1
