"""The unified profile, the timeline and the company roll-up, fed by activity tracked through the Track API."""

import json
from datetime import datetime, timedelta
from urllib.parse import urlparse

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from leads.models import Lead
from leads.services import lead_assign, lead_note_add
from leads.tracking.email import email_click_url, email_open_pixel_url
from leads.tracking.models import TrackingSite
from leads.tracking.services import tracking_site_create
from tests.leads.factories import make_lead
from workspaces.models import Role

pytestmark = pytest.mark.django_db
HUMAN_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
ORIGIN = "https://www.example.com"


@pytest.fixture
def site(workspace) -> TrackingSite:
    return tracking_site_create(workspace=workspace, name="Example", allowed_origins=[ORIGIN])


def track(site, events, *, visitor, user_agent=HUMAN_UA, js=True) -> dict:
    """Posts a batch as the snippet does and expects every event to be accepted."""
    body = {"visitorId": visitor, "events": events}
    if js:
        body["context"] = {"js": True}
    response = Client().post(
        f"/api/v1/track?k={site.site_key}", json.dumps(body), content_type="text/plain", HTTP_USER_AGENT=user_agent, HTTP_ORIGIN=ORIGIN
    )
    assert response.status_code == 202, response.content
    assert response.json()["rejected"] == 0, response.content
    return response.json()


def iso(at: datetime) -> str:
    return at.isoformat()


def when(text: str | None) -> datetime | None:
    return parse_datetime(text) if text else None


def pageview(url: str, at: datetime, **extra) -> dict:
    return {"type": "pageview", "url": url, "timestamp": iso(at), **extra}


def identify(email: str, name: str, at: datetime | None = None) -> dict:
    event = {"type": "identify", "traits": {"email": email, "name": name}}
    if at is not None:
        event["timestamp"] = iso(at)
    return event


def open_email(lead, *, user_agent=HUMAN_UA, campaign="jan_2026"):
    response = Client().get(urlparse(email_open_pixel_url(lead=lead, campaign=campaign, message="m1")).path, HTTP_USER_AGENT=user_agent)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"


def click_email(lead, *, url="https://www.example.com/demo", campaign="jan_2026"):
    tracked = urlparse(email_click_url(lead=lead, url=url, campaign=campaign, message="m1"))
    response = Client().get(tracked.path, HTTP_USER_AGENT=HUMAN_UA)
    assert response.status_code == 302
    assert response["Location"].startswith(url)


# --- the profile ---------------------------------------------------------------------------------


@pytest.fixture
def start() -> datetime:
    return (timezone.now() - timedelta(days=3)).replace(microsecond=0)


@pytest.fixture
def jane(site, workspace, start) -> Lead:
    """Three sessions of one browser: a newsletter campaign, a Google search a day later, and a direct
    visit a day after that, in which she identifies."""
    visitor = "visitor-jane-0001"
    track(
        site,
        [
            pageview(f"{ORIGIN}/?utm_source=newsletter&utm_medium=email&utm_campaign=spring", start, title="Home"),
            pageview(f"{ORIGIN}/pricing", start + timedelta(minutes=5), title="Pricing"),
        ],
        visitor=visitor,
    )
    track(site, [pageview(f"{ORIGIN}/blog/attribution", start + timedelta(days=1), referrer="https://www.google.com/")], visitor=visitor)
    third = start + timedelta(days=2)
    track(
        site,
        [
            pageview(f"{ORIGIN}/docs", third),
            {
                "type": "event",
                "name": "feature_explored",
                "properties": {"feature": "attribution"},
                "timestamp": iso(third + timedelta(minutes=1)),
            },
            identify("Jane.Doe@Acme.io", "Jane Doe", third + timedelta(minutes=2)),
        ],
        visitor=visitor,
    )
    return Lead.objects.get(workspace=workspace, email="jane.doe@acme.io")


