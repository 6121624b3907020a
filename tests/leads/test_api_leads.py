"""The leads endpoints of the partner API, as a partner's integration would call them."""

import pytest

from leads.models import ActivityType, ConsentRecord, Contact, Lead, LeadActivity, Note
from pipelines.models import Stage
from tests.leads.factories import make_lead
from tests.pipelines.factories import make_pipeline
from tests.workspaces.factories import member
from workspaces.models import Role


def stage_named(workspace, name):
    return Stage.objects.get(workspace=workspace, pipeline__is_default=True, name=name)


def error_fields(response):
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "fields"} <= set(body["error"])
    return body["error"]["fields"]


# Create


def test_create_normalizes_and_lands_in_first_stage(api, workspace):
    response = api.post(
        "/api/v1/leads",
        {
            "name": "Jane Doe",
            "email": " Jane.Doe@Acme.COM ",
            "phone": "+1 (415) 555-0134",
            "company": {"name": "Acme Corp", "size": "50-200", "industry": "Technology", "website": "https://acme.com"},
            "jobTitle": "Marketing Director",
            "department": "Marketing",
            "source": {"type": "api", "campaign": "blog_seo", "medium": "content", "referrer": "https://google.com"},
            "utm": {"source": "google", "campaign": "q1"},
            "customFields": {"budget_range": "$10k-$50k", "product_interest": ["analytics"]},
            "tags": ["Enterprise", "high-intent"],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    lead = response.json()
    assert lead["email"] == "jane.doe@acme.com"
    assert lead["phone"] == "+14155550134"
    assert lead["title"] == "Marketing Director"
    assert (lead["firstName"], lead["lastName"]) == ("Jane", "Doe")
    assert lead["company"]["name"] == "Acme Corp" and lead["company"]["size"] == "50-200"
    assert lead["source"]["type"] == "api" and lead["source"]["campaign"] == "blog_seo"
    assert lead["utm"]["source"] == "google"
    assert lead["customFields"]["budgetRange"] == "$10k-$50k"
    assert lead["customFields"]["_displayNames"]["budgetRange"] == "budget_range"
    assert lead["tags"] == ["enterprise", "high-intent"]
    assert lead["stageId"] == str(stage_named(workspace, "New").pk)
    assert [a["type"] for a in lead["activities"]] == ["created"]


def test_create_name_falls_back_to_email_then_phone(api):
    by_email = api.post("/api/v1/leads", {"email": "solo@example.com"}, format="json")
    by_phone = api.post("/api/v1/leads", {"phone": "+44 20 7946 0958"}, format="json")
    assert by_email.json()["name"] == "solo@example.com"
    assert by_phone.json()["name"] == "+442079460958"


def test_create_without_any_identity_is_400_naming_name(api):
    response = api.post("/api/v1/leads", {"company": "Acme"}, format="json")
    assert response.status_code == 400
    assert "name" in error_fields(response)
    assert Lead.objects.count() == 0


def test_create_with_invalid_email_is_400_and_writes_nothing(api):
    response = api.post("/api/v1/leads", {"name": "X", "email": "not-an-email"}, format="json")
    assert response.status_code == 400
    assert "email" in error_fields(response)
    assert Lead.objects.count() == 0


def test_unparseable_phone_is_kept_raw(api):
    response = api.post("/api/v1/leads", {"name": "X", "phone": "call me maybe"}, format="json")
    assert response.status_code == 201
    assert response.json()["phone"] == "call me maybe"


def test_create_in_a_given_stage_of_another_pipeline(api, workspace):
    pipeline = make_pipeline(workspace)
    trial = pipeline.stages.get(name="Trial")
    response = api.post("/api/v1/leads", {"name": "X", "stageId": str(trial.pk)}, format="json")
    assert response.status_code == 201
    assert response.json()["pipelineId"] == str(pipeline.pk)
    assert response.json()["stageId"] == str(trial.pk)


def test_stage_of_another_pipeline_than_the_given_one_is_400(api, workspace):
    pipeline = make_pipeline(workspace)
    response = api.post(
        "/api/v1/leads",
        {"name": "X", "pipelineId": str(pipeline.pk), "stageId": str(stage_named(workspace, "Won").pk)},
        format="json",
    )
    assert response.status_code == 400
    assert "stageId" in error_fields(response)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "stageId": "00000000-0000-0000-0000-000000000000"}, "stageId"),
        ({"name": "X", "stageId": "not-a-uuid"}, "stageId"),
        ({"name": "X", "assignedTo": 999999}, "assignedTo"),
        ({"name": "X", "status": "sleeping"}, "status"),
        ({"name": "X", "lifecycleStage": "alien"}, "lifecycleStage"),
        ({"name": "X", "source": "carrier-pigeon"}, "source"),
        ({"name": "X", "tags": [1, 2]}, "tags"),
        ({"name": "X", "customFields": ["a"]}, "customFields"),
        ({"name": "X", "company": 42}, "company"),
        ({"name": "X", "favouriteColour": "blue"}, "favouriteColour"),
        ({"name": "X" * 201}, "name"),
    ],
)
def test_invalid_values_are_400_naming_the_field(api, body, field):
    response = api.post("/api/v1/leads", body, format="json")
    assert response.status_code == 400, response.content
    assert field in error_fields(response)
    assert Lead.objects.count() == 0


