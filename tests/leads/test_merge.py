"""POST /api/v1/leads/{id}/merge: folding a duplicate into the lead that stays."""

import uuid

import pytest

from leads.models import ActivityType, ConsentRecord, Lead, LeadActivity, Note
from leads.services import lead_note_add
from pipelines.models import Stage
from tests.leads.factories import make_lead
from tests.workspaces.factories import member
from workspaces.models import Role


def merge_url(lead) -> str:
    return f"/api/v1/leads/{lead.pk}/merge"


def error_fields(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]["fields"]


def consent(lead, purpose: str, granted: bool = True) -> ConsentRecord:
    return ConsentRecord.objects.create(
        workspace_id=lead.workspace_id, lead=lead, purpose=purpose, granted=granted, source="webhook", policy_version="v1"
    )


@pytest.fixture
def pair(workspace):
    """Two records of one person: the survivor has an email, the duplicate a phone, a title and more."""
    survivor = make_lead(
        workspace, name="Jane Doe", email="jane@acme.com", tags=["webinar"], custom_fields={"budget": "10k"}, company={"name": "Acme"}
    )
    other = make_lead(
        workspace,
        name="J. Doe",
        email="",
        phone="+14155550134",
        title="CTO",
        tags=["webinar", "enterprise"],
        custom_fields={"budget": "20k", "Timeline": "Q3"},
        source_campaign="spring",
    )
    return survivor, other