def test_profile_has_seed_shape_with_engagement_and_attribution_from_tracked_sessions(api, jane, start):
    response = api.get(f"/api/v1/leads/{jane.pk}/profile")

    assert response.status_code == 200, response.content
    profile = response.json()
    assert {"id", "contact", "company", "status", "score", "stage", "engagement", "attribution", "lifecycle"} <= set(profile)
    assert profile["id"] == str(jane.pk)
    assert profile["contact"]["email"] == "jane.doe@acme.io"
    assert profile["contact"]["name"] == "Jane Doe"
    assert (profile["contact"]["firstName"], profile["contact"]["lastName"]) == ("Jane", "Doe")
    assert profile["status"] == "new"
    assert profile["stage"] == "lead"
    assert isinstance(profile["score"], int)

    engagement = profile["engagement"]
    assert set(engagement) == {"firstSeen", "lastSeen", "totalSessions", "totalPageviews", "totalEvents", "emailsOpened", "emailsClicked"}
    assert when(engagement["firstSeen"]) == start
    assert when(engagement["lastSeen"]) == start + timedelta(days=2, minutes=2)
    assert engagement["totalSessions"] == 3
    assert engagement["totalPageviews"] == 4
    # Four pageviews, the custom event and the identify call.
    assert engagement["totalEvents"] == 6
    assert (engagement["emailsOpened"], engagement["emailsClicked"]) == (0, 0)

    attribution = profile["attribution"]
    assert set(attribution) == {"firstTouch", "lastTouch", "touchCount"}
    first, last = attribution["firstTouch"], attribution["lastTouch"]
    assert (first["source"], first["medium"], first["campaign"]) == ("newsletter", "email", "spring")
    assert when(first["at"]) == start
    # A search engine's referrer is an organic visit of that engine; the direct third visit is no touch.
    assert (last["source"], last["medium"], last["campaign"]) == ("google", "organic", None)
    assert when(last["at"]) == start + timedelta(days=1)
    assert attribution["touchCount"] == 2

    lifecycle = profile["lifecycle"]
    assert set(lifecycle) == {"createdAt", "qualifiedAt", "assignedTo", "lastContactedAt"}
    assert when(lifecycle["createdAt"]) == jane.created_at
    assert lifecycle["qualifiedAt"] is None
    assert lifecycle["assignedTo"] is None
    assert lifecycle["lastContactedAt"] is None


def test_profile_counts_email_opens_and_clicks_and_a_click_is_the_latest_touch(api, jane):
    open_email(jane)
    open_email(jane)
    click_email(jane, campaign="pricing_followup")

    profile = api.get(f"/api/v1/leads/{jane.pk}/profile").json()

    assert profile["engagement"]["emailsOpened"] == 2
    assert profile["engagement"]["emailsClicked"] == 1
    assert profile["engagement"]["totalEvents"] == 6 + 3
    last = profile["attribution"]["lastTouch"]
    assert (last["source"], last["medium"], last["campaign"]) == ("email", "email", "pricing_followup")
    assert profile["attribution"]["firstTouch"]["source"] == "newsletter"
    assert profile["attribution"]["touchCount"] == 3


def test_profile_shows_the_owner_and_the_company(api, workspace):
    lead = make_lead(workspace, name="Ann Lee", email="ann@globex.com", company={"name": "Globex", "domain": "globex.com"})
    lead_assign(lead=lead, owner=api.user, actor=api.user)

    profile = api.get(f"/api/v1/leads/{lead.pk}/profile").json()

    assert profile["lifecycle"]["assignedTo"]["id"] == api.user.pk
    assert profile["lifecycle"]["assignedTo"]["email"] == api.user.email
    assert profile["company"]["name"] == "Globex"
    assert profile["company"]["domain"] == "globex.com"


def test_a_lead_without_tracking_has_zeroed_engagement_and_no_touches(api, workspace):
    lead = make_lead(workspace)

    profile = api.get(f"/api/v1/leads/{lead.pk}/profile").json()

    assert profile["engagement"] == {
        "firstSeen": None,
        "lastSeen": None,
        "totalSessions": 0,
        "totalPageviews": 0,
        "totalEvents": 0,
        "emailsOpened": 0,
        "emailsClicked": 0,
    }
    assert profile["attribution"] == {"firstTouch": None, "lastTouch": None, "touchCount": 0}
    assert profile["company"] is None


