"""The tracking snippet on a customer's site, in a real browser.

A small landing site is served from a second local origin (127.0.0.1:<port>, while the app is
live_server's localhost:<port>); its pages carry the one-tag install pointing at the app. What
the browser sends there must become one lead with its visits, attribution and form history.
"""

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection
from playwright.sync_api import expect

from leads.models import Lead
from leads.tracking.models import EventKind, TrackEvent, Visitor
from leads.tracking.services import personalization_rule_create, tracking_site_create
from tests.workspaces.factories import member, token_for
from workspaces.models import Role

LANDING_PAGES = Path(__file__).resolve().parent / "landing"
CAMPAIGN = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring-launch"}
WAIT_SECONDS = 15.0
VISITOR_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
DATABASE_TURN = threading.Lock()


@pytest.fixture(scope="module")
def browser(launch_browser, browser_type_launch_args):
    """Chromium with a visitor's user agent. Headless Chromium says "HeadlessChrome", which the
    Track API rightly flags as a bot; a context's user_agent is not enough, since the beacons a page
    sends as it unloads still carry the browser's own. So this module launches its own browser
    with --user-agent, as a visitor's Chrome would identify itself."""
    browser = launch_browser(args=[*browser_type_launch_args.get("args", []), f"--user-agent={VISITOR_USER_AGENT}"])
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def live_application(live_server):
    """The live server's WSGI application, put back when this module is done."""
    httpd = live_server.thread.httpd
    application = httpd.get_app()
    yield httpd, application
    httpd.set_app(application)


@pytest.fixture(autouse=True)
def one_request_at_a_time_on_sqlite(live_application):
    """The browser sends overlapping requests (a page's leave beacon while the next page fetches
    its configuration). In-memory SQLite, the default test database, cannot take overlapping
    writers: each server thread has its own connection to one shared-cache database, and a table
    lock fails the other connections at once ("database table is locked") instead of waiting. So
    on SQLite the live server handles one request at a time, the test reads the database between
    requests, and once the test is over the server answers 503 without touching the database
    being emptied. On PostgreSQL requests run concurrently, as in production."""
    if connection.vendor != "sqlite":
        yield
        return
    httpd, application = live_application
    test_running = True

    def in_turn(environ, start_response):
        with DATABASE_TURN:
            if test_running:
                return application(environ, start_response)
        start_response("503 Service Unavailable", [("Content-Length", "0")])
        return [b""]

    httpd.set_app(in_turn)
    yield
    with DATABASE_TURN:
        test_running = False


class LandingHandler(BaseHTTPRequestHandler):
    """Serves tests/e2e/landing/*.html with the snippet tag filled in (app URL and site key)."""

    def do_GET(self):
        name = urlsplit(self.path).path.lstrip("/") or "index.html"
        page = LANDING_PAGES / name
        if "/" in name or page.suffix != ".html" or not page.is_file():
            self.send_error(404)
            return
        html = page.read_text(encoding="utf-8")
        body = html.replace("__APP__", self.server.app_url).replace("__SITE_KEY__", self.server.site_key).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class LandingSite:
    def __init__(self, app_url: str, site_key: str = ""):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), LandingHandler)
        self.server.daemon_threads = True
        self.server.app_url = app_url
        self.server.site_key = site_key
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        self.site = None
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return self.origin + path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


@pytest.fixture
def landing_sites(live_server):
    """landing_sites(site_key) → a LandingSite on a new port, its pages tagged with that key."""
    started = []

    def start(site_key: str = "") -> LandingSite:
        started.append(LandingSite(live_server.url, site_key))
        return started[-1]

    yield start
    for landing in started:
        landing.stop()


@pytest.fixture
def landing(landing_sites, e2e_workspace):
    """The customer's site: its origin is the tracking site's only allowed origin."""
    landing = landing_sites()
    landing.site = tracking_site_create(
        workspace=e2e_workspace, name="Acme Widgets", allowed_origins=[landing.origin], form_exclude=["#search-form"]
    )
    landing.server.site_key = landing.site.site_key
    return landing