def test_read_only_fields_are_never_applied(api):
    response = api.post(
        "/api/v1/leads",
        {"name": "X", "id": "11111111-1111-1111-1111-111111111111", "score": 99, "createdAt": "2000-01-01T00:00:00Z", "workspace": "other"},
        format="json",
    )
    assert response.status_code == 201
    lead = Lead.objects.get()
    assert str(lead.pk) != "11111111-1111-1111-1111-111111111111"
    assert lead.score == 0
    assert lead.created_at.year != 2000

    patched = api.patch(f"/api/v1/leads/{lead.pk}", {"score": 55, "createdAt": "2000-01-01T00:00:00Z"}, format="json")
    assert patched.status_code == 200
    lead.refresh_from_db()
    assert lead.score == 0 and lead.created_at.year != 2000


def test_malformed_json_is_400(api):
    response = api.generic("POST", "/api/v1/leads", '{"name": "X",', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_non_object_json_is_400(api):
    response = api.generic("POST", "/api/v1/leads", "[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert Lead.objects.count() == 0


def test_deeply_nested_json_is_400(api):
    body = '{"name": "X", "customFields": {"a": ' + "[" * 40 + "]" * 40 + "}}"
    response = api.generic("POST", "/api/v1/leads", body, content_type="application/json")
    assert response.status_code == 400
    assert "deeper" in response.json()["error"]["message"]


def test_body_over_one_megabyte_is_413(api):
    body = '{"name": "' + "x" * (1024 * 1024) + '"}'
    response = api.generic("POST", "/api/v1/leads", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert Lead.objects.count() == 0


def test_form_encoded_body_is_415(api):
    response = api.post("/api/v1/leads", {"name": "X"})  # multipart
    assert response.status_code == 415
    assert "error" in response.json()


# List


def test_list_search_filters_sort_and_pagination(api, workspace):
    rep = member(workspace, Role.SALES_REP).user
    qualified = stage_named(workspace, "Qualified")
    alpha = make_lead(
        workspace, name="Alpha Person", email="alpha@globex.io", company={"name": "Globex"}, tags=["vip"], source_type="webhook"
    )
    beta = make_lead(workspace, name="Beta Person", email="beta@acme.com", company={"name": "Acme"}, tags=["vip"], source_type="webhook")
    make_lead(workspace, name="Gamma Person", email="gamma@acme.com", company={"name": "Acme"}, source_type="import")
    Lead.objects.filter(pk=alpha.pk).update(score=10, owner=rep, stage=qualified)
    Lead.objects.filter(pk=beta.pk).update(score=90, owner=rep, stage=qualified)

    def names(**params):
        response = api.get("/api/v1/leads", params)
        assert response.status_code == 200, response.content
        return [lead["name"] for lead in response.json()["results"]]

    assert names(search="globex") == ["Alpha Person"]  # company name
    assert names(search="beta@") == ["Beta Person"]  # email
    assert sorted(names(source="webhook")) == ["Alpha Person", "Beta Person"]
    assert sorted(names(source="Webhook")) == ["Alpha Person", "Beta Person"]
    assert sorted(names(tag="vip", stageId=str(qualified.pk))) == ["Alpha Person", "Beta Person"]
    assert names(assignedTo=str(rep.pk), sortBy="score", sortOrder="asc") == ["Alpha Person", "Beta Person"]
    assert names(assignedTo="unassigned") == ["Gamma Person"]
    assert names(sortBy="name", sortOrder="desc", limit=2) == ["Gamma Person", "Beta Person"]

    page2 = api.get("/api/v1/leads", {"sortBy": "name", "sortOrder": "asc", "limit": 2, "page": 2}).json()
    assert [lead["name"] for lead in page2["results"]] == ["Gamma Person"]
    assert (page2["count"], page2["page"], page2["limit"]) == (3, 2, 2)


def _listed_names(api, **params) -> list[str]:
    response = api.get("/api/v1/leads", params)
    assert response.status_code == 200, response.content
    return [lead["name"] for lead in response.json()["results"]]


def test_search_finds_each_field_and_takes_wildcards_literally(api, workspace):
    make_lead(workspace, name="Ann Percent", email="ann@x.io", company={"name": "50% Off Ltd"})
    make_lead(workspace, name="Bob Under", email="bob_1@y.io", phone="+14155550123", company={"name": "5000 Co"})
    make_lead(workspace, name="Cy Plain", email="abc1@z.io", company={"name": "Zed Works"})

    assert _listed_names(api, search="50%") == ["Ann Percent"]  # company name; "%" is not a wildcard
    assert _listed_names(api, search="b_1") == ["Bob Under"]  # "_" is not a wildcard either (abc1 would match it)
    assert _listed_names(api, search="5550123") == ["Bob Under"]  # phone
    assert _listed_names(api, search="zed WORKS") == ["Cy Plain"]  # company name, any case
    assert _listed_names(api, search="plain") == ["Cy Plain"]  # name
    assert _listed_names(api, search="nobody") == []


def test_search_keeps_the_sort_order(api, workspace):
    """A search sorts by the same key, ties broken by id, as the list without one."""
    leads = [make_lead(workspace, name=f"Sortable {n}", email=f"s{n}@sort.io") for n in range(5)]
    for lead, score in zip(leads, [40, 70, 40, 10, 70], strict=True):
        Lead.objects.filter(pk=lead.pk).update(score=score)
    make_lead(workspace, name="Unrelated", email="u@other.io")
    by_score = sorted(Lead.objects.filter(name__startswith="Sortable"), key=lambda lead: (lead.score, lead.pk), reverse=True)

    searched = _listed_names(api, search="sortable", sortBy="score", sortOrder="desc")
    assert searched == [lead.name for lead in by_score]
    assert searched == [name for name in _listed_names(api, sortBy="score", sortOrder="desc") if name != "Unrelated"]
    assert _listed_names(api, search="SORT", sortBy="score", sortOrder="asc") == searched[::-1]


def test_a_searched_list_counts_every_match_on_every_page(api, workspace, django_assert_max_num_queries):
    """A search's page and its count come from one query (leads.selectors.lead_page_counted)."""
    for n in range(7):
        make_lead(workspace, name=f"Pager {n}", email=f"p{n}@pages.io", tags=["zeta", f"t{n}"] if n % 2 else [])
    make_lead(workspace, name="Elsewhere", email="e@other.io")

    with django_assert_max_num_queries(5):  # the token (read, its last use noted), the page with its count, its leads, their tags
        response = api.get("/api/v1/leads", {"search": "pages.io", "sortBy": "name", "sortOrder": "asc", "limit": 7})
    assert [lead["tags"] for lead in response.json()["results"]] == [[], ["t1", "zeta"], [], ["t3", "zeta"], [], ["t5", "zeta"], []]

    def page(number):
        response = api.get("/api/v1/leads", {"search": "pages.io", "sortBy": "name", "sortOrder": "asc", "limit": 3, "page": number})
        assert response.status_code == 200, response.content
        body = response.json()
        return [lead["name"] for lead in body["results"]], body["count"]

    assert page(1) == (["Pager 0", "Pager 1", "Pager 2"], 7)
    assert page(3) == (["Pager 6"], 7)
    assert page(4) == ([], 7)  # past the end: no row carries the count, which is still right
    empty = api.get("/api/v1/leads", {"search": "nobody-at-all"}).json()
    assert (empty["results"], empty["count"]) == ([], 0)


def test_search_with_source_and_tag_counts_text_and_company_matches_once(api, workspace):
    """The search's text part is narrowed by source and tag inside its index; its company part is
    not, so the list's own filters must still hold for leads found by their company."""
    wanted = {"source_type": "webhook", "tags": ["vip"]}
    make_lead(workspace, name="Orbit One", email="one@a.io", **wanted)
    make_lead(workspace, name="Bea Company", email="bea@b.io", company={"name": "Orbit Corp"}, **wanted)
    make_lead(workspace, name="Orbit Both", email="both@c.io", company={"name": "Orbit Corp"}, **wanted)
    make_lead(workspace, name="Orbit Import", email="imp@d.io", source_type="import", tags=["vip"])
    make_lead(workspace, name="Cal Company", email="cal@e.io", company={"name": "Orbit Corp"}, source_type="import", tags=["vip"])
    make_lead(workspace, name="Orbit Untagged", email="untagged@f.io", source_type="webhook")
    make_lead(workspace, name="Dee Company", email="dee@g.io", company={"name": "Orbit Corp"}, source_type="webhook")

    response = api.get("/api/v1/leads", {"search": "orbit", "source": "webhook", "tag": "vip", "sortBy": "name"})
    body = response.json()
    assert sorted(lead["name"] for lead in body["results"]) == ["Bea Company", "Orbit Both", "Orbit One"]
    assert body["count"] == 3
    assert _listed_names(api, search="orbit", tag="no-such-tag") == []


def test_list_counts_match_filters(api, workspace):
    for _ in range(3):
        make_lead(workspace, source_type="import")
    make_lead(workspace, source_type="webhook")
    body = api.get("/api/v1/leads", {"source": "import", "limit": 1}).json()
    assert body["count"] == 3 and len(body["results"]) == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"page": "x"}, "page"),
        ({"sortBy": "password"}, "sortBy"),
        ({"sortOrder": "sideways"}, "sortOrder"),
        ({"source": "pigeon"}, "source"),
        ({"stageId": "nope"}, "stageId"),
        ({"assignedTo": "someone"}, "assignedTo"),
        ({"assignedTo": "9" * 30}, "assignedTo"),
    ],
)
def test_bad_list_parameters_are_400(api, params, field):
    response = api.get("/api/v1/leads", params)
    assert response.status_code == 400
    assert field in error_fields(response)


