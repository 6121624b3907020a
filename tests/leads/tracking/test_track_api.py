"""POST /api/v1/track as a browser (site key) and a server (bearer token) use it: batching with
per-event errors, CORS by the site's origins, rate limits, bot flags, and the no-script pixel."""

import json
from datetime import UTC, timedelta, timezone

import pytest
from django.core.cache import cache

from leads.models import Lead
from leads.tracking.models import LeadEngagement, TrackEvent, Visitor
from leads.tracking.services import tracking_site_update
from tests.leads.factories import make_lead
from tests.leads.tracking.factories import (
    FOREIGN_ORIGIN,
    GOOGLEBOT_UA,
    HUMAN_UA,
    ORIGIN,
    Browser,
    ago,
    custom,
    identify,
    iso,
    make_site,
    pageview,
    server_post,
)
from workspaces.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Rate-limit counters and cached site keys live in the cache (Redis when REDIS_URL is set)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def site(workspace):
    return make_site(workspace)


def errors_of(response) -> dict:
    return response.json()["error"]["fields"]


def engagement(lead) -> LeadEngagement:
    return LeadEngagement.objects.filter(lead=lead).first() or LeadEngagement(lead=lead, workspace_id=lead.workspace_id)


# Batching ---------------------------------------------------------------------------------------


def test_a_batch_of_100_events_is_accepted_and_stored(site):
    browser = Browser(site)
    response = browser.send(*[custom("feature_explored", {"n": i}) for i in range(100)])

    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 100, "rejected": 0, "errors": []}
    assert TrackEvent.objects.filter(workspace=site.workspace, visitor_key=browser.visitor).count() == 100
    assert sorted(e.properties["n"] for e in TrackEvent.objects.filter(visitor_key=browser.visitor)) == list(range(100))


def test_each_event_is_stored_as_sent(site):
    browser = Browser(site)
    at = ago(hours=1)
    properties = {"plan": "Pro, facturé à l'année", "quote": 'say "hi" \\ 🙂', "nested": {"n": [1, 2.5, None, True]}}
    response = browser.send(
        pageview(
            "https://www.example.com/pricing?q=é&x=%20",
            title="  Pricing — Acme  ",
            referrer="https://search.example.org/?q=crm",
            messageId="pv-1",
            timestamp=at.astimezone(timezone(timedelta(hours=-5))).isoformat(),
        ),
        custom("plan_viewed", properties),
        {"type": "page_leave", "properties": {"pageviewId": "pv-1", "duration": 12.5, "scrollDepth": 66.6}},
        pageview("https://www.example.com/" + "a" * 2000),
    )

    assert response.status_code == 202, response.content
    stored = TrackEvent.objects.filter(workspace=site.workspace, visitor_key=browser.visitor)
    view = stored.get(message_id="pv-1")
    assert (view.url, view.title, view.referrer) == (
        "https://www.example.com/pricing?q=é&x=%20",
        "Pricing — Acme",
        "https://search.example.org/?q=crm",
    )
    assert view.occurred_at == at
    assert (view.site_id, view.user_agent, view.is_bot, view.bot_reason) == (site.pk, HUMAN_UA, False, "")
    assert view.occurred_at <= view.received_at
    assert stored.get(kind="event").properties == properties
    leave = stored.get(kind="page_leave")
    assert (leave.duration_seconds, leave.scroll_depth, leave.properties["pageviewId"]) == (12.5, 67, "pv-1")
    assert stored.get(kind="pageview", message_id="").url == ("https://www.example.com/" + "a" * 2000)[:1000]


def test_a_batch_of_101_events_is_refused_naming_events_and_nothing_is_stored(site):
    response = Browser(site).send(*[custom("feature_explored") for _ in range(101)])

    assert response.status_code == 400
    assert "events" in errors_of(response)
    assert "100" in errors_of(response)["events"]
    assert TrackEvent.objects.count() == 0


