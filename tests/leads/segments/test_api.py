"""The Segments API: seed 000's segment example end to end, members paging, the preview, validation naming
the bad spot, tenant isolation and roles; and membership following leads changed through the Leads API."""

import copy
from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone
from rest_framework.test import APIClient

from leads.models import Lead
from leads.segments.models import Segment, SegmentEvent, SegmentEventKind, SegmentMembership
from leads.tracking.models import LeadEngagement, TrackEvent
from tests.leads.segments.factories import (
    SCORE_50,
    SEED_AUTOMATION,
    SEED_CRITERIA,
    SEED_SEGMENT,
    committed,
    enterprise_lead,
    lead,
    make_segment,
    member_ids,
    track,
)
from workspaces.models import Role

pytestmark = pytest.mark.django_db

URL = "/api/v1/segments"
GERMANY = {"all": [{"field": "country", "operator": "eq", "value": "DE"}]}


def create(api, body: dict):
    with committed():
        return api.post(URL, body, format="json")


def fields_of(response) -> dict:
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]


def names(results: list[dict]) -> set[str]:
    return {member["name"] for member in results}


def preview(api, criteria) -> dict:
    response = api.post(f"{URL}/preview", {"criteria": criteria}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def without(criteria: dict, group: str, index: int) -> dict:
    """The criteria with one condition (or group) removed."""
    reduced = copy.deepcopy(criteria)
    del reduced[group][index]
    return reduced


def age_tracked_history(target: Lead, days: int) -> None:
    """Moves the lead's tracked history back: the Track API refuses events older than 7 days, so a lead last
    seen 20 days ago is one whose events, sessions and engagement are dated then."""
    delta = timedelta(days=days)
    TrackEvent.objects.filter(lead=target).update(occurred_at=F("occurred_at") - delta, received_at=F("received_at") - delta)
    LeadEngagement.objects.filter(lead=target).update(first_seen_at=F("first_seen_at") - delta, last_seen_at=F("last_seen_at") - delta)


# Seed 000's "Lead Segmentation" example


@pytest.fixture
def seed_leads(workspace, api):
    """Two leads that qualify, and one lead failing each condition of seed 000's criteria and nothing else."""
    ada = enterprise_lead(workspace, "Ada Demo")
    track(api, ada, "demo_requested")
    bo = enterprise_lead(workspace, "Bo Pricing", size="1,000+")
    track(api, bo, "pricing_viewed", "pricing_viewed")
    small = enterprise_lead(workspace, "Sam Small", size="150")  # 150 employees: CEO 20 + size 15 + Software 15
    track(api, small, "demo_requested")
    low = enterprise_lead(workspace, "Lo Score", title="", industry="")  # size 20 only
    track(api, low, "pricing_viewed", "pricing_viewed")
    once = enterprise_lead(workspace, "Wun Pricing")
    track(api, once, "pricing_viewed")
    stale = enterprise_lead(workspace, "Stel Stale")
    track(api, stale, "demo_requested")
    age_tracked_history(stale, 20)
    rival = enterprise_lead(workspace, "Rye Val", tags=["Competitor"])
    track(api, rival, "demo_requested")
    leads = {"ada": ada, "bo": bo, "small": small, "low": low, "once": once, "stale": stale, "rival": rival}
    for each in leads.values():
        each.refresh_from_db()
    return leads


def test_seed_000_segment_example_selects_high_intent_enterprise_leads(api, seed_leads):
    scores = {key: each.score for key, each in seed_leads.items()}
    assert scores == {"ada": 80, "bo": 55, "small": 75, "low": 20, "once": 55, "stale": 80, "rival": 80}

    response = create(api, SEED_SEGMENT)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "High-Intent Enterprise Leads"
    assert body["description"] == "Enterprise leads showing strong buying signals"
    assert body["criteria"] == SEED_CRITERIA
    assert body["refreshInterval"] == "hourly"
    assert body["automation"] == {"onEnter": [], "onExit": []}
    assert body["memberCount"] == 2
    assert body["lastRefreshedAt"] is not None
    segment = Segment.objects.get(pk=body["id"])
    assert segment.next_refresh_at == segment.last_refreshed_at + timedelta(hours=1)

    # segment.getMembers({limit: 100, offset: 0})
    members = api.get(f"{URL}/{body['id']}/members?limit=100&offset=0").json()
    assert names(members["results"]) == {"Ada Demo", "Bo Pricing"}
    assert (members["count"], members["limit"], members["offset"]) == (2, 100, 0)
    ada = next(member for member in members["results"] if member["name"] == "Ada Demo")
    assert ada == {
        "id": str(seed_leads["ada"].pk),
        "name": "Ada Demo",
        "email": seed_leads["ada"].email,
        "company": "Ada Demo Corp",
        "score": 80,
        "band": "mql",
        "lifecycleStage": "mql",
        "enteredAt": ada["enteredAt"],
    }
    assert ada["enteredAt"] == body["lastRefreshedAt"]


@pytest.mark.parametrize(
    ("key", "group", "index"),
    [
        ("small", "all", 0),  # company.size gte 200
        ("low", "all", 1),  # score gte 50
        ("once", "all", 2),  # any(demo_requested exists, pricing_viewed gte 2)
        ("stale", "all", 3),  # lastSeenAt within 14d
        ("rival", "none", 1),  # tags contains competitor
    ],
    ids=["company-size", "score", "buying-signal", "recency", "competitor"],
)
def test_each_non_qualifying_seed_lead_fails_exactly_one_condition(api, seed_leads, key, group, index):
    qualifying = {"Ada Demo", "Bo Pricing"}
    assert names(preview(api, SEED_CRITERIA)["members"]) == qualifying

    relaxed = preview(api, without(SEED_CRITERIA, group, index))

    assert names(relaxed["members"]) == qualifying | {seed_leads[key].name}
    assert relaxed["count"] == 3


def test_the_seed_segment_stays_current_as_its_leads_change(workspace, api, seed_leads):
    segment_id = create(api, SEED_SEGMENT).json()["id"]

    track(api, seed_leads["once"], "pricing_viewed")  # a second pricing view
    with committed():
        response = api.patch(f"/api/v1/leads/{seed_leads['ada'].pk}", {"tags": ["competitor"]}, format="json")
    assert response.status_code == 200, response.content

    members = api.get(f"{URL}/{segment_id}/members").json()
    assert names(members["results"]) == {"Bo Pricing", "Wun Pricing"}
    assert members["count"] == 2
    history = SegmentEvent.objects.filter(segment_id=segment_id)
    assert {(event.lead.name, event.kind, event.reason) for event in history} == {
        ("Wun Pricing", SegmentEventKind.ENTERED, "new activity"),
        ("Ada Demo", SegmentEventKind.EXITED, "fields changed"),
    }


def test_seed_000_automation_is_accepted_as_written(api):
    segment_id = create(api, SEED_SEGMENT).json()["id"]

    response = api.put(f"{URL}/{segment_id}/automation", SEED_AUTOMATION, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["automation"] == SEED_AUTOMATION
    assert Segment.objects.get(pk=segment_id).automation == SEED_AUTOMATION
    # onExit alone replaces both lists.
    response = api.put(f"{URL}/{segment_id}/automation", {"onExit": SEED_AUTOMATION["onExit"]}, format="json")
    assert response.json()["automation"] == {"onEnter": [], "onExit": SEED_AUTOMATION["onExit"]}


# Membership follows leads changed through the Leads API, within the request


@pytest.mark.django_db(transaction=True)
def test_a_field_changed_through_the_leads_api_moves_the_lead_in_before_the_response(workspace, api):
    target = enterprise_lead(workspace, "Pat Ched", title="Analyst")  # 5 + 20 + 15
    segment = make_segment(workspace, SCORE_50)
    assert target.score == 40 and member_ids(segment) == set()

    response = api.patch(f"/api/v1/leads/{target.pk}", {"jobTitle": "VP Sales"}, format="json")

    assert response.status_code == 200, response.content
    assert member_ids(segment) == {target.pk}
    event = SegmentEvent.objects.get(segment=segment)
    assert (event.kind, event.reason) == (SegmentEventKind.ENTERED, "fields changed")
    assert api.get(f"{URL}/{segment.pk}").json()["memberCount"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_competitor_tag_added_through_the_leads_api_takes_the_lead_out_before_the_response(workspace, api):
    target = enterprise_lead(workspace, "Rye Val")
    segment = make_segment(workspace, {"all": SCORE_50["all"], "none": [{"field": "tags", "operator": "contains", "value": "competitor"}]})
    assert member_ids(segment) == {target.pk}

    response = api.patch(f"/api/v1/leads/{target.pk}", {"tags": ["partner", "competitor"]}, format="json")

    assert response.status_code == 200, response.content
    assert member_ids(segment) == set()
    event = SegmentEvent.objects.get(segment=segment)
    assert (event.kind, event.reason) == (SegmentEventKind.EXITED, "fields changed")
    assert api.get(f"{URL}/{segment.pk}").json()["memberCount"] == 0


# CRUD


def test_list_detail_rename_and_delete(workspace, api):
    member = lead(workspace, name="Dee", country="DE")
    created = create(api, {"name": "Germany", "criteria": GERMANY, "refreshInterval": "daily"}).json()
    create(api, {"name": "Austria", "criteria": {"all": [{"field": "country", "operator": "eq", "value": "AT"}]}})

    listing = api.get(URL).json()
    assert [segment["name"] for segment in listing["results"]] == ["Austria", "Germany"]
    assert listing["count"] == 2
    detail = api.get(f"{URL}/{created['id']}").json()
    assert detail == created
    assert detail["refreshInterval"] == "daily"

    # What a client read back (server-owned fields included) is accepted; only the name changes.
    response = api.patch(f"{URL}/{created['id']}", {**detail, "name": "DACH: Germany", "memberCount": 99}, format="json")
    assert response.status_code == 200, response.content
    renamed = response.json()
    assert (renamed["name"], renamed["memberCount"], renamed["lastRefreshedAt"]) == ("DACH: Germany", 1, created["lastRefreshedAt"])
    assert renamed["updatedAt"] > created["updatedAt"]

    response = api.delete(f"{URL}/{created['id']}")
    assert response.status_code == 204
    assert api.get(f"{URL}/{created['id']}").status_code == 404
    assert not SegmentMembership.objects.filter(segment_id=created["id"]).exists()
    assert Lead.objects.filter(pk=member.pk, deleted_at__isnull=True).exists()


def test_changing_criteria_through_the_api_refills_the_segment_without_history(workspace, api):
    lead(workspace, name="Dee", country="DE")
    austrian = lead(workspace, name="Ari", country="AT")
    created = create(api, {"name": "Germany", "criteria": GERMANY}).json()

    with committed():
        response = api.patch(
            f"{URL}/{created['id']}", {"criteria": {"all": [{"field": "country", "operator": "in", "value": ["AT"]}]}}, format="json"
        )

    assert response.status_code == 200, response.content
    assert response.json()["memberCount"] == 1
    assert member_ids(Segment.objects.get(pk=created["id"])) == {austrian.pk}
    assert not SegmentEvent.objects.filter(segment_id=created["id"]).exists()


def test_a_requested_refresh_reports_who_entered_and_left(workspace, api):
    leaving = lead(workspace, name="Lea", country="DE")
    coming = lead(workspace, name="Cole", country="FR")
    created = create(api, {"name": "Germany", "criteria": GERMANY}).json()
    Lead.objects.filter(pk=leaving.pk).update(country="FR")
    Lead.objects.filter(pk=coming.pk).update(country="DE")

    with committed():
        response = api.post(f"{URL}/{created['id']}/refresh")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["entered"], body["exited"], body["segment"]["memberCount"]) == (1, 1, 1)
    assert body["segment"]["lastRefreshedAt"] > created["lastRefreshedAt"]
    assert set(SegmentEvent.objects.filter(segment_id=created["id"]).values_list("lead_id", "kind", "reason")) == {
        (coming.pk, SegmentEventKind.ENTERED, "refresh requested"),
        (leaving.pk, SegmentEventKind.EXITED, "refresh requested"),
    }


def test_fields_lists_what_criteria_may_use(api):
    response = api.get(f"{URL}/fields")

    assert response.status_code == 200
    fields = response.json()["fields"]
    assert {"company.size", "score", "lastSeenAt", "tags", "status", "events.<name>", "customFields.<key>"} <= set(fields)
    assert fields["events.<name>"]["window"] is True
    assert set(fields["lastSeenAt"]["operators"]) >= {"within", "before", "after"}
    assert fields["score"]["operators"]["gte"] == "number"


# Members paging


def test_members_page_through_the_whole_segment(workspace, api):
    leads = [lead(workspace, name=f"Member {n}", country="DE") for n in range(7)]
    lead(workspace, name="Outsider", country="FR")
    segment_id = create(api, {"name": "Germany", "criteria": GERMANY}).json()["id"]

    pages = [api.get(f"{URL}/{segment_id}/members?limit=3&offset={offset}").json() for offset in (0, 3, 6, 9)]

    assert [len(page["results"]) for page in pages] == [3, 3, 1, 0]
    assert {page["count"] for page in pages} == {7}
    assert [(page["limit"], page["offset"]) for page in pages] == [(3, 0), (3, 3), (3, 6), (3, 9)]
    seen = [member["id"] for page in pages for member in page["results"]]
    assert sorted(seen) == sorted(str(each.pk) for each in leads)
    default = api.get(f"{URL}/{segment_id}/members").json()
    assert (default["limit"], default["offset"], len(default["results"])) == (100, 0, 7)


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=501", "limit"), ("limit=ten", "limit"), ("offset=-1", "offset"), ("limit=5&offset=x", "offset")],
)
def test_members_paging_out_of_range_is_a_400_naming_the_parameter(api, workspace, query, field):
    segment = make_segment(workspace, GERMANY)

    response = api.get(f"{URL}/{segment.pk}/members?{query}")

    assert set(fields_of(response)) == {field}


# Preview


def test_preview_counts_what_a_saved_segment_would_hold_and_saves_nothing(workspace, api):
    enterprise_lead(workspace, "Ada Top")
    enterprise_lead(workspace, "Bo Mid", size="150")
    enterprise_lead(workspace, "Cy Low", title="")
    criteria = {"all": [{"field": "company.size", "operator": "gte", "value": 100}, {"field": "score", "operator": "gte", "value": 50}]}
    before = (Segment.objects.count(), SegmentMembership.objects.count(), SegmentEvent.objects.count())

    response = api.post(f"{URL}/preview", {"criteria": criteria}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 2
    assert [(member["name"], member["score"], member["company"]) for member in body["members"]] == [
        ("Ada Top", 55, "Ada Top Corp"),
        ("Bo Mid", 50, "Bo Mid Corp"),
    ]
    assert "enteredAt" not in body["members"][0]
    assert (Segment.objects.count(), SegmentMembership.objects.count(), SegmentEvent.objects.count()) == before
    assert create(api, {"name": "Fit", "criteria": criteria}).json()["memberCount"] == body["count"]


def test_preview_validates_like_a_save(api):
    response = api.post(f"{URL}/preview", {"criteria": {"any": [{"field": "score", "operator": "gte", "value": "high"}]}}, format="json")
    assert set(fields_of(response)) == {"criteria.any[0].value"}
    response = api.post(f"{URL}/preview", {"criteria": SCORE_50, "name": "x"}, format="json")
    assert fields_of(response) == {"name": "Unknown field."}
    assert set(fields_of(api.post(f"{URL}/preview", {}, format="json"))) == {"criteria"}


# Validation


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"criteria": {"all": [{"field": "company.employees", "operator": "gte", "value": 200}]}}, {"criteria.all[0].field"}),
        ({"criteria": {"all": [{"field": "score", "operator": "between", "value": 50}]}}, {"criteria.all[0].operator"}),
        ({"criteria": {"all": [{"field": "score", "operator": "contains", "value": "5"}]}}, {"criteria.all[0].operator"}),
        (
            {"criteria": {"all": [{"any": [{"field": "events.demo_requested", "operator": "gte", "value": 1, "window": "2 weeks"}]}]}},
            {"criteria.all[0].any[0].window"},
        ),
        ({"criteria": {"none": [{"field": "status", "operator": "eq"}]}}, {"criteria.none[0].value"}),
        ({"criteria": {"all": [], "either": []}}, {"criteria.either"}),
        ({"criteria": ["score", "gte", 50]}, {"criteria"}),
        ({"criteria": SCORE_50, "refreshInterval": "weekly"}, {"refreshInterval"}),
        (
            {"criteria": SCORE_50, "automation": {"onEnter": [{"action": "tag", "tags": ["a"]}, {"action": "call"}]}},
            {"automation.onEnter[1].action"},
        ),
        ({"criteria": SCORE_50, "automation": {"onExit": [{"action": "untag"}]}}, {"automation.onExit[0].tags"}),
        (
            {"criteria": SCORE_50, "automation": {"onEnter": [{"action": "notify", "channel": "sms", "message": "hi"}]}},
            {"automation.onEnter[0].channel"},
        ),
        ({"criteria": SCORE_50, "automation": {"onEnter": [{"action": "notify", "channel": "slack"}]}}, {"automation.onEnter[0].message"}),
        (
            {"criteria": SCORE_50, "automation": {"onEnter": [{"action": "notify", "channel": "email", "message": "hi"}]}},
            {"automation.onEnter[0].recipients"},
        ),
        (
            {
                "criteria": SCORE_50,
                "automation": {"onEnter": [{"action": "notify", "channel": "email", "message": "hi", "recipients": ["sales team"]}]},
            },
            {"automation.onEnter[0].recipients"},
        ),
        (
            {
                "criteria": SCORE_50,
                "automation": {"onExit": [{"action": "notify", "message": "hi", "webhookUrl": "hooks.slack.com/services/T0"}]},
            },
            {"automation.onExit[0].webhookUrl"},
        ),
        ({"criteria": SCORE_50, "automation": {"onEnter": [{"action": "enroll_sequence"}]}}, {"automation.onEnter[0].sequence"}),
        ({"criteria": SCORE_50, "automation": {"onChange": []}}, {"automation"}),
        ({"criteria": SCORE_50, "automation": {"onEnter": {"action": "tag"}}}, {"automation.onEnter"}),
        ({"criteria": SCORE_50, "name": "   "}, {"name"}),
        ({"criteria": SCORE_50, "name": None}, {"name"}),
        ({"name": "No criteria"}, {"criteria"}),
        ({"criteria": SCORE_50, "members": []}, {"members"}),
    ],
    ids=[
        "unknown-field",
        "unknown-operator",
        "operator-not-for-field",
        "nested-window",
        "missing-value",
        "unknown-group-key",
        "criteria-not-an-object",
        "refresh-interval",
        "automation-action",
        "automation-tags",
        "automation-channel",
        "automation-message",
        "automation-recipients",
        "automation-recipient-address",
        "automation-webhook-url",
        "automation-sequence",
        "automation-key",
        "automation-list",
        "blank-name",
        "null-name",
        "no-criteria",
        "unknown-field-in-body",
    ],
)
def test_create_refuses_invalid_input_naming_the_spot(api, body, paths):
    response = api.post(URL, {"name": "Bad", **body}, format="json")

    assert set(fields_of(response)) == paths
    assert not Segment.objects.exists()