def test_deleted_leads_leave_the_list_and_detail(api, workspace):
    lead = make_lead(workspace)
    assert api.delete(f"/api/v1/leads/{lead.pk}").status_code == 204
    assert api.get("/api/v1/leads").json()["count"] == 0
    assert api.get(f"/api/v1/leads/{lead.pk}").status_code == 404
    lead.refresh_from_db()
    assert lead.deleted_at is not None  # soft: the row and its history remain
    assert LeadActivity.objects.filter(lead=lead, type=ActivityType.DELETED).count() == 1


# Detail and update


def test_detail_includes_activity_log_and_notes(api, workspace):
    lead = make_lead(workspace)
    api.post(f"/api/v1/leads/{lead.pk}/notes", {"value": "Called, no answer"}, format="json")
    body = api.get(f"/api/v1/leads/{lead.pk}").json()
    assert [note["value"] for note in body["notes"]] == ["Called, no answer"]
    assert body["notes"][0]["author"]["id"] == api.user.pk
    assert [a["type"] for a in body["activities"]] == ["note_added", "created"]


DETAIL_KEYS = [
    "id", "name", "firstName", "lastName", "email", "phone", "company", "title", "department", "source", "utm",
    "customFields", "tags", "status", "lifecycleStage", "pipelineId", "stageId", "stage", "score", "assignedTo", "owner",
    "contactId", "convertedAt", "createdAt", "updatedAt", "lastActivityAt", "country", "emailKind", "phoneCountry",
    "validationWarnings", "processingState", "sourceWebhookId", "activities", "notes", "consent", "consentHistory",
]  # fmt: skip


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_detail_shows_the_leads_tags_notes_and_consent_in_full(api, workspace):
    lead = make_lead(workspace, name="Ann Lee", email="ann@acme.com", company={"name": "Acme"}, tags=["vip", "beta"], owner=api.user)
    api.post(f"/api/v1/leads/{lead.pk}/notes", {"value": "Called, no answer"}, format="json")
    records = [
        ConsentRecord.objects.create(
            workspace=workspace, lead=lead, purpose=purpose, granted=granted, source="form", policy_version=version
        )
        for purpose, granted, version in [("sms", True, "v1"), ("email_marketing", True, "v1"), ("sms", False, "v2")]
    ]
    note = Note.objects.get(lead=lead)

    body = api.get(f"/api/v1/leads/{lead.pk}").json()

    assert list(body) == DETAIL_KEYS
    assert body["tags"] == ["beta", "vip"]
    assert body["company"]["name"] == "Acme"
    user = {"id": api.user.pk, "name": api.user.display_name, "email": api.user.email}
    assert (body["assignedTo"], body["owner"]) == (api.user.pk, user)
    assert body["notes"] == [{"id": str(note.pk), "value": "Called, no answer", "author": user, "createdAt": iso(note.created_at)}]

    def shown(record):
        purpose, granted, version = record.purpose, record.granted, record.policy_version
        return {"purpose": purpose, "granted": granted, "source": "form", "policyVersion": version, "recordedAt": iso(record.created_at)}

    assert body["consentHistory"] == [shown(record) for record in reversed(records)]
    assert body["consent"] == [shown(records[1]), shown(records[2])]  # the latest per purpose, by purpose
    assert [a["type"] for a in body["activities"]] == ["note_added", "created"]