def test_merge_moves_history_fills_fields_and_retires_the_other(api, pair, workspace):
    survivor, other = pair
    note = lead_note_add(lead=other, author=None, text="Called, wants a demo")
    consent(other, "sms")
    consent(survivor, "email_marketing")
    other_activity_ids = set(LeadActivity.objects.filter(lead=other).values_list("pk", flat=True))

    response = api.post(merge_url(survivor), {"otherLeadId": str(other.pk)}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == str(survivor.pk)
    assert body["name"] == "Jane Doe" and body["email"] == "jane@acme.com"  # set: kept
    assert (body["phone"], body["title"], body["source"]["campaign"]) == ("+14155550134", "CTO", "spring")  # empty: filled
    assert body["company"]["name"] == "Acme"
    assert body["tags"] == ["enterprise", "webinar"]
    assert body["customFields"]["budget"] == "10k"
    assert body["customFields"]["timeline"] == "Q3"
    assert body["customFields"]["_displayNames"]["timeline"] == "Timeline"
    assert [n["value"] for n in body["notes"]] == ["Called, wants a demo"]
    assert sorted(c["purpose"] for c in body["consent"]) == ["email_marketing", "sms"]
    assert len(body["consentHistory"]) == 2
    assert body["activities"][0]["type"] == "merged"
    assert body["activities"][0]["data"]["mergedLeadId"] == str(other.pk)

    assert Note.objects.get(pk=note.pk).lead_id == survivor.pk
    assert set(LeadActivity.objects.filter(pk__in=other_activity_ids).values_list("lead_id", flat=True)) == {survivor.pk}
    assert set(ConsentRecord.objects.values_list("lead_id", flat=True)) == {survivor.pk}

    other.refresh_from_db()
    assert other.deleted_at is not None and other.merged_into_id == survivor.pk
    assert LeadActivity.objects.filter(lead=other, type=ActivityType.MERGED).count() == 1
    listing = api.get("/api/v1/leads").json()
    assert [lead["id"] for lead in listing["results"]] == [str(survivor.pk)]
    assert api.get(f"/api/v1/leads/{other.pk}").status_code == 404
    assert api.get("/api/v1/leads", {"search": "+14155550134"}).json()["results"][0]["id"] == str(survivor.pk)


def test_merge_records_what_changed_on_the_survivor(api, pair):
    survivor, other = pair
    api.post(merge_url(survivor), {"otherLeadId": str(other.pk)}, format="json")
    activity = LeadActivity.objects.get(lead=survivor, type=ActivityType.MERGED, data__strategy="manual")
    changes = activity.data["changes"]
    assert changes["phone"] == {"from": "", "to": "+14155550134"}
    assert changes["title"] == {"from": "", "to": "CTO"}
    assert changes["tags"]["to"] == ["enterprise"]
    assert "name" not in changes and "email" not in changes
    assert activity.actor == api.user


def test_merge_takes_the_others_owner_when_the_survivor_has_none(api, workspace):
    rep = member(workspace, Role.SALES_REP).user
    survivor = make_lead(workspace, name="Jane")
    other = make_lead(workspace, name="Jane D", owner=rep)
    body = api.post(merge_url(survivor), {"otherLeadId": str(other.pk)}, format="json").json()
    assert body["assignedTo"] == rep.pk


def test_the_survivor_keeps_its_own_owner_and_stage(api, workspace):
    mine, theirs = member(workspace, Role.SALES_REP).user, member(workspace, Role.SALES_REP).user
    survivor = make_lead(workspace, name="Jane", owner=mine)
    other = make_lead(workspace, name="Jane D", owner=theirs)
    Lead.objects.filter(pk=other.pk).update(stage=Stage.objects.get(workspace=workspace, pipeline__is_default=True, name="Won"))
    body = api.post(merge_url(survivor), {"otherLeadId": str(other.pk)}, format="json").json()
    assert (body["assignedTo"], body["stage"]["name"]) == (mine.pk, "New")


# Refusals


def _assert_nothing_merged(*leads):
    for lead in leads:
        lead.refresh_from_db()
        assert lead.deleted_at is None and lead.merged_into_id is None
    assert not LeadActivity.objects.filter(type=ActivityType.MERGED).exists()


def test_merging_a_lead_into_itself_is_400_naming_other_lead_id(api, pair):
    survivor, _ = pair
    response = api.post(merge_url(survivor), {"otherLeadId": str(survivor.pk)}, format="json")
    assert response.status_code == 400
    assert "otherLeadId" in error_fields(response)
    _assert_nothing_merged(survivor)


@pytest.mark.parametrize("other_id", [str(uuid.uuid4()), "not-a-uuid", None, ""])
def test_an_unknown_or_malformed_other_lead_is_400_naming_other_lead_id(api, pair, other_id):
    survivor, other = pair
    response = api.post(merge_url(survivor), {"otherLeadId": other_id}, format="json")
    assert response.status_code == 400
    assert "otherLeadId" in error_fields(response)
    _assert_nothing_merged(survivor, other)


def test_a_missing_other_lead_id_is_400(api, pair):
    survivor, _ = pair
    response = api.post(merge_url(survivor), {}, format="json")
    assert response.status_code == 400
    assert "otherLeadId" in error_fields(response)


def test_unknown_fields_are_400(api, pair):
    survivor, other = pair
    response = api.post(merge_url(survivor), {"otherLeadId": str(other.pk), "strategy": "replace"}, format="json")
    assert response.status_code == 400
    assert "strategy" in error_fields(response)
    _assert_nothing_merged(survivor, other)


def test_another_workspaces_lead_is_400_and_left_untouched(api, workspace, other_workspace):
    survivor = make_lead(workspace, name="Jane", email="jane@acme.com")
    theirs = make_lead(other_workspace, name="Jane", email="jane@acme.com", phone="+14155550134", tags=["theirs"])
    lead_note_add(lead=theirs, author=None, text="Their note")
    consent(theirs, "sms")
    response = api.post(merge_url(survivor), {"otherLeadId": str(theirs.pk)}, format="json")
    assert response.status_code == 400
    assert "otherLeadId" in error_fields(response)
    _assert_nothing_merged(survivor, theirs)
    assert Note.objects.get().lead_id == theirs.pk
    assert ConsentRecord.objects.get().lead_id == theirs.pk
    assert list(theirs.tags.values_list("name", flat=True)) == ["theirs"]
    survivor.refresh_from_db()
    assert survivor.phone == ""
    assert not survivor.tags.exists()


def test_the_survivor_of_another_workspace_is_404(api, workspace, other_workspace):
    theirs = make_lead(other_workspace, name="Theirs")
    mine = make_lead(workspace, name="Mine")
    assert api.post(merge_url(theirs), {"otherLeadId": str(mine.pk)}, format="json").status_code == 404
    _assert_nothing_merged(theirs, mine)


def test_an_already_merged_lead_cannot_be_merged_again(api, workspace):
    survivor = make_lead(workspace, name="A")
    other = make_lead(workspace, name="B")
    third = make_lead(workspace, name="C")
    assert api.post(merge_url(survivor), {"otherLeadId": str(other.pk)}, format="json").status_code == 200
    response = api.post(merge_url(third), {"otherLeadId": str(other.pk)}, format="json")
    assert response.status_code == 400
    assert "otherLeadId" in error_fields(response)
    other.refresh_from_db()
    assert other.merged_into_id == survivor.pk


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.VIEWER])
def test_roles_without_leads_manage_are_403(api_as, pair, role):
    survivor, other = pair
    response = api_as(role).post(merge_url(survivor), {"otherLeadId": str(other.pk)}, format="json")
    assert response.status_code == 403
    _assert_nothing_merged(survivor, other)