def test_update_and_automation_refuse_invalid_input_and_leave_the_segment_as_it_was(workspace, api):
    segment = make_segment(workspace, SCORE_50, name="Hot")
    url = f"{URL}/{segment.pk}"

    assert fields_of(api.patch(url, {"criteria": {"all": [{"field": "score", "operator": "gte"}]}}, format="json")) == {
        "criteria.all[0].value": "Operator 'gte' needs a value."
    }
    assert set(fields_of(api.patch(url, {"refreshInterval": "yearly"}, format="json"))) == {"refreshInterval"}
    assert fields_of(api.patch(url, {"colour": "red"}, format="json")) == {"colour": "Unknown field."}
    assert set(fields_of(api.put(f"{url}/automation", {"onExit": [{"action": "tag", "tags": []}]}, format="json"))) == {
        "automation.onExit[0].tags"
    }
    assert fields_of(api.put(f"{url}/automation", {"onEnter": [], "onLeave": []}, format="json")) == {"onLeave": "Unknown field."}

    segment.refresh_from_db()
    assert (segment.name, segment.criteria, segment.refresh_interval, segment.automation) == (
        "Hot",
        SCORE_50,
        "hourly",
        {"onEnter": [], "onExit": []},
    )


# Tenant isolation and roles


def test_another_workspaces_segment_is_404_on_every_endpoint(workspace, other_workspace, api):
    lead(other_workspace, name="Their Lead", country="DE")
    theirs = make_segment(other_workspace, GERMANY, name="Their segment")
    url = f"{URL}/{theirs.pk}"

    responses = {
        "get": api.get(url),
        "patch": api.patch(url, {"name": "Mine now"}, format="json"),
        "delete": api.delete(url),
        "members": api.get(f"{url}/members"),
        "automation": api.put(f"{url}/automation", {"onEnter": []}, format="json"),
        "refresh": api.post(f"{url}/refresh"),
        "malformed id": api.get(f"{URL}/not-a-uuid"),
        "malformed members": api.get(f"{URL}/not-a-uuid/members"),
    }

    assert {name: response.status_code for name, response in responses.items()} == dict.fromkeys(responses, 404)
    theirs.refresh_from_db()
    assert (theirs.name, theirs.member_count) == ("Their segment", 1)
    assert api.get(URL).json() == {"results": [], "count": 0}
    assert preview(api, GERMANY)["count"] == 0


