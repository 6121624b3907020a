"""Events of one lead arriving through many browsers and requests at once, and first identifies
racing each other: counters must equal what is stored, and one person must stay one lead.

Only PostgreSQL runs requests truly in parallel (SQLite has one writer at a time), so these run
there: real commits, one connection per thread.
"""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection

from leads.models import Lead
from leads.tracking.models import IdentityConflict, LeadEngagement, TrackEvent, TrackSession, Visitor
from tests.concurrency import run_concurrently
from tests.leads.factories import make_lead
from tests.leads.tracking.factories import Browser, ago, custom, identify, iso, make_site, pageview

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="concurrent tracking needs PostgreSQL (set DATABASE_URL): SQLite serializes writers, so there is no race to test",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def counted(lead) -> dict:
    e = LeadEngagement.objects.get(lead=lead)
    return {"sessions": e.total_sessions, "pageviews": e.total_pageviews, "events": e.total_events}


def stored(lead) -> dict:
    human = TrackEvent.objects.filter(lead=lead, is_bot=False).exclude(kind="page_leave")
    return {
        "sessions": TrackSession.objects.filter(lead=lead, is_bot=False).count(),
        "pageviews": human.filter(kind="pageview").count(),
        "events": human.count(),
    }


def test_events_of_one_lead_from_many_browsers_at_once_are_all_counted(workspace):
    site = make_site(workspace)
    lead = make_lead(workspace, email="jane@acme.io")
    devices = [Browser(site) for _ in range(20)]
    shared = Browser(site)
    for browser in [*devices, shared]:
        assert browser.send(identify(email="jane@acme.io")).status_code == 202
    assert Visitor.objects.filter(lead=lead).count() == 21
    before = counted(lead)
    assert before == stored(lead) == {"sessions": 21, "pageviews": 0, "events": 21}

    def batch(browser: Browser, n: int):
        # Two earlier visits each, reported now: new sessions as well as new pageviews.
        first, second = ago(hours=3, seconds=n), ago(hours=2, seconds=n)
        return lambda: browser.send(
            pageview("https://www.example.com/?utm_source=ads", timestamp=iso(first)),
            pageview("https://www.example.com/a", timestamp=iso(first + timedelta(minutes=1))),
            pageview("https://www.example.com/b", timestamp=iso(first + timedelta(minutes=2))),
            custom("feature_explored", timestamp=iso(first + timedelta(minutes=3))),
            pageview("https://www.example.com/c", timestamp=iso(second)),
            pageview("https://www.example.com/d", timestamp=iso(second + timedelta(minutes=1))),
            custom("signup_clicked", timestamp=iso(second + timedelta(minutes=2))),
        )

    # The shared browser gets its own client per request, as separate tabs would.
    calls = [batch(browser, i) for i, browser in enumerate(devices)]
    calls += [batch(Browser(site, shared.visitor), 100 + i) for i in range(5)]
    responses = run_concurrently(calls)

    assert [r.status_code for r in responses] == [202] * 25
    assert not TrackEvent.objects.filter(processed_at__isnull=True).exists()
    assert not TrackEvent.objects.filter(is_bot=True).exists()
    assert set(TrackEvent.objects.values_list("lead_id", flat=True)) == {lead.pk}
    after = counted(lead)
    assert after == stored(lead)
    assert after["pageviews"] == 25 * 5
    assert after["events"] == 21 + 25 * 7
    assert after["sessions"] >= 21 + 20 * 2 + 2
    engagement = LeadEngagement.objects.get(lead=lead)
    assert engagement.touch_count == TrackSession.objects.filter(lead=lead).exclude(source="").count()
    assert engagement.first_touch_source == "ads"


def test_two_browsers_identifying_as_one_new_person_at_once_make_one_lead(workspace):
    site = make_site(workspace)
    browsers = [Browser(site) for _ in range(2)]
    for index, browser in enumerate(browsers):
        browser.send(
            pageview("https://www.example.com/", timestamp=iso(ago(hours=4 + index))),
            pageview("https://www.example.com/pricing", timestamp=iso(ago(hours=4 + index, minutes=-5))),
        )

    responses = run_concurrently([lambda b=browser: b.send(identify(email="jane@acme.io", name="Jane")) for browser in browsers])

    assert [r.status_code for r in responses] == [202, 202]
    lead = Lead.objects.get(workspace=workspace)
    assert set(Visitor.objects.filter(lead=lead).values_list("visitor_key", flat=True)) == {b.visitor for b in browsers}
    assert counted(lead) == stored(lead) == {"sessions": 4, "pageviews": 4, "events": 6}
    assert not IdentityConflict.objects.exists()


def test_ten_browsers_of_one_person_identifying_at_once_make_one_lead_with_every_count(workspace):
    site = make_site(workspace)
    browsers = [Browser(site) for _ in range(10)]
    for browser in browsers:
        browser.send(pageview("https://www.example.com/", timestamp=iso(ago(hours=1))))

    calls = [lambda b=browser: b.send(identify(email="Jane@Acme.io"), pageview("https://www.example.com/welcome")) for browser in browsers]
    responses = run_concurrently(calls)

    assert [r.status_code for r in responses] == [202] * 10
    lead = Lead.objects.get(workspace=workspace)
    assert Visitor.objects.filter(lead=lead).count() == 10
    assert counted(lead) == stored(lead) == {"sessions": 20, "pageviews": 20, "events": 30}


def test_one_browser_identifying_as_two_people_at_once_belongs_to_one_and_records_the_other(workspace):
    site = make_site(workspace)
    browser = Browser(site)
    browser.send(pageview("https://www.example.com/", timestamp=iso(ago(minutes=10))))

    responses = run_concurrently(
        [lambda email=email: Browser(site, browser.visitor).send(identify(email=email)) for email in ("alice@acme.io", "bob@acme.io")]
    )

    assert [r.status_code for r in responses] == [202, 202]
    alice, bob = Lead.objects.get(email="alice@acme.io"), Lead.objects.get(email="bob@acme.io")
    owner = Visitor.objects.get(visitor_key=browser.visitor).lead
    other = bob if owner == alice else alice
    assert owner in (alice, bob)
    conflict = IdentityConflict.objects.get()
    assert (conflict.lead, conflict.attempted_lead) == (owner, other)
    assert set(TrackEvent.objects.values_list("lead_id", flat=True)) == {owner.pk}
    assert counted(owner) == stored(owner) == {"sessions": 1, "pageviews": 1, "events": 3}
    assert not LeadEngagement.objects.filter(lead=other).exists()