def test_detail_of_a_lead_without_tags_notes_or_consent(api, workspace, django_assert_max_num_queries):
    lead = make_lead(workspace)
    api.get(f"/api/v1/leads/{lead.pk}")  # the token's first use is written down

    # The token with its member, the lead with its company, stage and owner, and its activities.
    with django_assert_max_num_queries(3):
        body = api.get(f"/api/v1/leads/{lead.pk}").json()

    assert (body["tags"], body["notes"], body["consent"], body["consentHistory"]) == ([], [], [], [])
    assert [a["type"] for a in body["activities"]] == ["created"]


def test_patch_records_old_and_new_values(api, workspace):
    lead = make_lead(workspace, name="Jane", title="CTO")
    response = api.patch(f"/api/v1/leads/{lead.pk}", {"title": "CEO", "name": "Jane", "customFields": {"budget": 5}}, format="json")
    assert response.status_code == 200
    assert response.json()["title"] == "CEO"
    activity = LeadActivity.objects.get(lead=lead, type=ActivityType.FIELD_UPDATED)
    assert activity.data["changes"]["title"] == {"from": "CTO", "to": "CEO"}
    assert "name" not in activity.data["changes"]  # unchanged values are not recorded
    assert activity.actor == api.user


def test_patch_that_changes_nothing_writes_no_activity(api, workspace):
    lead = make_lead(workspace, title="CTO")
    api.patch(f"/api/v1/leads/{lead.pk}", {"title": "CTO"}, format="json")
    assert not LeadActivity.objects.filter(lead=lead, type=ActivityType.FIELD_UPDATED).exists()