def test_good_events_of_a_batch_with_bad_ones_are_kept_and_each_bad_one_is_named(site):
    browser = Browser(site)
    response = browser.send(
        pageview("https://www.example.com/pricing", messageId="pv-good-1"),
        custom("feature_explored", {"feature": "attribution"}),
        {"type": "event", "name": "has spaces!"},
        {"type": "pageview"},
        {"type": "teleport", "name": "x"},
        {"type": "event", "name": "ok_event", "colour": "red"},
        custom("signup_clicked"),
    )

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (3, 4)
    assert [error["index"] for error in body["errors"]] == [2, 3, 4, 5]
    keys = [next(iter(error["fields"])) for error in body["errors"]]
    assert keys == ["events[2].name", "events[3].url", "events[4].type", "events[5].colour"]
    stored = TrackEvent.objects.filter(workspace=site.workspace, visitor_key=browser.visitor)
    assert sorted(stored.values_list("name", flat=True)) == ["feature_explored", "pageview", "signup_clicked"]
    assert response["Access-Control-Allow-Origin"] == ORIGIN


def test_a_batch_where_every_event_is_bad_is_refused_with_every_error(site):
    response = Browser(site).send({"type": "event"}, {"type": "pageview", "url": 42})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert set(errors_of(response)) == {"events[0].name", "events[1].url"}
    assert TrackEvent.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        '{"events": [',
        "not json",
        '{"events": [{"type": "pageview", "url": "https://a.b/"}], "visitorId": NaN}',
        "\xff",
        '{"events": [{"type": "pageview", "url": "https://a.b/\\u0000"}], "visitorId": "visitor-0001"}',
        '{"events": [{"type": "event", "name": "x", "properties": {"n": 1e400}}], "visitorId": "visitor-0001"}',
    ],
    ids=["truncated", "not-json", "nan", "not-utf8", "nul-character", "number-beyond-a-double"],
)
def test_a_body_that_is_not_json_is_a_400(site, body):
    response = Browser(site).post_raw(body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_body"
    assert TrackEvent.objects.count() == 0


@pytest.mark.parametrize("payload", [[], "events", {"events": []}, {"events": {"type": "pageview"}}], ids=["list", "str", "empty", "obj"])
def test_a_body_without_an_events_list_is_a_400_naming_events(site, payload):
    response = Browser(site).post_raw(json.dumps(payload))

    assert response.status_code == 400
    assert "events" in errors_of(response)


def test_an_unknown_top_level_field_is_a_400_naming_it(site):
    browser = Browser(site)
    response = browser.send(pageview(), userId="u-1")

    assert response.status_code == 400
    assert list(errors_of(response)) == ["userId"]
    assert TrackEvent.objects.count() == 0


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "text/html"])
def test_a_body_that_is_not_sent_as_json_is_a_415(site, content_type):
    browser = Browser(site)
    body = json.dumps({"visitorId": browser.visitor, "events": [pageview()], "context": {"js": True}})
    response = browser.post_raw(body, content_type=content_type)

    assert response.status_code == 415
    assert TrackEvent.objects.count() == 0


def test_application_json_is_accepted_as_well_as_text_plain(site):
    browser = Browser(site)
    body = json.dumps({"visitorId": browser.visitor, "events": [pageview()], "context": {"js": True}})

    assert browser.post_raw(body, content_type="application/json").status_code == 202
    assert TrackEvent.objects.filter(visitor_key=browser.visitor).count() == 1


def test_an_unknown_site_key_is_a_404(site):
    browser = Browser(site)
    browser.site = type(site)(site_key="site_doesnotexist000000")
    response = browser.send(pageview())

    assert response.status_code == 404
    assert "k" in errors_of(response)
    assert TrackEvent.objects.count() == 0


def test_a_deactivated_site_key_is_a_404(site):
    browser = Browser(site)
    assert browser.send(pageview()).status_code == 202
    tracking_site_update(site=site, is_active=False)

    response = browser.send(pageview())

    assert response.status_code == 404
    assert TrackEvent.objects.count() == 1


def test_a_retried_batch_is_stored_once(site):
    browser = Browser(site)
    events = [pageview("https://www.example.com/a", messageId="msg-a"), custom("clicked", messageId="msg-b")]

    first = browser.send(*events)
    retry = browser.send(*events)

    assert first.status_code == retry.status_code == 202
    assert retry.json()["rejected"] == 0
    assert TrackEvent.objects.filter(workspace=site.workspace).count() == 2
    assert set(TrackEvent.objects.values_list("message_id", flat=True)) == {"msg-a", "msg-b"}