def test_a_second_device_of_the_same_person_adds_to_one_engagement(api, site, jane, start):
    later = start + timedelta(days=2, hours=5)
    track(
        site,
        [
            pageview(f"{ORIGIN}/?utm_source=linkedin&utm_medium=social&utm_campaign=launch", later),
            identify("jane.doe@acme.io", "Jane Doe", later),
        ],
        visitor="visitor-jane-phone",
    )

    profile = api.get(f"/api/v1/leads/{jane.pk}/profile").json()

    assert profile["engagement"]["totalSessions"] == 4
    assert profile["engagement"]["totalPageviews"] == 5
    assert profile["attribution"]["lastTouch"]["source"] == "linkedin"
    assert profile["attribution"]["firstTouch"]["source"] == "newsletter"
    assert Lead.objects.filter(workspace=site.workspace, email="jane.doe@acme.io").count() == 1


def test_bot_traffic_of_a_known_lead_does_not_count(api, site, jane):
    before = api.get(f"/api/v1/leads/{jane.pk}/profile").json()["engagement"]
    open_email(jane, user_agent=BOT_UA)
    track(site, [pageview(f"{ORIGIN}/crawled", timezone.now())], visitor="visitor-jane-0001", user_agent=BOT_UA)

    after = api.get(f"/api/v1/leads/{jane.pk}/profile").json()["engagement"]

    assert after == before