def test_patch_custom_field_null_removes_it(api, workspace):
    lead = make_lead(workspace, custom_fields={"budget": 5, "timeline": "Q1"})
    body = api.patch(f"/api/v1/leads/{lead.pk}", {"customFields": {"budget": None}}, format="json").json()
    assert body["customFields"] == {"timeline": "Q1", "_displayNames": {"timeline": "timeline"}}


def test_patch_tags_replaces_and_logs(api, workspace):
    lead = make_lead(workspace, tags=["a", "b"])
    body = api.patch(f"/api/v1/leads/{lead.pk}", {"tags": ["b", "c"]}, format="json").json()
    assert body["tags"] == ["b", "c"]
    types = set(LeadActivity.objects.filter(lead=lead).values_list("type", flat=True))
    assert {"tagged", "untagged"} <= types


def test_patch_invalid_email_changes_nothing(api, workspace):
    lead = make_lead(workspace, email="ok@example.com", title="CTO")
    response = api.patch(f"/api/v1/leads/{lead.pk}", {"email": "broken@", "title": "CEO"}, format="json")
    assert response.status_code == 400
    lead.refresh_from_db()
    assert (lead.email, lead.title) == ("ok@example.com", "CTO")


# Stage, assign, notes


def test_stage_move_is_saved_and_logged(api, workspace):
    lead = make_lead(workspace)
    won = stage_named(workspace, "Won")
    response = api.patch(f"/api/v1/leads/{lead.pk}/stage", {"stageId": str(won.pk)}, format="json")
    assert response.status_code == 200
    assert response.json()["stage"]["name"] == "Won"
    activity = LeadActivity.objects.get(lead=lead, type=ActivityType.STAGE_MOVED)
    assert (activity.data["fromStage"], activity.data["toStage"]) == ("New", "Won")