def test_a_message_id_of_another_workspace_does_not_block_this_one(site, other_workspace):
    other = make_site(other_workspace)
    Browser(other).send(pageview(messageId="shared-id"))

    response = Browser(site).send(pageview(messageId="shared-id"))

    assert response.status_code == 202
    assert TrackEvent.objects.filter(workspace=site.workspace, message_id="shared-id").count() == 1
    assert TrackEvent.objects.filter(workspace=other_workspace, message_id="shared-id").count() == 1


def test_timestamps_in_the_future_or_older_than_7_days_are_refused_per_event(site):
    browser = Browser(site)
    recent = ago(hours=3)
    response = browser.send(
        pageview("https://www.example.com/recent", timestamp=iso(recent)),
        pageview("https://www.example.com/future", timestamp=iso(ago(hours=-1))),
        pageview("https://www.example.com/old", timestamp=iso(ago(days=8))),
        pageview("https://www.example.com/garbled", timestamp="yesterday"),
        pageview("https://www.example.com/skew", timestamp=iso(ago(minutes=-2))),
    )

    assert response.status_code == 202
    fields = {key for error in response.json()["errors"] for key in error["fields"]}
    assert fields == {"events[1].timestamp", "events[2].timestamp", "events[3].timestamp"}
    stored = {e.url.rsplit("/", 1)[1]: e for e in TrackEvent.objects.filter(visitor_key=browser.visitor)}
    assert set(stored) == {"recent", "skew"}
    assert stored["recent"].occurred_at == recent
    # A client clock a little ahead is accepted, and the event is not placed in the future.
    assert stored["skew"].occurred_at <= stored["skew"].received_at


def test_a_timestamp_without_a_zone_is_taken_as_utc(site):
    browser = Browser(site)
    at = ago(hours=2).replace(microsecond=0)
    naive = at.astimezone(UTC).replace(tzinfo=None).isoformat()

    response = browser.send(pageview(timestamp=naive))

    assert response.status_code == 202, response.content
    assert TrackEvent.objects.get(visitor_key=browser.visitor).occurred_at == at


def test_a_page_leave_without_the_pageview_it_leaves_is_refused(site):
    browser = Browser(site)
    response = browser.send(
        pageview(messageId="pv-1"),
        {"type": "page_leave", "properties": {"duration": 12}},
        {"type": "page_leave", "properties": {"pageviewId": "pv-1", "duration": -3}},
        {"type": "page_leave", "properties": {"pageviewId": "pv-1", "duration": 12, "scrollDepth": 140}},
    )

    assert response.status_code == 202
    keys = [next(iter(error["fields"])) for error in response.json()["errors"]]
    assert keys == ["events[1].properties.pageviewId", "events[2].properties.duration", "events[3].properties.scrollDepth"]
    assert list(TrackEvent.objects.filter(visitor_key=browser.visitor).values_list("kind", flat=True)) == ["pageview"]


def test_a_browser_may_not_name_a_lead_or_send_email_events(site, workspace):
    lead = make_lead(workspace, email="jane@acme.io")
    response = Browser(site).send(
        custom("upgraded", leadId=str(lead.pk)),
        custom("upgraded", email="jane@acme.io"),
        {"type": "email", "name": "email_opened"},
        identify(),
    )

    assert response.status_code == 400
    assert set(errors_of(response)) == {"events[0].leadId", "events[1].email", "events[2].type", "events[3].traits"}
    assert not TrackEvent.objects.exists()


def test_an_event_needs_a_valid_visitor_id(site):
    browser = Browser(site)
    browser.visitor = ""
    response = browser.send(
        pageview(), pageview(visitorId="short"), pageview(visitorId="has spaces in it"), pageview(visitorId="v-good-0001")
    )

    assert response.status_code == 202
    keys = [next(iter(error["fields"])) for error in response.json()["errors"]]
    assert keys == ["events[0].visitorId", "events[1].visitorId", "events[2].visitorId"]
    assert list(TrackEvent.objects.values_list("visitor_key", flat=True)) == ["v-good-0001"]