@pytest.fixture
def api_get(page, live_server, e2e_workspace):
    """api_get(path) → the JSON of a GET on the app's API with a marketer's bearer token."""
    token = token_for(member(e2e_workspace, role=Role.MARKETER))

    def get(path: str):
        response = page.request.get(f"{live_server.url}{path}", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 200, response.text()
        return response.json()

    return get


def eventually(condition, what: str):
    """Polls the database: the Track API stores events, then processes them after commit."""
    deadline = time.monotonic() + WAIT_SECONDS

    def check():
        with DATABASE_TURN:
            return condition()

    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {WAIT_SECONDS:.0f} s for {what}")
        time.sleep(0.1)
    return result


def stored(site, **filters):
    return TrackEvent.objects.filter(site=site, **filters)


def all_processed(site) -> bool:
    return stored(site).exists() and not stored(site, processed_at__isnull=True).exists()


def wait_until_form_tracked(site, form_id: str) -> None:
    """The snippet tracks forms once it has its site's configuration; a person takes that long to start typing."""
    eventually(lambda: stored(site, name="form_viewed", properties__formId=form_id).exists(), f"form_viewed of #{form_id}")


def every_page_left(site, pageviews: int) -> bool:
    """Each of `pageviews` pages sent its view and its leave, and all of it is processed."""
    return (
        stored(site, kind=EventKind.PAGEVIEW).count() >= pageviews
        and stored(site, kind=EventKind.PAGE_LEAVE).count() >= pageviews
        and all_processed(site)
    )


def leave_for_a_page_without_the_snippet(page, landing, pageviews: int) -> None:
    """Ends a visit: nothing the browser sends may still be arriving when the test's data is removed."""
    page.goto(landing.url("/thanks.html"))
    eventually(lambda: every_page_left(landing.site, pageviews), f"{pageviews} pages viewed and left, processed")


def request_a_demo(page, landing, email="jane.doe@acme.io", full_name="Jane Doe", company="Acme Inc"):
    """On the demo page: fill the tracked form and submit it, as a person would."""
    wait_until_form_tracked(landing.site, "demo-form")
    form = page.locator("#demo-form")
    form.locator("[name=email]").fill(email)
    form.locator("[name=full_name]").fill(full_name)
    form.locator("[name=company_name]").fill(company)
    form.get_by_role("button", name="Request a demo").click()
    page.wait_for_url(re.compile(r"/thanks\.html\?"))


def test_a_campaign_visit_and_a_demo_request_become_one_lead_with_its_history(page, landing, api_get, e2e_workspace):
    site = landing.site
    page.goto(landing.url("/index.html?" + "&".join(f"{key}={value}" for key, value in CAMPAIGN.items())))
    page.click("#to-pricing")
    page.wait_for_url(landing.url("/pricing.html"))
    page.click("#to-demo")
    page.wait_for_url(landing.url("/demo.html"))
    request_a_demo(page, landing)

    # Three pages carry the snippet (the form's action page does not).
    eventually(
        lambda: every_page_left(site, pageviews=3) and stored(site, name="form_submitted").exists(),
        "three pages viewed and left and the form submitted, processed",
    )
    leads = list(Lead.objects.filter(workspace=e2e_workspace))
    assert len(leads) == 1
    lead = leads[0]
    assert (lead.email, lead.name, lead.company.name) == ("jane.doe@acme.io", "Jane Doe", "Acme Inc")
    assert (lead.source_type, lead.utm_source, lead.utm_campaign) == ("form", "newsletter", "spring-launch")

    cookie = next(c for c in page.context.cookies(landing.origin) if c["name"] == "_lm_vid")
    assert Visitor.objects.get(workspace=e2e_workspace, visitor_key=cookie["value"]).lead == lead
    assert set(stored(site).values_list("visitor_key", flat=True)) == {cookie["value"]}
    assert not stored(site, is_bot=True).exists()

    profile = api_get(f"/api/v1/leads/{lead.pk}/profile")
    assert profile["contact"]["email"] == "jane.doe@acme.io"
    assert profile["engagement"]["totalPageviews"] == 3
    assert profile["engagement"]["totalSessions"] == 1
    first_touch = profile["attribution"]["firstTouch"]
    assert (first_touch["source"], first_touch["medium"], first_touch["campaign"]) == ("newsletter", "email", "spring-launch")

    pageviews = api_get(f"/api/v1/leads/{lead.pk}/timeline?types=pageview")["items"]
    assert [item["data"]["page"] for item in pageviews] == ["/demo.html", "/pricing.html", "/index.html"]

    items = api_get(f"/api/v1/leads/{lead.pk}/timeline?types=form")["items"]
    assert {item["type"] for item in items} == {"form"}
    assert {(item["data"]["formId"], item["data"]["page"]) for item in items} == {("demo-form", "/demo.html")}
    actions = Counter(item["data"]["action"] for item in items)
    assert (actions["form_viewed"], actions["form_submitted"], actions["form_abandoned"]) == (1, 1, 0)
    focused = sorted(item["data"]["field"] for item in items if item["data"]["action"] == "field_focused")
    assert focused == ["company_name", "email", "full_name"]
    submitted = next(item for item in items if item["data"]["action"] == "form_submitted")
    assert submitted["data"]["capturedLeadId"] == str(lead.pk)


def test_a_form_the_site_excludes_sends_no_form_events_and_makes_no_lead(page, landing, e2e_workspace):
    site = landing.site
    page.goto(landing.url("/search.html"))
    wait_until_form_tracked(site, "newsletter-form")
    search = page.locator("#search-form")
    search.locator("[name=q]").fill("blue widgets")
    search.locator("[name=email]").fill("searcher@example.com")
    assert page.evaluate("() => window.leadsmgr.flush()") == []  # typing in it queued nothing to send
    search.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/results\.html\?"))

    # Leaving the page is sent after anything its submit would have sent.
    eventually(lambda: stored(site, kind=EventKind.PAGE_LEAVE).exists() and all_processed(site), "the search page's leave, processed")
    form_events = stored(site, kind=EventKind.FORM)
    assert [(event.name, event.properties.get("formId")) for event in form_events] == [("form_viewed", "newsletter-form")]
    assert not Lead.objects.filter(workspace=e2e_workspace).exists()
    assert not any("searcher@example.com" in json.dumps([event.url, event.properties]) for event in stored(site))


def test_a_page_on_an_origin_the_site_does_not_allow_gets_no_event_stored(page, landing, landing_sites, live_server, e2e_workspace):
    stranger = landing_sites(landing.site.site_key)  # the same tag, copied onto another origin

    def track_post(request):
        return request.url.startswith(f"{live_server.url}/api/v1/track?") and request.method == "POST"

    probe = "async () => { window.leadsmgr.track('probe'); return await window.leadsmgr.flush(); }"

    # The app answers 403 without CORS headers, so the browser fails the request for the page.
    with page.expect_request(track_post) as refused:
        page.goto(stranger.url("/index.html?utm_source=copied"))
    assert refused.value.response() is None
    assert refused.value.failure
    assert page.evaluate(probe) == [None]

    with page.expect_response(lambda response: track_post(response.request)) as accepted:
        page.goto(landing.url("/index.html"))
    assert accepted.value.status == 202
    assert accepted.value.headers["access-control-allow-origin"] == landing.origin
    assert page.evaluate(probe) == [{"accepted": 1, "rejected": 0, "errors": []}]

    leave_for_a_page_without_the_snippet(page, landing, pageviews=1)
    events = TrackEvent.objects.filter(workspace=e2e_workspace)
    assert sorted(events.values_list("name", flat=True)) == ["page_leave", "pageview", "probe"]
    assert all(event.url.startswith(landing.origin + "/") for event in events.exclude(kind=EventKind.PAGE_LEAVE))


def test_a_page_loaded_after_the_form_greets_the_visitor_by_name(page, landing, e2e_workspace):
    personalization_rule_create(
        workspace=e2e_workspace,
        name="Greet known visitors",
        conditions={"identified": True},
        changes=[{"selector": ".hero", "content": "Welcome back, {{firstName}}!"}],
    )
    page.goto(landing.url("/index.html"))
    assert page.evaluate("() => window.leadsmgr.personalize()") == []  # an anonymous visitor gets no changes
    expect(page.locator(".hero")).to_have_text("Widgets for every team")

    page.goto(landing.url("/demo.html"))
    request_a_demo(page, landing, email="sam@initech.com", full_name="Sam Rivera", company="Initech")
    known = Visitor.objects.filter(workspace=e2e_workspace, lead__email="sam@initech.com")
    eventually(known.exists, "the visitor known as the lead")

    page.goto(landing.url("/index.html"))
    expect(page.locator(".hero")).to_have_text("Welcome back, Sam!")
    leave_for_a_page_without_the_snippet(page, landing, pageviews=3)