def test_another_workspaces_lead_is_not_found(api, api_as, other_workspace):
    foreign = make_lead(other_workspace)

    for path in (f"/api/v1/leads/{foreign.pk}/profile", f"/api/v1/leads/{foreign.pk}/timeline"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/leads/not-a-uuid/profile").status_code == 404
    # The owner of that workspace does see it.
    assert api_as(Role.VIEWER, other_workspace).get(f"/api/v1/leads/{foreign.pk}/profile").status_code == 200


def test_a_viewer_reads_profiles_and_timelines(api_as, jane):
    viewer = api_as(Role.VIEWER)

    assert viewer.get(f"/api/v1/leads/{jane.pk}/profile").json()["engagement"]["totalPageviews"] == 4
    assert viewer.get(f"/api/v1/leads/{jane.pk}/timeline").status_code == 200


def test_without_a_token_nothing_is_read(workspace):
    lead = make_lead(workspace)
    anonymous = APIClient()

    for path in (f"/api/v1/leads/{lead.pk}/profile", f"/api/v1/leads/{lead.pk}/timeline"):
        response = anonymous.get(path)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "unauthorized"
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer not-a-real-token")
    assert bad.get(f"/api/v1/leads/{lead.pk}/profile").status_code == 401


# --- the timeline --------------------------------------------------------------------------------


@pytest.fixture
def timeline_lead(site, workspace, api) -> Lead:
    """A visitor browses, explores a feature and submits a form (a lead is created); a colleague adds a
    note; the lead opens an email; the visitor comes back to a thank-you page. Bots also pass by."""
    visitor = "visitor-tl-000001"
    t0 = timezone.now() - timedelta(hours=3)
    track(
        site,
        [
            pageview(f"{ORIGIN}/pricing?utm_source=ads", t0, title="Pricing"),
            {
                "type": "event",
                "name": "feature_explored",
                "properties": {"feature": "attribution"},
                "timestamp": iso(t0 + timedelta(minutes=1)),
            },
            {"type": "form", "name": "form_viewed", "properties": {"formId": "demo"}, "timestamp": iso(t0 + timedelta(minutes=2))},
            {
                "type": "form",
                "name": "form_submitted",
                "url": f"{ORIGIN}/demo",
                "properties": {"formId": "demo", "fields": {"email": "tim@initech.com", "full_name": "Tim Line"}},
                "timestamp": iso(t0 + timedelta(minutes=3)),
            },
        ],
        visitor=visitor,
    )
    lead = Lead.objects.get(workspace=workspace, email="tim@initech.com")
    lead_note_add(lead=lead, author=api.user, text="Called: wants a demo next week")
    open_email(lead, campaign="welcome")
    track(site, [pageview(f"{ORIGIN}/thanks", timezone.now(), title="Thanks")], visitor=visitor)
    # A mail scanner opening the email, and a crawler and a script-less beacon reusing the cookie.
    open_email(lead, user_agent=BOT_UA, campaign="welcome")
    track(site, [pageview(f"{ORIGIN}/no-js-page", timezone.now())], visitor=visitor, js=False)
    track(site, [pageview(f"{ORIGIN}/crawled-page", timezone.now())], visitor=visitor, user_agent=BOT_UA)
    return lead


def timeline(client, lead, query: str = "") -> dict:
    response = client.get(f"/api/v1/leads/{lead.pk}/timeline{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_timeline_merges_every_source_newest_first(api, timeline_lead):
    items = timeline(api, timeline_lead, "?limit=200")["items"]

    times = [when(item["timestamp"]) for item in items]
    assert times == sorted(times, reverse=True)
    assert {item["type"] for item in items} == {"pageview", "event", "form", "email", "note", "activity"}
    assert all(set(item) == {"type", "timestamp", "data"} for item in items)

    pages = [item["data"]["page"] for item in items if item["type"] == "pageview"]
    assert pages == ["/thanks", "/pricing"]
    positions = {
        "thanks": next(i for i, item in enumerate(items) if item["type"] == "pageview" and item["data"]["page"] == "/thanks"),
        "note": next(i for i, item in enumerate(items) if item["type"] == "note"),
        "submitted": next(i for i, item in enumerate(items) if item["type"] == "form" and item["data"]["action"] == "form_submitted"),
        "viewed": next(i for i, item in enumerate(items) if item["type"] == "form" and item["data"]["action"] == "form_viewed"),
        "event": next(i for i, item in enumerate(items) if item["type"] == "event"),
        "pricing": next(i for i, item in enumerate(items) if item["type"] == "pageview" and item["data"]["page"] == "/pricing"),
    }
    assert (
        positions["thanks"] < positions["note"] < positions["submitted"] < positions["viewed"] < positions["event"] < positions["pricing"]
    )

    note = items[positions["note"]]
    assert note["data"]["text"] == "Called: wants a demo next week"
    event = items[positions["event"]]
    assert event["data"] == {"name": "feature_explored", "properties": {"feature": "attribution"}}
    submitted = items[positions["submitted"]]
    assert submitted["data"]["formId"] == "demo"
    assert submitted["data"]["capturedLeadId"] == str(timeline_lead.pk)
    emails = [item for item in items if item["type"] == "email"]
    assert [(e["data"]["action"], e["data"]["campaign"]) for e in emails] == [("opened", "welcome")]
    activities = {item["data"]["activity"] for item in items if item["type"] == "activity"}
    assert {"created", "identified"} <= activities
    # The note is its own entry, not repeated as a "note added" activity.
    assert "note_added" not in activities


def test_bot_events_never_appear_in_the_timeline(api, timeline_lead):
    items = timeline(api, timeline_lead, "?limit=200&types=pageview,email")["items"]

    assert [item["data"]["page"] for item in items if item["type"] == "pageview"] == ["/thanks", "/pricing"]
    assert len([item for item in items if item["type"] == "email"]) == 1


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        ("pageview", {"pageview"}),
        ("note,email", {"note", "email"}),
        ("form", {"form"}),
        ("event,activity", {"event", "activity"}),
        (" pageview , note ", {"pageview", "note"}),
    ],
)
def test_types_filter_returns_only_the_asked_types(api, timeline_lead, types, expected):
    items = timeline(api, timeline_lead, f"?types={types}&limit=200")["items"]

    assert {item["type"] for item in items} == expected


