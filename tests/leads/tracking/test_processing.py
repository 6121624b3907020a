"""What processing makes of stored events, seen through the data a user looks at: sessions, the
lead a visitor becomes (stitching, devices, the already-identified case, auto-capture, email
links), email engagement, and the sweeper that makes up for a lost task."""

import logging
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.conf import settings
from django.core.cache import cache

from leads.models import Lead, LeadActivity
from leads.tracking.email import email_click_url, email_open_pixel_url
from leads.tracking.models import IdentityConflict, LeadEngagement, TrackEvent, TrackSession, Visitor
from leads.tracking.processing import track_events_process
from leads.tracking.tasks import sweep_unprocessed_events
from tests.leads.factories import make_lead
from tests.leads.tracking.factories import (
    GOOGLEBOT_UA,
    HUMAN_UA,
    Browser,
    ago,
    broker_down,
    custom,
    identify,
    iso,
    make_site,
    pageview,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def site(workspace):
    return make_site(workspace)


def engagement(lead) -> LeadEngagement:
    return LeadEngagement.objects.filter(lead=lead).first() or LeadEngagement(lead=lead, workspace_id=lead.workspace_id)


def counts(lead) -> tuple[int, int, int]:
    """(sessions, pageviews, events) as the lead's profile shows them."""
    e = engagement(lead)
    return e.total_sessions, e.total_pageviews, e.total_events


def true_counts(lead) -> tuple[int, int, int]:
    """The same, counted from the stored sessions and events."""
    events = TrackEvent.objects.filter(lead=lead, is_bot=False).exclude(kind="page_leave")
    return TrackSession.objects.filter(lead=lead, is_bot=False).count(), events.filter(kind="pageview").count(), events.count()


def sessions_of(browser) -> list[TrackSession]:
    return list(TrackSession.objects.filter(visitor__visitor_key=browser.visitor).order_by("started_at"))


def path_of(url: str) -> str:
    assert url.startswith(settings.PUBLIC_BASE_URL)
    return url.removeprefix(settings.PUBLIC_BASE_URL)


# Sessions ---------------------------------------------------------------------------------------


def test_thirty_minutes_without_an_event_starts_a_new_session(site):
    browser = Browser(site)
    start = ago(hours=5)
    times = [start, start + timedelta(minutes=10), start + timedelta(minutes=39), start + timedelta(minutes=70)]
    # Sent out of order: processing orders by the time each event happened.
    response = browser.send(*[pageview(f"https://www.example.com/{i}", timestamp=iso(at)) for i, at in reversed(list(enumerate(times)))])

    assert response.status_code == 202
    first, second = sessions_of(browser)
    assert (first.started_at, first.last_event_at, first.pageviews) == (times[0], times[2], 3)
    assert (second.started_at, second.last_event_at, second.pageviews) == (times[3], times[3], 1)
    assert first.landing_url == "https://www.example.com/0"
    assert second.landing_url == "https://www.example.com/3"
    by_url = {e.url: e.session_id for e in TrackEvent.objects.filter(visitor_key=browser.visitor)}
    assert by_url == {f"https://www.example.com/{i}": first.pk if i < 3 else second.pk for i in range(4)}


def test_a_session_continues_across_requests_within_thirty_minutes(site):
    browser = Browser(site)
    start = ago(hours=2)
    browser.send(pageview("https://www.example.com/a", timestamp=iso(start)))
    browser.send(pageview("https://www.example.com/b", timestamp=iso(start + timedelta(minutes=29, seconds=59))))
    browser.send(pageview("https://www.example.com/c", timestamp=iso(start + timedelta(minutes=60))))

    sessions = sessions_of(browser)
    assert [s.pageviews for s in sessions] == [2, 1]
    assert sessions[0].last_event_at == start + timedelta(minutes=29, seconds=59)


def test_the_session_timeout_is_the_setting(site, settings):
    settings.TRACK_SESSION_TIMEOUT_MINUTES = 5
    browser = Browser(site)
    start = ago(hours=2)
    browser.send(*[pageview(f"https://www.example.com/{m}", timestamp=iso(start + timedelta(minutes=m))) for m in (0, 4, 10)])

    assert [s.pageviews for s in sessions_of(browser)] == [2, 1]


def test_leaving_a_page_records_time_and_scroll_on_the_pageview_and_extends_the_session(site):
    browser = Browser(site)
    start = ago(hours=1)
    browser.send(
        pageview("https://www.example.com/", messageId="pv-home", timestamp=iso(start)),
        {
            "type": "page_leave",
            "properties": {"pageviewId": "pv-home", "duration": 40, "scrollDepth": 55.4},
            "timestamp": iso(start + timedelta(seconds=40)),
        },
        pageview("https://www.example.com/pricing", messageId="pv-pricing", timestamp=iso(start + timedelta(seconds=41))),
    )
    # The last page is left in a later request (a beacon as the tab closes).
    browser.send(
        {
            "type": "page_leave",
            "properties": {"pageviewId": "pv-pricing", "duration": 300, "scrollDepth": 90},
            "timestamp": iso(start + timedelta(seconds=341)),
        }
    )

    home = TrackEvent.objects.get(message_id="pv-home")
    pricing = TrackEvent.objects.get(message_id="pv-pricing")
    assert (home.duration_seconds, home.scroll_depth) == (40, 55)
    assert (pricing.duration_seconds, pricing.scroll_depth) == (300, 90)
    (session,) = sessions_of(browser)
    assert session.ended_at == start + timedelta(seconds=341)
    assert session.duration_seconds == 341
    assert session.last_event_at == start + timedelta(seconds=41)
    assert session.pageviews == 2


def test_a_page_leave_naming_another_visitors_pageview_changes_nothing(site):
    owner = Browser(site)
    owner.send(pageview("https://www.example.com/", messageId="pv-owned"))
    Browser(site).send({"type": "page_leave", "properties": {"pageviewId": "pv-owned", "duration": 999, "scrollDepth": 100}})

    owned = TrackEvent.objects.get(message_id="pv-owned")
    assert (owned.duration_seconds, owned.scroll_depth) == (None, None)


def test_page_leaves_are_not_counted_as_pageviews_or_events(site, workspace):
    lead = make_lead(workspace, email="jane@acme.io")
    browser = Browser(site)
    browser.send(identify(email="jane@acme.io"), pageview(messageId="pv-1"))
    browser.send({"type": "page_leave", "properties": {"pageviewId": "pv-1", "duration": 10}})

    assert counts(lead) == (1, 1, 2)


def test_a_session_records_where_the_visit_came_from(site):
    browser = Browser(site)
    start = ago(hours=6)
    browser.send(
        pageview("https://www.example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=nov", timestamp=iso(start)),
        pageview("https://www.example.com/blog", referrer="https://www.google.com/", timestamp=iso(start + timedelta(hours=1))),
        pageview("https://www.example.com/x", referrer="https://news.ycombinator.com/item", timestamp=iso(start + timedelta(hours=2))),
        pageview("https://www.example.com/y", referrer="https://www.example.com/x", timestamp=iso(start + timedelta(hours=3))),
    )

    assert [(s.source, s.medium, s.campaign) for s in sessions_of(browser)] == [
        ("newsletter", "email", "nov"),
        ("google", "organic", ""),
        ("news.ycombinator.com", "referral", ""),
        ("", "", ""),
    ]
    visitor = Visitor.objects.get(visitor_key=browser.visitor)
    assert (visitor.utm_source, visitor.utm_campaign) == ("newsletter", "nov")


# Identity ---------------------------------------------------------------------------------------


def test_identify_stitches_the_anonymous_history_onto_the_new_lead(site, workspace):
    browser = Browser(site)
    browser.send(
        pageview("https://www.example.com/?utm_source=newsletter&utm_medium=email", timestamp=iso(ago(minutes=100))),
        pageview("https://www.example.com/features", timestamp=iso(ago(minutes=90))),
    )
    browser.send(pageview("https://www.example.com/pricing", timestamp=iso(ago(minutes=20))))
    assert not Lead.objects.exists()

    response = browser.send(identify(email="Jane@Acme.io", name="Jane Doe"))

    assert response.status_code == 202
    lead = Lead.objects.get(workspace=workspace)
    assert (lead.email, lead.name, lead.source_type) == ("jane@acme.io", "Jane Doe", "tracking")
    assert lead.utm_source == "newsletter"  # how this person first came
    visitor = Visitor.objects.get(visitor_key=browser.visitor)
    assert visitor.lead == lead
    assert visitor.identified_at is not None
    assert TrackEvent.objects.filter(visitor=visitor).exclude(lead=lead).count() == 0
    assert TrackSession.objects.filter(visitor=visitor).exclude(lead=lead).count() == 0
    assert counts(lead) == (2, 3, 4) == true_counts(lead)
    counted = engagement(lead)
    assert (counted.first_touch_source, counted.first_touch_medium) == ("newsletter", "email")
    assert counted.first_seen_at == TrackEvent.objects.filter(visitor=visitor).earliest("occurred_at").occurred_at
    identified = LeadActivity.objects.get(lead=lead, type="identified")
    assert identified.data["visitorId"] == browser.visitor
    assert identified.data["stitchedEvents"] == 3


def test_events_after_identify_count_for_the_lead(site, workspace):
    browser = Browser(site)
    browser.send(pageview("https://www.example.com/"), identify(email="jane@acme.io"), custom("feature_explored"))
    browser.send(pageview("https://www.example.com/pricing"))

    lead = Lead.objects.get(email="jane@acme.io")
    assert counts(lead) == (1, 2, 4) == true_counts(lead)
    assert set(TrackEvent.objects.filter(visitor_key=browser.visitor).values_list("lead_id", flat=True)) == {lead.pk}


def test_identify_with_an_existing_email_joins_that_lead(site, workspace):
    lead = make_lead(workspace, email="jane@acme.io", name="Jane Doe")
    browser = Browser(site)
    browser.send(pageview("https://www.example.com/"))

    browser.send(identify(email="JANE@acme.io"))

    assert Lead.objects.filter(workspace=workspace).count() == 1
    assert Visitor.objects.get(visitor_key=browser.visitor).lead == lead
    assert counts(lead) == (1, 1, 2)


def test_a_second_device_identifying_with_the_same_email_joins_the_same_lead_and_counts_add_up(site, workspace):
    laptop, phone = Browser(site), Browser(site)
    laptop.send(pageview("https://www.example.com/", timestamp=iso(ago(hours=3))), pageview("https://www.example.com/a"))
    laptop.send(identify(email="jane@acme.io"))
    lead = Lead.objects.get(email="jane@acme.io")
    assert counts(lead) == (2, 2, 3)

    phone.send(pageview("https://www.example.com/m", timestamp=iso(ago(hours=2))), pageview("https://www.example.com/n"))
    phone.send(identify(email="jane@acme.io"))

    assert Lead.objects.filter(workspace=workspace).count() == 1
    assert set(lead.visitors.values_list("visitor_key", flat=True)) == {laptop.visitor, phone.visitor}
    assert counts(lead) == (4, 4, 6) == true_counts(lead)


def test_a_visitor_identified_as_one_person_identifying_as_another_is_recorded_not_merged(site, workspace):
    browser = Browser(site)
    browser.send(pageview("https://www.example.com/"), identify(email="alice@acme.io", name="Alice"))
    alice = Lead.objects.get(email="alice@acme.io")
    before = counts(alice)

    response = browser.send(identify(email="bob@acme.io", name="Bob"))
    browser.send(pageview("https://www.example.com/after"))

    assert response.status_code == 202
    bob = Lead.objects.get(email="bob@acme.io")
    assert bob.pk != alice.pk
    assert Visitor.objects.get(visitor_key=browser.visitor).lead == alice
    assert not TrackEvent.objects.filter(lead=bob).exists()
    assert not TrackSession.objects.filter(lead=bob).exists()
    assert counts(bob) == (0, 0, 0)
    # The second identify and the later pageview stay Alice's, added to her history.
    assert counts(alice) == (before[0], before[1] + 1, before[2] + 2) == true_counts(alice)
    conflict = IdentityConflict.objects.get()
    assert (conflict.lead, conflict.attempted_lead, conflict.attempted_email) == (alice, bob, "bob@acme.io")
    assert conflict.visitor.visitor_key == browser.visitor
    activity = LeadActivity.objects.get(lead=alice, type="identity_conflict")
    assert activity.data["attemptedEmail"] == "bob@acme.io"
    assert activity.data["attemptedLeadId"] == str(bob.pk)
    assert not LeadActivity.objects.filter(lead=bob, type="identity_conflict").exists()


def test_identifying_again_as_the_same_person_records_no_conflict(site, workspace):
    browser = Browser(site)
    browser.send(identify(email="alice@acme.io"))
    browser.send(identify(email="Alice@Acme.io", name="Alice A."))

    assert Lead.objects.filter(workspace=workspace).count() == 1
    assert not IdentityConflict.objects.exists()
    assert LeadActivity.objects.filter(type="identified").count() == 1


def test_identify_without_an_email_leaves_the_visitor_anonymous(site, workspace):
    browser = Browser(site)
    response = browser.send(pageview(), identify(name="Jane Doe"))

    assert response.status_code == 202
    assert not Lead.objects.exists()
    assert Visitor.objects.get(visitor_key=browser.visitor).lead is None
    event = TrackEvent.objects.get(kind="identify")
    assert "email" in event.properties["captureError"]


# Auto-capture -----------------------------------------------------------------------------------


def test_an_auto_capture_event_with_an_email_creates_the_lead_and_stitches_the_visitor(site, workspace):
    browser = Browser(site)
    browser.send(pageview("https://www.example.com/demo?utm_source=linkedin&utm_campaign=q4"))

    browser.send(custom("demo_requested", {"email": "Sam@Beta.io", "name": "Sam Smith", "teamSize": "11-50"}))

    lead = Lead.objects.get(workspace=workspace)
    assert (lead.email, lead.name, lead.source_type, lead.utm_source, lead.utm_campaign) == (
        "sam@beta.io",
        "Sam Smith",
        "tracking",
        "linkedin",
        "q4",
    )
    assert lead.custom_fields["teamSize"] == "11-50"
    assert Visitor.objects.get(visitor_key=browser.visitor).lead == lead
    assert counts(lead) == (1, 1, 2)
    demo = TrackEvent.objects.get(name="demo_requested")
    assert demo.properties["capturedLeadId"] == str(lead.pk)


@pytest.mark.parametrize(
    "strategy, expected_name, expected_title",
    [("merge", "Old Name", "CTO"), ("replace", "New Name", "CTO"), ("skip", "Old Name", "")],
)
def test_auto_capture_applies_the_sites_dedup_strategy(workspace, strategy, expected_name, expected_title):
    site = make_site(workspace, dedup_strategy=strategy)
    lead = make_lead(workspace, email="sam@beta.io", name="Old Name")

    Browser(site).send(custom("trial_started", {"email": "sam@beta.io", "name": "New Name", "title": "CTO"}))

    assert Lead.objects.filter(workspace=workspace).count() == 1
    lead.refresh_from_db()
    assert (lead.name, lead.title) == (expected_name, expected_title)


def test_an_auto_capture_event_without_the_required_field_creates_no_lead(site, workspace):
    browser = Browser(site)
    response = browser.send(custom("demo_requested", {"name": "Sam Smith", "company": "Beta"}))

    assert response.status_code == 202
    assert not Lead.objects.exists()
    assert Visitor.objects.get(visitor_key=browser.visitor).lead is None


def test_auto_capture_honours_the_sites_required_fields(workspace):
    site = make_site(workspace, auto_capture_required_fields=["email", "phone"])
    Browser(site).send(custom("demo_requested", {"email": "sam@beta.io"}))
    assert not Lead.objects.exists()

    Browser(site).send(custom("demo_requested", {"email": "sam@beta.io", "phone": "+1 415 555 2671"}))
    assert Lead.objects.get().email == "sam@beta.io"


def test_only_the_sites_auto_capture_events_create_leads(workspace):
    site = make_site(workspace, auto_capture_events=["webinar_registered"])
    Browser(site).send(custom("demo_requested", {"email": "sam@beta.io"}))
    assert not Lead.objects.exists()

    Browser(site).send(custom("webinar_registered", {"email": "sam@beta.io"}))
    assert Lead.objects.get().email == "sam@beta.io"


def test_a_submitted_form_maps_its_fields_and_creates_a_form_lead(site, workspace):
    browser = Browser(site)
    browser.send(
        {
            "type": "form",
            "name": "form_submitted",
            "properties": {
                "formId": "contact",
                "fields": {"email": "kim@gamma.io", "full_name": "Kim Lee", "company_name": "Gamma", "job_title": "VP Sales"},
            },
        }
    )

    lead = Lead.objects.get(workspace=workspace)
    assert (lead.name, lead.title, lead.source_type) == ("Kim Lee", "VP Sales", "form")
    assert lead.company.name == "Gamma"
    assert Visitor.objects.get(visitor_key=browser.visitor).lead == lead


def test_a_submitted_form_for_a_known_email_merges_into_that_lead(site, workspace):
    lead = make_lead(workspace, email="kim@gamma.io", name="Kim Lee")
    browser = Browser(site)

    browser.send(
        {"type": "form", "name": "form_submitted", "properties": {"fields": {"email": "Kim@Gamma.io", "phone_number": "+1 415 555 2671"}}}
    )

    assert Lead.objects.filter(workspace=workspace).count() == 1
    lead.refresh_from_db()
    assert lead.phone == "+14155552671"
    assert LeadActivity.objects.filter(lead=lead, type="merged").exists()
    assert Visitor.objects.get(visitor_key=browser.visitor).lead == lead


def test_other_form_events_create_no_lead(site):
    Browser(site).send(
        {"type": "form", "name": "field_completed", "properties": {"fields": {"email": "kim@gamma.io"}}},
        {"type": "form", "name": "form_abandoned", "properties": {"fields": {"email": "kim@gamma.io"}}},
    )

    assert not Lead.objects.exists()


# Email links and pixels -------------------------------------------------------------------------


def test_an_email_click_redirects_with_a_token_that_identifies_a_new_visitor(site, workspace, client):
    lead = make_lead(workspace, email="jane@acme.io")
    link = email_click_url(lead=lead, url="https://www.example.com/pricing?plan=pro", campaign="nov-launch", message="m-1")

    response = client.get(path_of(link), HTTP_USER_AGENT=HUMAN_UA)

    assert response.status_code == 302
    target = urlparse(response["Location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "www.example.com", "/pricing")
    query = parse_qs(target.query)
    assert query["plan"] == ["pro"]
    token = query["_lmt"][0]
    counted = engagement(lead)
    assert (counted.emails_clicked, counted.touch_count, counted.last_touch_source, counted.last_touch_campaign) == (
        1,
        1,
        "email",
        "nov-launch",
    )

    browser = Browser(site)
    browser.send(pageview(response["Location"]), identify(leadToken=token))

    assert Visitor.objects.get(visitor_key=browser.visitor).lead == lead
    assert Lead.objects.filter(workspace=workspace).count() == 1
    counted = engagement(lead)
    assert (counted.emails_clicked, counted.total_pageviews, counted.total_sessions) == (1, 1, 1)
    assert LeadActivity.objects.get(lead=lead, type="identified").data["source"] == "email_click"


def test_a_visitor_identified_as_one_person_following_anothers_email_link_is_recorded_not_merged(site, workspace, client):
    browser = Browser(site)
    browser.send(identify(email="alice@acme.io"))
    alice = Lead.objects.get(email="alice@acme.io")
    bob = make_lead(workspace, email="bob@acme.io")
    redirect = client.get(path_of(email_click_url(lead=bob, url="https://www.example.com/")))
    token = parse_qs(urlparse(redirect["Location"]).query)["_lmt"][0]

    browser.send(pageview(redirect["Location"]), identify(leadToken=token))

    assert Visitor.objects.get(visitor_key=browser.visitor).lead == alice
    conflict = IdentityConflict.objects.get()
    assert (conflict.lead, conflict.attempted_lead, conflict.source) == (alice, bob, "email_click")
    assert not TrackEvent.objects.filter(lead=bob).exclude(kind="email").exists()
    assert engagement(bob).total_pageviews == 0


@pytest.mark.parametrize("token", ["not-a-token", "eyJ3IjoiMSJ9:tampered:signature"])
def test_an_invalid_lead_token_identifies_no_one(site, workspace, token):
    make_lead(workspace, email="jane@acme.io")
    browser = Browser(site)

    response = browser.send(pageview(), identify(leadToken=token))

    assert response.status_code == 202
    assert Visitor.objects.get(visitor_key=browser.visitor).lead is None
    assert Lead.objects.filter(workspace=workspace).count() == 1
    assert "identifyError" in TrackEvent.objects.get(kind="identify").properties


def test_a_lead_token_of_another_workspace_identifies_no_one(site, other_workspace, client):
    stranger = make_lead(other_workspace, email="jane@acme.io")
    link = email_click_url(lead=stranger, url="https://www.example.com/")
    token = parse_qs(urlparse(client.get(path_of(link))["Location"]).query)["_lmt"][0]
    browser = Browser(site)

    browser.send(identify(leadToken=token))

    assert Visitor.objects.get(visitor_key=browser.visitor).lead is None
    assert not Visitor.objects.filter(lead=stranger).exists()


def test_the_open_pixel_is_a_gif_and_counts_each_open(workspace, client):
    lead = make_lead(workspace, email="jane@acme.io")
    pixel = path_of(email_open_pixel_url(lead=lead, campaign="nov", message="m-1"))

    first = client.get(pixel, HTTP_USER_AGENT=HUMAN_UA)
    client.get(pixel, HTTP_USER_AGENT=HUMAN_UA)

    assert first.status_code == 200
    assert first["Content-Type"] == "image/gif"
    assert first.content.startswith(b"GIF89a")
    assert "no-store" in first["Cache-Control"]
    counted = engagement(lead)
    assert (counted.emails_opened, counted.emails_clicked, counted.touch_count) == (2, 0, 0)
    opens = TrackEvent.objects.filter(lead=lead, name="email_opened")
    assert opens.count() == 2
    assert opens.first().properties["campaign"] == "nov"


def tampered(path: str) -> str:
    """The same URL with one character of the signed token changed."""
    head, token = path.rsplit("/", 1)
    index = len(token) // 2
    return f"{head}/{token[:index]}{'A' if token[index] != 'A' else 'B'}{token[index + 1 :]}"


def test_a_tampered_click_link_is_a_404_and_records_nothing(workspace, client):
    lead = make_lead(workspace, email="jane@acme.io")
    link = path_of(email_click_url(lead=lead, url="https://www.example.com/"))

    response = client.get(tampered(link), HTTP_USER_AGENT=HUMAN_UA)

    assert response.status_code == 404
    assert not TrackEvent.objects.exists()
    assert engagement(lead).emails_clicked == 0


def test_a_tampered_open_pixel_is_still_a_gif_but_records_nothing(workspace, client):
    lead = make_lead(workspace, email="jane@acme.io")
    pixel = path_of(email_open_pixel_url(lead=lead))

    response = client.get(tampered(pixel.removesuffix(".gif")) + ".gif", HTTP_USER_AGENT=HUMAN_UA)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert not TrackEvent.objects.exists()
    assert engagement(lead).emails_opened == 0


def test_a_mail_scanner_following_a_link_is_not_a_click(workspace, client):
    lead = make_lead(workspace, email="jane@acme.io")
    link = path_of(email_click_url(lead=lead, url="https://www.example.com/"))

    response = client.get(link, HTTP_USER_AGENT=GOOGLEBOT_UA)

    assert response.status_code == 302
    assert TrackEvent.objects.get(lead=lead).is_bot
    assert engagement(lead).emails_clicked == 0


def test_an_email_link_of_a_deleted_lead_still_redirects_without_a_token(workspace, client):
    lead = make_lead(workspace, email="jane@acme.io")
    link = path_of(email_click_url(lead=lead, url="https://www.example.com/"))
    Lead.objects.filter(pk=lead.pk).update(deleted_at=ago(minutes=1))

    response = client.get(link)

    assert response.status_code == 302
    assert response["Location"] == "https://www.example.com/"
    assert not TrackEvent.objects.exists()


# The sweeper ------------------------------------------------------------------------------------


def stored_unprocessed(site, visitor: str, **fields) -> TrackEvent:
    """An event stored by the Track API whose processing task never arrived."""
    fields.setdefault("kind", "pageview")
    fields.setdefault("name", fields["kind"])
    fields.setdefault("received_at", ago(minutes=10))
    fields.setdefault("occurred_at", fields["received_at"])
    return TrackEvent.objects.create(
        workspace=site.workspace, site=site, visitor_key=visitor, user_agent=HUMAN_UA, url="https://www.example.com/", **fields
    )


def test_the_sweeper_processes_events_whose_task_was_lost(site, workspace):
    browser = Browser(site)
    browser.send(identify(email="jane@acme.io"))
    lead = Lead.objects.get(email="jane@acme.io")
    before = counts(lead)
    lost = [stored_unprocessed(site, browser.visitor), stored_unprocessed(site, browser.visitor, kind="event", name="clicked")]
    stranger = stored_unprocessed(site, "v-never-processed-1")
    email_lost = TrackEvent.objects.create(
        workspace=workspace, lead=lead, kind="email", name="email_opened", occurred_at=ago(minutes=10), received_at=ago(minutes=10)
    )

    assert sweep_unprocessed_events() == 1  # one workspace's work sent

    for event in [*lost, stranger, email_lost]:
        event.refresh_from_db()
        assert event.processed_at is not None
    assert {e.lead_id for e in lost} == {lead.pk}
    assert stranger.visitor.visitor_key == "v-never-processed-1"
    assert stranger.session is not None
    counted = engagement(lead)
    assert (counted.total_pageviews, counted.total_events, counted.emails_opened) == (before[1] + 1, before[2] + 3, 1)
    assert sweep_unprocessed_events() == 0


def test_the_sweeper_leaves_events_received_a_moment_ago(site):
    waiting = stored_unprocessed(site, "v-just-received-1", received_at=ago(seconds=5))

    assert sweep_unprocessed_events() == 0
    waiting.refresh_from_db()
    assert waiting.processed_at is None


def test_with_the_broker_down_events_are_accepted_and_the_sweeper_processes_them(site, workspace, caplog):
    browser = Browser(site)
    with broker_down(), caplog.at_level(logging.WARNING, logger="leads.tracking.tasks"):
        response = browser.send(pageview("https://www.example.com/"), identify(email="jane@acme.io"))
    assert any("could not enqueue" in record.getMessage() for record in caplog.records), "the broker was not down"

    assert response.status_code == 202
    assert response.json()["accepted"] == 2
    assert TrackEvent.objects.filter(visitor_key=browser.visitor, processed_at__isnull=True).count() == 2
    assert not Lead.objects.exists()

    assert sweep_unprocessed_events(stalled_seconds=0) == 1

    lead = Lead.objects.get(email="jane@acme.io")
    assert Visitor.objects.get(visitor_key=browser.visitor).lead == lead
    assert counts(lead) == (1, 1, 2)
    assert not TrackEvent.objects.filter(processed_at__isnull=True).exists()


def test_processing_twice_counts_once(site, workspace):
    """A task delivered twice (acks_late) finds nothing left to do."""
    browser = Browser(site)
    browser.send(identify(email="jane@acme.io"), pageview())
    lead = Lead.objects.get()

    assert track_events_process(workspace_id=workspace.pk, visitor_keys=[browser.visitor], lead_ids=[str(lead.pk)]) == 0
    assert counts(lead) == (1, 1, 2)