def test_stage_move_to_same_stage_is_a_no_op(api, workspace):
    lead = make_lead(workspace)
    response = api.patch(f"/api/v1/leads/{lead.pk}/stage", {"stageId": str(lead.stage_id)}, format="json")
    assert response.status_code == 200
    assert not LeadActivity.objects.filter(lead=lead, type=ActivityType.STAGE_MOVED).exists()


@pytest.mark.parametrize("body", [{}, {"stageId": "00000000-0000-0000-0000-000000000000"}, {"stageId": 5}])
def test_stage_move_needs_a_known_stage(api, workspace, body):
    lead = make_lead(workspace)
    response = api.patch(f"/api/v1/leads/{lead.pk}/stage", body, format="json")
    assert response.status_code == 400
    assert "stageId" in error_fields(response)


def test_assign_and_unassign(api, workspace):
    rep = member(workspace, Role.SALES_REP).user
    lead = make_lead(workspace)
    assigned = api.patch(f"/api/v1/leads/{lead.pk}/assign", {"assignedTo": rep.pk}, format="json").json()
    assert assigned["assignedTo"] == rep.pk
    assert assigned["owner"]["email"] == rep.email
    unassigned = api.patch(f"/api/v1/leads/{lead.pk}/assign", {"assignedTo": None}, format="json").json()
    assert unassigned["assignedTo"] is None
    assert LeadActivity.objects.filter(lead=lead, type=ActivityType.ASSIGNED).count() == 2


def test_empty_note_is_400(api, workspace):
    lead = make_lead(workspace)
    response = api.post(f"/api/v1/leads/{lead.pk}/notes", {"value": "   "}, format="json")
    assert response.status_code == 400
    assert "value" in error_fields(response)
    assert not Note.objects.exists()


def test_note_text_is_stored_verbatim(api, workspace):
    lead = make_lead(workspace)
    text = "<script>alert(1)</script> & more"
    response = api.post(f"/api/v1/leads/{lead.pk}/notes", {"value": text}, format="json")
    assert response.status_code == 201
    assert api.get(f"/api/v1/leads/{lead.pk}/notes").json()["results"][0]["value"] == text


# Convert


def test_convert_creates_contact_once_and_carries_data(api, workspace):
    lead = make_lead(workspace, name="Jane Doe", email="jane@acme.com", phone="+14155550100", custom_fields={"budget": "$10k"})
    api.post(f"/api/v1/leads/{lead.pk}/notes", {"value": "Wants a demo"}, format="json")

    first = api.post(f"/api/v1/leads/{lead.pk}/convert", {}, format="json")
    second = api.post(f"/api/v1/leads/{lead.pk}/convert", {}, format="json")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["contact"]["id"] == second.json()["contact"]["id"]
    assert Contact.objects.count() == 1
    contact = Contact.objects.get()
    assert (contact.name, contact.email, contact.phone) == ("Jane Doe", "jane@acme.com", "+14155550100")
    assert contact.custom_fields["budget"] == "$10k"
    assert [note.text for note in contact.notes.all()] == ["Wants a demo"]
    detail = api.get(f"/api/v1/leads/{lead.pk}").json()
    assert detail["contactId"] == str(contact.pk) and detail["convertedAt"] is not None
    assert [a["type"] for a in detail["activities"]].count("converted") == 1


def test_convert_links_existing_contact_with_same_email(api, workspace):
    existing = Contact.objects.create(workspace=workspace, name="Jane D.", email="jane@acme.com")
    lead = make_lead(workspace, email="jane@acme.com")
    response = api.post(f"/api/v1/leads/{lead.pk}/convert", {}, format="json")
    assert response.status_code == 200
    assert response.json()["contact"]["id"] == str(existing.pk)
    assert Contact.objects.count() == 1


def test_convert_with_a_chosen_name(api, workspace):
    lead = make_lead(workspace, name="jane")
    response = api.post(f"/api/v1/leads/{lead.pk}/convert", {"name": "Jane Doe", "platform": "whatsapp"}, format="json")
    assert response.json()["contact"]["name"] == "Jane Doe"
    assert response.json()["contact"]["platform"] == "whatsapp"


# Bulk