def test_meeting_is_a_known_type_with_nothing_to_show_yet(api, timeline_lead):
    assert timeline(api, timeline_lead, "?types=meeting")["items"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?types=pageview,tweets", "types"),
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?limit=-5", "limit"),
        ("?limit=ten", "limit"),
        ("?before=yesterday", "before"),
        ("?before=2026-13-45T10:00:00Z", "before"),
        ("?before=2026-01-12T10:00:00Z~x12", "before"),
        ("?before=2026-01-12T10:00:00Z~nnot-a-uuid", "before"),
    ],
)
def test_bad_timeline_parameters_are_refused_naming_the_parameter(api, workspace, query, field):
    lead = make_lead(workspace)

    response = api.get(f"/api/v1/leads/{lead.pk}/timeline{query}")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == [field]


def test_limit_bounds_are_inclusive(api, timeline_lead):
    assert len(timeline(api, timeline_lead, "?limit=1")["items"]) == 1
    assert timeline(api, timeline_lead, "?limit=200")["next"] is None


def pages(client, lead, *, limit: int, types: str = "") -> list[list[dict]]:
    found, before = [], None
    for _ in range(100):
        query = f"?limit={limit}" + (f"&types={types}" if types else "")
        if before:
            query += f"&before={before}"
        page = timeline(client, lead, query)
        assert len(page["items"]) <= limit
        if page["items"]:
            found.append(page["items"])
        before = page["next"]
        if before is None:
            return found
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_paging_with_before_walks_back_without_repeats_or_gaps(api, timeline_lead, limit):
    everything = timeline(api, timeline_lead, "?limit=200")["items"]

    walked = [item for page in pages(api, timeline_lead, limit=limit) for item in page]

    assert walked == everything
    assert all(len(page) == limit for page in pages(api, timeline_lead, limit=limit)[:-1])


def test_paging_does_not_lose_entries_that_share_a_timestamp(api, site, workspace):
    """A batch sent without timestamps (as a server may send it) stores its events at one instant."""
    lead = make_lead(workspace, email="batch@initech.com")
    visitor = "visitor-batch-0001"
    track(site, [identify("batch@initech.com", "Batch Person", timezone.now() - timedelta(hours=1))], visitor=visitor)
    track(site, [{"type": "event", "name": f"step_{n}"} for n in range(5)], visitor=visitor)

    walked = [item for page in pages(api, lead, limit=2, types="event") for item in page]

    assert sorted(item["data"]["name"] for item in walked) == [f"step_{n}" for n in range(5)]


def test_paging_with_a_before_in_utc_offset_form(api, timeline_lead):
    everything = timeline(api, timeline_lead, "?limit=200")["items"]
    cut = when(everything[2]["timestamp"])

    # An offset written with "+" arrives as a space when not encoded; both spellings work.
    for before in (cut.isoformat(), cut.isoformat().replace("+", "%2B")):
        items = timeline(api, timeline_lead, f"?limit=200&before={before}")["items"]
        assert items == [item for item in everything if when(item["timestamp"]) < cut]


# --- the company roll-up -------------------------------------------------------------------------