# CORS and who may write -------------------------------------------------------------------------


def test_an_allowed_origin_is_echoed_in_access_control_allow_origin(site):
    response = Browser(site).send(pageview())

    assert response.status_code == 202
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in response["Vary"]


def test_a_foreign_origin_is_refused_without_cors_headers_and_nothing_is_stored(site):
    response = Browser(site, origin=FOREIGN_ORIGIN).send(pageview())

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response
    assert TrackEvent.objects.count() == 0


def test_an_origin_added_to_the_site_is_allowed_at_once(site):
    browser = Browser(site, origin="https://shop.example.com")
    assert browser.send(pageview()).status_code == 403

    tracking_site_update(site=site, allowed_origins=[ORIGIN, "https://shop.example.com"])

    response = browser.send(pageview())
    assert response.status_code == 202
    assert response["Access-Control-Allow-Origin"] == "https://shop.example.com"


def test_preflight_from_an_allowed_origin_lists_the_methods(site, client):
    response = client.options(f"/api/v1/track?k={site.site_key}", HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")

    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "Content-Type" in response["Access-Control-Allow-Headers"]


def test_preflight_from_a_foreign_origin_or_for_an_unknown_key_is_refused(site, client):
    foreign = client.options(f"/api/v1/track?k={site.site_key}", HTTP_ORIGIN=FOREIGN_ORIGIN)
    unknown = client.options("/api/v1/track?k=site_nope00000000", HTTP_ORIGIN=ORIGIN)

    assert foreign.status_code == 403
    assert "Access-Control-Allow-Origin" not in foreign
    assert "Access-Control-Allow-Methods" not in foreign
    assert unknown.status_code == 404
    assert "Access-Control-Allow-Origin" not in unknown


def test_a_validation_error_is_readable_by_the_allowed_origin(site):
    response = Browser(site).send({"type": "event"})

    assert response.status_code == 400
    assert response["Access-Control-Allow-Origin"] == ORIGIN


def test_a_site_key_of_one_workspace_never_writes_into_another(site, workspace, other_workspace):
    other_site = make_site(other_workspace)
    other_lead = make_lead(other_workspace, email="jane@acme.io")
    shared_key = "v-shared-browser-1"
    Browser(other_site, shared_key).send(identify(email="jane@acme.io"))
    before = TrackEvent.objects.filter(workspace=other_workspace).count()
    other_engagement = engagement(other_lead)

    # Workspace A's key, naming B's site key in the body and B's visitor id: still A's events.
    response = Browser(site, shared_key).send(pageview(), custom("clicked"), siteKey=other_site.site_key)

    assert response.status_code == 202
    assert TrackEvent.objects.filter(workspace=other_workspace).count() == before
    assert TrackEvent.objects.filter(workspace=workspace, visitor_key=shared_key).count() == 2
    mine = Visitor.objects.get(workspace=workspace, visitor_key=shared_key)
    assert mine.lead is None
    assert Visitor.objects.get(workspace=other_workspace, visitor_key=shared_key).lead == other_lead
    assert engagement(other_lead).total_pageviews == other_engagement.total_pageviews
    assert engagement(other_lead).total_events == other_engagement.total_events


def test_a_server_with_a_marketer_token_tracks_events_for_a_named_lead(workspace, api):
    lead = make_lead(workspace, email="jane@acme.io")

    response = server_post(
        api,
        [
            custom("plan_upgraded", {"plan": "pro"}, leadId=str(lead.pk)),
            custom("invoice_paid", email=" Jane@Acme.io "),
            {"type": "email", "name": "email_opened", "leadId": str(lead.pk)},
        ],
    )

    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 3
    events = TrackEvent.objects.filter(workspace=workspace)
    assert events.count() == 3
    assert set(events.values_list("lead_id", flat=True)) == {lead.pk}
    assert all(e.processed_at is not None and not e.is_bot for e in events)
    counted = engagement(lead)
    assert (counted.total_events, counted.emails_opened) == (3, 1)


@pytest.mark.parametrize("user_agent", ["python-requests/2.32.3", "curl/8.5.0", ""], ids=["requests", "curl", "none"])
def test_a_server_calling_from_an_http_library_is_not_taken_for_a_bot(workspace, api, user_agent):
    lead = make_lead(workspace, email="jane@acme.io")

    response = api.post(
        "/api/v1/track", {"events": [custom("plan_upgraded", leadId=str(lead.pk))]}, format="json", HTTP_USER_AGENT=user_agent
    )

    assert response.status_code == 202
    event = TrackEvent.objects.get(workspace=workspace)
    assert not event.is_bot
    assert engagement(lead).total_events == 1


def test_a_server_naming_an_unknown_lead_gets_a_per_event_error(workspace, other_workspace, api):
    foreign = make_lead(other_workspace, email="someone@else.io")
    lead = make_lead(workspace, email="jane@acme.io")

    response = server_post(
        api,
        [
            custom("a", leadId=str(foreign.pk)),
            custom("b", email="nobody@acme.io"),
            custom("c", leadId="not-a-uuid"),
            custom("d", leadId=str(lead.pk)),
        ],
    )

    assert response.status_code == 202
    keys = [next(iter(error["fields"])) for error in response.json()["errors"]]
    assert keys == ["events[0].leadId", "events[1].email", "events[2].leadId"]
    assert list(TrackEvent.objects.values_list("name", "lead_id")) == [("d", lead.pk)]
    assert not TrackEvent.objects.filter(workspace=other_workspace).exists()


def test_a_server_may_also_send_visitor_events_without_a_site_key(workspace, api):
    response = server_post(api, [pageview("https://www.example.com/from-server")], visitorId="v-server-side-1")

    assert response.status_code == 202
    event = TrackEvent.objects.get(workspace=workspace)
    assert event.visitor.visitor_key == "v-server-side-1"
    assert event.site is None
    assert not event.is_bot  # a server is not a browser: no context.js needed


def test_a_server_naming_the_lead_of_a_visitors_event_identifies_the_visitor(site, workspace, api):
    lead = make_lead(workspace, email="jane@acme.io")
    browser = Browser(site)
    browser.send(pageview("https://www.example.com/pricing", timestamp=iso(ago(hours=2))))

    response = server_post(api, [custom("plan_upgraded", email="jane@acme.io")], visitorId=browser.visitor)
    browser.send(pageview("https://www.example.com/thanks"))

    assert response.status_code == 202
    assert Visitor.objects.get(visitor_key=browser.visitor).lead == lead
    assert set(TrackEvent.objects.values_list("lead_id", flat=True)) == {lead.pk}
    counted = engagement(lead)
    assert (counted.total_sessions, counted.total_pageviews, counted.total_events) == (2, 2, 3)


def test_a_viewer_token_may_not_track(workspace, api_as):
    lead = make_lead(workspace, email="jane@acme.io")
    viewer = api_as(Role.VIEWER)

    response = server_post(viewer, [custom("plan_upgraded", leadId=str(lead.pk))])

    assert response.status_code == 403
    assert not TrackEvent.objects.exists()


def test_a_bad_bearer_token_is_a_401_even_with_a_valid_site_key(site, client):
    body = json.dumps({"visitorId": "v-anon-000001", "events": [pageview()], "context": {"js": True}})
    response = client.post(
        f"/api/v1/track?k={site.site_key}", body, content_type="text/plain", HTTP_AUTHORIZATION="Bearer nope", HTTP_ORIGIN=ORIGIN
    )

    assert response.status_code == 401
    assert not TrackEvent.objects.exists()


def test_a_get_is_not_allowed(site, client):
    assert client.get(f"/api/v1/track?k={site.site_key}").status_code == 405


def test_a_body_over_the_size_limit_is_a_413(site, settings):
    response = Browser(site).send(custom("big", {"blob": "x" * (settings.API_MAX_BODY_BYTES + 1)}))

    assert response.status_code == 413
    assert not TrackEvent.objects.exists()


# Rate limits ------------------------------------------------------------------------------------


def test_a_site_over_its_rate_limit_gets_429_with_retry_after(workspace):
    site = make_site(workspace, rate_limit_per_minute=2)
    browser = Browser(site)

    # Fixed one-minute windows: the first two requests are always within the limit, and of five
    # requests sent at once at least one lands as the third of its window.
    responses = [browser.send(pageview(f"https://www.example.com/{i}")) for i in range(5)]

    statuses = [r.status_code for r in responses]
    assert statuses[:2] == [202, 202]
    assert 429 in statuses[2:]
    refused = next(r for r in responses if r.status_code == 429)
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["Access-Control-Allow-Origin"] == ORIGIN
    assert refused.json()["error"]["code"] == "rate_limited"
    assert TrackEvent.objects.filter(visitor_key=browser.visitor).count() == statuses.count(202)


def test_one_client_address_over_the_per_ip_limit_gets_429_while_others_go_on(site, settings):
    settings.TRACK_RATE_LIMIT_PER_IP = 2
    browser = Browser(site)
    browser.client.defaults["REMOTE_ADDR"] = "203.0.113.7"
    neighbour = Browser(site)
    neighbour.client.defaults["REMOTE_ADDR"] = "198.51.100.9"

    responses = [browser.send(pageview()) for _ in range(5)]

    statuses = [r.status_code for r in responses]
    assert statuses[:2] == [202, 202]
    assert 429 in statuses[2:]
    refused = next(r for r in responses if r.status_code == 429)
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["Access-Control-Allow-Origin"] == ORIGIN
    assert neighbour.send(pageview()).status_code == 202


def test_both_limits_hold_together_for_a_site_and_an_address(workspace, settings):
    settings.TRACK_RATE_LIMIT_PER_IP = 3
    site = make_site(workspace, rate_limit_per_minute=100)
    other_site = make_site(workspace, rate_limit_per_minute=100)
    one_address = [Browser(site), Browser(other_site)]
    for browser in one_address:
        browser.client.defaults["REMOTE_ADDR"] = "203.0.113.8"

    # The address's 4th request of a window is refused whichever site it goes to; of seven requests
    # sent at once (two windows at most) at least one is a 4th.
    responses = [one_address[i % 2].send(pageview()) for i in range(7)]

    statuses = [r.status_code for r in responses]
    assert statuses[:3] == [202, 202, 202]
    assert 429 in statuses[3:]
    refused = next(r for r in responses if r.status_code == 429)
    assert 1 <= int(refused["Retry-After"]) <= 60


def test_the_rate_limit_is_per_site(workspace):
    busy = make_site(workspace, rate_limit_per_minute=1)
    quiet = make_site(workspace)
    Browser(busy).send(pageview())
    Browser(busy).send(pageview())

    assert Browser(quiet).send(pageview()).status_code == 202


# Bots -------------------------------------------------------------------------------------------


def test_a_crawler_is_stored_flagged_and_left_out_of_the_leads_engagement(site, workspace):
    lead = make_lead(workspace, email="jane@acme.io")
    browser = Browser(site)
    browser.send(identify(email="jane@acme.io"), pageview("https://www.example.com/"))
    counted = engagement(lead)
    assert (counted.total_pageviews, counted.total_sessions) == (1, 1)

    browser.user_agent = GOOGLEBOT_UA
    response = browser.send(pageview("https://www.example.com/a"), pageview("https://www.example.com/b"), custom("clicked"))

    assert response.status_code == 202
    crawled = TrackEvent.objects.filter(visitor_key=browser.visitor, user_agent=GOOGLEBOT_UA)
    assert crawled.count() == 3
    assert all(e.is_bot and e.bot_reason == "user_agent" and e.lead_id == lead.pk for e in crawled)
    after = engagement(lead)
    assert (after.total_pageviews, after.total_events, after.total_sessions) == (1, 2, 1)
    assert Visitor.objects.get(visitor_key=browser.visitor).is_bot


def test_a_crawler_that_identifies_creates_no_lead(site):
    Browser(site, user_agent=GOOGLEBOT_UA).send(identify(email="bot@crawler.io"), custom("demo_requested", {"email": "bot@crawler.io"}))

    assert not Lead.objects.filter(email="bot@crawler.io").exists()
    assert TrackEvent.objects.filter(is_bot=True).count() == 2


def test_a_beacon_that_did_not_run_the_snippet_is_flagged_no_js(site, workspace):
    lead = make_lead(workspace, email="jane@acme.io")
    browser = Browser(site)
    browser.send(identify(email="jane@acme.io"))

    response = browser.send(pageview("https://www.example.com/x"), js=False)
    missing = browser.send(pageview("https://www.example.com/y"), js=None)

    assert response.status_code == missing.status_code == 202
    beacons = TrackEvent.objects.filter(visitor_key=browser.visitor, kind="pageview")
    assert beacons.count() == 2
    assert {(e.is_bot, e.bot_reason) for e in beacons} == {(True, "no_js")}
    assert engagement(lead).total_pageviews == 0


def test_the_noscript_pixel_records_a_pageview_flagged_no_js(site, client):
    response = client.get(f"/t.gif?k={site.site_key}&u=https://www.example.com/pricing", HTTP_USER_AGENT=HUMAN_UA)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")
    event = TrackEvent.objects.get(workspace=site.workspace)
    assert (event.kind, event.url, event.is_bot, event.bot_reason) == ("pageview", "https://www.example.com/pricing", True, "no_js")
    assert not LeadEngagement.objects.exists()


def test_the_noscript_pixel_of_an_unknown_key_is_still_an_image_and_records_nothing(client):
    response = client.get("/t.gif?k=site_unknown0000000&u=https://www.example.com/", HTTP_USER_AGENT=HUMAN_UA)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert not TrackEvent.objects.exists()


def test_an_impossible_rate_flags_the_visitor_and_its_later_events(site, workspace, settings):
    settings.TRACK_BOT_PAGEVIEWS_PER_MINUTE = 3
    lead = make_lead(workspace, email="jane@acme.io")
    browser = Browser(site)
    browser.send(identify(email="jane@acme.io"))

    response = browser.send(*[pageview(f"https://www.example.com/p{i}", timestamp=iso(ago(seconds=30 - i))) for i in range(6)])
    later = browser.send(custom("clicked"))

    assert response.status_code == later.status_code == 202
    events = list(TrackEvent.objects.filter(visitor_key=browser.visitor).exclude(kind="identify").order_by("occurred_at", "id"))
    assert [e.is_bot for e in events] == [False, False, False, True, True, True, True]
    assert {e.bot_reason for e in events if e.is_bot} == {"rate"}
    visitor = Visitor.objects.get(visitor_key=browser.visitor)
    assert (visitor.is_bot, visitor.bot_reason) == (True, "rate")
    counted = engagement(lead)
    assert counted.total_pageviews == 3
    assert counted.total_events == 1 + 3  # the identify and three pageviews
    human_events = TrackEvent.objects.filter(lead=lead, is_bot=False).exclude(kind="page_leave")
    assert counted.total_events == human_events.count()
    assert counted.total_sessions == lead.track_sessions.filter(is_bot=False).count()


# --- review fixes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["email_clicked", "email_opened", "pageview", "form_submitted", "identify"])
def test_a_browser_cannot_record_engagement_under_a_reserved_name(site, name):
    response = Browser(site).send(pageview(), {"type": "event", "name": name})

    assert response.status_code == 202
    assert response.json()["errors"][0]["fields"] == {
        "events[1].name": f"{name!r} is recorded by its own event type, not as a custom event."
    }
    assert not TrackEvent.objects.filter(name=name, kind="event").exists()


@pytest.mark.parametrize("kind", [[], {"a": 1}, 3])
def test_a_type_that_is_not_a_string_is_a_per_event_error(site, kind):
    response = Browser(site).send(pageview(), {"type": kind, "name": "x"})

    assert response.status_code == 202
    assert "events[1].type" in response.json()["errors"][0]["fields"]


def test_a_site_name_or_rate_out_of_bounds_is_refused(workspace):
    from django.core.exceptions import ValidationError

    from leads.tracking.services import tracking_site_create

    with pytest.raises(ValidationError) as error:
        tracking_site_create(workspace=workspace, name="x" * 121, rate_limit_per_minute=10**12)
    assert set(error.value.message_dict) == {"name", "rateLimitPerMinute"}