def test_bulk_move_stage_is_one_set_based_action(api, workspace):
    leads = [make_lead(workspace) for _ in range(3)]
    proposal = stage_named(workspace, "Proposal")
    response = api.post(
        "/api/v1/leads/bulk-action",
        {"action": "move_stage", "leadIds": [str(lead.pk) for lead in leads], "stageId": str(proposal.pk)},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["updated"] == 3
    assert set(Lead.objects.values_list("stage__name", flat=True)) == {"Proposal"}
    assert LeadActivity.objects.filter(type=ActivityType.STAGE_MOVED).count() == 3


def test_bulk_assign_tag_and_delete(api, workspace):
    rep = member(workspace, Role.SALES_REP).user
    leads = [make_lead(workspace) for _ in range(2)]
    ids = [str(lead.pk) for lead in leads]

    assign = api.post("/api/v1/leads/bulk-action", {"action": "assign", "leadIds": ids, "assignedTo": rep.pk}, format="json").json()
    assert assign["updated"] == 2
    assert set(Lead.objects.values_list("owner", flat=True)) == {rep.pk}

    tag = api.post("/api/v1/leads/bulk-action", {"action": "tag", "leadIds": ids, "tags": ["Hot", "q1"]}, format="json").json()
    assert tag["updated"] == 2
    assert api.get("/api/v1/leads", {"tag": "hot"}).json()["count"] == 2
    again = api.post("/api/v1/leads/bulk-action", {"action": "tag", "leadIds": ids, "tags": ["hot"]}, format="json").json()
    assert again["updated"] == 0  # already tagged: nothing changed, nothing logged

    delete = api.post("/api/v1/leads/bulk-action", {"action": "delete", "leadIds": ids}, format="json").json()
    assert delete["updated"] == 2
    assert api.get("/api/v1/leads").json()["count"] == 0


def test_bulk_reports_unknown_ids(api, workspace):
    lead = make_lead(workspace)
    missing = "00000000-0000-0000-0000-000000000000"
    body = api.post("/api/v1/leads/bulk-action", {"action": "delete", "leadIds": [str(lead.pk), missing]}, format="json").json()
    assert body["updated"] == 1
    assert body["notFound"] == [missing]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "explode", "leadIds": ["00000000-0000-0000-0000-000000000000"]}, "action"),
        ({"action": "delete", "leadIds": []}, "leadIds"),
        ({"action": "delete", "leadIds": ["nope"]}, "leadIds"),
        ({"action": "move_stage", "leadIds": ["00000000-0000-0000-0000-000000000000"]}, "stageId"),
        ({"action": "assign", "leadIds": ["00000000-0000-0000-0000-000000000000"]}, "assignedTo"),
        ({"action": "tag", "leadIds": ["00000000-0000-0000-0000-000000000000"], "tags": []}, "tags"),
    ],
)
def test_bulk_bad_input_is_400(api, body, field):
    response = api.post("/api/v1/leads/bulk-action", body, format="json")
    assert response.status_code == 400
    assert any(key.startswith(field) for key in error_fields(response))


def test_bulk_move_failure_changes_nothing(api, workspace):
    leads = [make_lead(workspace) for _ in range(2)]
    response = api.post(
        "/api/v1/leads/bulk-action",
        {"action": "move_stage", "leadIds": [str(lead.pk) for lead in leads], "stageId": "00000000-0000-0000-0000-000000000000"},
        format="json",
    )
    assert response.status_code == 400
    assert set(Lead.objects.values_list("stage__name", flat=True)) == {"New"}
    assert not LeadActivity.objects.filter(type=ActivityType.STAGE_MOVED).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "customFields": {"_displayNames": "abc"}}, "customFields"),
        ({"name": "X", "customFields": {"_displayNames": {"a": 5}}}, "customFields"),
        ({"name": "X", "customFields": {"A B": 1, "a_b": 2}}, "customFields"),
        ({"name": "X", "company": {"name": "C", "size": "s" * 41}}, "company"),
        ({"name": "X", "company": "c" * 201}, "company"),
        ({"name": "X", "source": {"type": "api", "medium": "m" * 121}}, "source"),
        ({"name": "X", "tags": [f"t{n}" for n in range(51)]}, "tags"),
    ],
)
def test_values_that_would_be_cut_or_collide_are_refused_not_mangled(api, body, field):
    response = api.post("/api/v1/leads", body, format="json")
    assert response.status_code == 400, response.content
    assert field in error_fields(response)
    assert Lead.objects.count() == 0


@pytest.mark.parametrize("params", [{"page": "9" * 20}, {"page": "²"}, {"assignedTo": "²"}])
def test_absurd_numbers_are_400_not_500(api, params):
    response = api.get("/api/v1/leads", params)
    assert response.status_code == 400
    assert set(error_fields(response)) == set(params)
