"""The lead search through each way a lead's text is written: created one at a time, imported in
bulk (COPY), edited, deleted; and a company renamed. On PostgreSQL the search reads lead_search,
kept by triggers, so each path must reach it; on SQLite it reads the leads themselves.

lead_search also holds each lead's source and tag ids, which narrow a search that is filtered by
them; the tests with a tag or a source follow those through tagging, untagging, a bulk tag, a merge
and a changed source."""

import io

import pytest
from django.db import connection

from leads.imports import leads_import_csv
from leads.models import Company, Lead, LeadSearchEntry
from leads.services import lead_merge, lead_tags_change, lead_update, leads_bulk_action
from tests.leads.factories import make_lead

pytestmark = pytest.mark.django_db


def found(api, term: str, **filters) -> list[str]:
    response = api.get("/api/v1/leads", {"search": term, **filters})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == len(body["results"])
    return sorted(lead["name"] for lead in body["results"])


def test_imported_leads_are_found_by_name_email_and_phone(api, workspace):
    rows = "Full Name,Email,Phone\nIrma Imported,irma@bulk.example,+1 415 555 0177\nOtto Other,otto@else.example,\n"
    report = leads_import_csv(workspace=workspace, actor=None, file=io.BytesIO(rows.encode()))
    assert report["created"] == 2

    assert found(api, "irma imp") == ["Irma Imported"]
    assert found(api, "@BULK.") == ["Irma Imported"]
    assert found(api, "5550177") == ["Irma Imported"]


def test_an_edited_lead_is_found_by_its_new_text_only(api, workspace):
    lead = make_lead(workspace, name="Edna Before", email="edna@old.example", phone="+14155550101")
    lead_update(lead=lead, actor=None, data={"name": "Edna After", "email": "edna@new.example", "phone": "+14155550202"})

    assert found(api, "new.example") == ["Edna After"]
    assert found(api, "5550202") == ["Edna After"]
    assert found(api, "after") == ["Edna After"]
    assert found(api, "old.example") == []
    assert found(api, "5550101") == []
    assert found(api, "before") == []


def test_a_score_change_keeps_the_lead_findable(api, workspace):
    lead = make_lead(workspace, name="Sam Score", email="sam@score.example")
    Lead.objects.filter(pk=lead.pk).update(score=77)  # a write that leaves the searched text alone
    assert found(api, "sam score") == ["Sam Score"]


def test_a_renamed_company_finds_its_leads_by_the_new_name(api, workspace):
    make_lead(workspace, name="Cora Company", email="cora@x.example", company={"name": "Oldname Inc"})
    Company.objects.filter(workspace=workspace, name="Oldname Inc").update(name="Newname Inc")

    assert found(api, "newname") == ["Cora Company"]
    assert found(api, "oldname") == []


def test_deleted_leads_are_not_found_and_leave_no_search_text(api, workspace):
    kept = make_lead(workspace, name="Kim Kept", email="kim@gone.example")
    hard = make_lead(workspace, name="Hal Hard", email="hal@gone.example")
    soft = make_lead(workspace, name="Sue Soft", email="sue@gone.example")
    Lead.objects.filter(pk=soft.pk).update(deleted_at=kept.created_at)
    Lead.objects.filter(pk=hard.pk).delete()

    assert found(api, "gone.example") == ["Kim Kept"]
    if connection.vendor == "postgresql":
        assert set(LeadSearchEntry.objects.values_list("lead_id", flat=True)) == {kept.pk, soft.pk}


def test_tags_added_and_removed_narrow_a_search(api, workspace):
    tia = make_lead(workspace, name="Tia Tagged", email="tia@tags.example")
    tom = make_lead(workspace, name="Tom Tagged", email="tom@tags.example", tags=["cold"])
    assert found(api, "tags.example", tag="hot") == []

    lead_tags_change(lead=tia, actor=None, add=["HOT"])
    assert found(api, "tags.example", tag="hot") == ["Tia Tagged"]

    leads_bulk_action(workspace=workspace, actor=None, action="tag", lead_ids=[str(tom.pk)], tags=["hot"])
    assert found(api, "tags.example", tag="hot") == ["Tia Tagged", "Tom Tagged"]
    assert found(api, "tags.example", tag="cold") == ["Tom Tagged"]

    lead_tags_change(lead=tia, actor=None, remove=["hot"])
    assert found(api, "tags.example", tag="hot") == ["Tom Tagged"]
    assert found(api, "tags.example", tag="no-such-tag") == []
    # With a source as well, the search alone decides on PostgreSQL (search_applies_source_and_tag).
    assert found(api, "tags.example", tag="hot", source="manual") == ["Tom Tagged"]
    assert found(api, "tags.example", tag="cold", source="manual") == ["Tom Tagged"]
    assert found(api, "tags.example", tag="hot", source="webhook") == []


def test_a_merged_leads_tags_narrow_a_search_for_the_survivor(api, workspace):
    survivor = make_lead(workspace, name="Mona Merged", email="mona@merge.example")
    other = make_lead(workspace, name="Mona Duplicate", email="mona@elsewhere.example", tags=["vip"])
    lead_merge(survivor=survivor, other=other, actor=None)

    assert found(api, "mona@merge", tag="vip") == ["Mona Merged"]


def test_a_changed_source_narrows_a_search(api, workspace):
    lead = make_lead(workspace, name="Sid Source", email="sid@source.example", source_type="import")
    assert found(api, "sid@", source="import") == ["Sid Source"]

    lead_update(lead=lead, actor=None, data={"source_type": "webhook"})
    assert found(api, "sid@", source="webhook") == ["Sid Source"]
    assert found(api, "sid@", source="import") == []
    Lead.objects.filter(pk=lead.pk).update(source_type="form")  # a raw write reaches it too
    assert found(api, "sid@", source="form") == ["Sid Source"]
    lead_tags_change(lead=lead, actor=None, add=["vip"])
    assert found(api, "sid@", source="form", tag="vip") == ["Sid Source"]
    assert found(api, "sid@", source="webhook", tag="vip") == []