def test_company_rollup_combines_its_leads_engagement(api, site, workspace):
    linked = make_lead(workspace, name="Ann Acme", email="ann@gmail.com", company={"name": "Acme", "domain": "acme.io"})
    by_domain = make_lead(workspace, name="Bob Acme", email="bob@acme.io")
    outsider = make_lead(workspace, name="Olga Other", email="olga@other.io")
    company = linked.company
    t0 = timezone.now() - timedelta(days=2)
    track(
        site,
        [
            pageview(f"{ORIGIN}/a1", t0),
            pageview(f"{ORIGIN}/a2", t0 + timedelta(minutes=1)),
            identify("ann@gmail.com", "Ann Acme", t0 + timedelta(minutes=2)),
        ],
        visitor="visitor-ann-0001",
    )
    track(
        site,
        [pageview(f"{ORIGIN}/?utm_source=ads", t0 + timedelta(hours=1)), identify("bob@acme.io", "Bob Acme", t0 + timedelta(hours=1))],
        visitor="visitor-bob-0001",
    )
    track(
        site,
        [pageview(f"{ORIGIN}/b2", t0 + timedelta(days=1)), pageview(f"{ORIGIN}/b3", t0 + timedelta(days=1, minutes=1))],
        visitor="visitor-bob-0001",
    )
    track(site, [pageview(f"{ORIGIN}/o1", t0), identify("olga@other.io", "Olga Other")], visitor="visitor-olga-001")

    response = api.get(f"/api/v1/companies/{company.pk}/profile")

    assert response.status_code == 200, response.content
    rollup = response.json()
    assert rollup["name"] == "Acme"
    assert rollup["domain"] == "acme.io"
    assert rollup["leadCount"] == 2
    assert {lead["id"] for lead in rollup["leads"]} == {str(linked.pk), str(by_domain.pk)}
    assert str(outsider.pk) not in {lead["id"] for lead in rollup["leads"]}
    engagement = rollup["engagement"]
    profiles = [api.get(f"/api/v1/leads/{lead.pk}/profile").json()["engagement"] for lead in (linked, by_domain)]
    assert engagement["totalPageviews"] == 5 == sum(p["totalPageviews"] for p in profiles)
    assert engagement["totalSessions"] == 3 == sum(p["totalSessions"] for p in profiles)
    assert engagement["totalEvents"] == sum(p["totalEvents"] for p in profiles)
    assert engagement["touchCount"] == 1
    assert when(engagement["firstSeen"]) == t0
    assert when(engagement["lastSeen"]) == max(when(p["lastSeen"]) for p in profiles)
    # The most recently active lead first.
    assert rollup["leads"][0]["id"] == str(by_domain.pk)
    assert rollup["leads"][0]["pageviews"] == 3


def test_company_rollup_matches_the_whole_email_domain_only(api, workspace):
    linked = make_lead(workspace, email="ann@acme.io", company={"name": "Acme", "domain": "Acme.io"})
    same_domain = make_lead(workspace, email="bob@acme.io")
    for email in ("carl@notacme.io", "dora@mail.acme.io", "eve@acme.io.example.com"):
        make_lead(workspace, email=email)

    rollup = api.get(f"/api/v1/companies/{linked.company_id}/profile").json()

    assert rollup["leadCount"] == 2
    assert {lead["id"] for lead in rollup["leads"]} == {str(linked.pk), str(same_domain.pk)}


def test_company_rollup_of_a_company_without_tracking(api, workspace):
    lead = make_lead(workspace, company={"name": "Quiet Ltd"})

    rollup = api.get(f"/api/v1/companies/{lead.company_id}/profile").json()

    assert rollup["leadCount"] == 1
    assert rollup["engagement"]["totalPageviews"] == 0
    assert rollup["engagement"]["firstSeen"] is None


def test_company_rollup_leaves_out_deleted_leads(api, site, workspace):
    from leads.services import lead_delete

    kept = make_lead(workspace, email="kept@acme.io", company={"name": "Acme", "domain": "acme.io"})
    gone = make_lead(workspace, email="gone@acme.io")
    track(site, [pageview(f"{ORIGIN}/k", timezone.now()), identify("kept@acme.io", "Kept")], visitor="visitor-kept-0001")
    track(site, [pageview(f"{ORIGIN}/g", timezone.now()), identify("gone@acme.io", "Gone")], visitor="visitor-gone-0001")
    lead_delete(lead=gone, actor=None)

    rollup = api.get(f"/api/v1/companies/{kept.company_id}/profile").json()

    assert rollup["leadCount"] == 1
    assert rollup["engagement"]["totalPageviews"] == 1


def test_another_workspaces_company_is_not_found(api, other_workspace):
    foreign = make_lead(other_workspace, company={"name": "Hidden Co", "domain": "hidden.io"})

    response = api.get(f"/api/v1/companies/{foreign.company_id}/profile")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/companies/not-a-uuid/profile").status_code == 404


def test_a_limit_written_in_other_digits_is_a_400_not_a_500(api, workspace):
    lead = make_lead(workspace, name="Digit Lead")

    response = api.get(f"/api/v1/leads/{lead.pk}/timeline?limit=²")

    assert response.status_code == 400
    assert "limit" in response.json()["error"]["fields"]