def test_a_segment_counts_only_its_own_workspaces_leads(workspace, other_workspace, api):
    lead(workspace, name="Ours", country="DE")
    lead(other_workspace, name="Theirs", country="DE")

    body = create(api, {"name": "Germany", "criteria": GERMANY}).json()

    assert body["memberCount"] == 1
    assert names(api.get(f"{URL}/{body['id']}/members").json()["results"]) == {"Ours"}


@pytest.mark.parametrize("role", [Role.VIEWER, Role.SALES_REP])
def test_read_only_roles_can_read_and_preview_but_not_change_segments(workspace, api_as, role):
    lead(workspace, name="Dee", country="DE")
    segment = make_segment(workspace, GERMANY, name="Germany")
    client = api_as(role)
    url = f"{URL}/{segment.pk}"

    reads = {
        "list": client.get(URL),
        "detail": client.get(url),
        "members": client.get(f"{url}/members"),
        "fields": client.get(f"{URL}/fields"),
        "preview": client.post(f"{URL}/preview", {"criteria": GERMANY}, format="json"),
    }
    writes = {
        "create": client.post(URL, {"name": "Mine", "criteria": SCORE_50}, format="json"),
        "update": client.patch(url, {"name": "Renamed"}, format="json"),
        "delete": client.delete(url),
        "automation": client.put(f"{url}/automation", {"onEnter": [{"action": "tag", "tags": ["x"]}]}, format="json"),
        "refresh": client.post(f"{url}/refresh"),
    }

    assert {name: response.status_code for name, response in reads.items()} == dict.fromkeys(reads, 200)
    assert reads["preview"].json()["count"] == 1
    assert {name: response.status_code for name, response in writes.items()} == dict.fromkeys(writes, 403)
    segment.refresh_from_db()
    assert (segment.name, segment.automation["onEnter"], Segment.objects.count()) == ("Germany", [], 1)


def test_the_api_needs_a_token(workspace):
    segment = make_segment(workspace, GERMANY)
    anonymous = APIClient()

    assert anonymous.get(URL).status_code == 401
    assert anonymous.get(f"{URL}/{segment.pk}/members").status_code == 401
    assert anonymous.post(f"{URL}/preview", {"criteria": GERMANY}, format="json").status_code == 401


def test_entered_at_in_members_is_when_the_lead_entered(workspace, api):
    early = lead(workspace, name="Early", country="DE")
    late = lead(workspace, name="Late", country="FR")
    segment = make_segment(workspace, GERMANY)
    Lead.objects.filter(pk=late.pk).update(country="DE")
    later = timezone.now() + timedelta(minutes=3)
    from leads.segments.services import segment_refresh

    segment_refresh(segment_id=segment.pk, now=later)

    results = api.get(f"{URL}/{segment.pk}/members").json()["results"]
    assert [member["name"] for member in results] == ["Late", "Early"]  # newest first
    assert results[0]["enteredAt"] == later.isoformat().replace("+00:00", "Z")
    assert results[1]["enteredAt"] == segment.last_refreshed_at.isoformat().replace("+00:00", "Z")
    assert early.pk in member_ids(segment)
