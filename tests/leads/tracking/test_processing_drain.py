"""The workspace drain: one message processes what many Track API requests stored."""

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from leads.models import Lead
from leads.tracking import tasks
from leads.tracking.models import LeadEngagement, TrackEvent
from leads.tracking.processing import pending_work
from tests.leads.tracking.factories import Browser, broker_down, identify, make_site, pageview, real_broker

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def site(workspace):
    return make_site(workspace)


def send_unprocessed(site, count: int) -> list[Browser]:
    """Browsers whose batches are stored while the broker is down: nothing processes them yet."""
    browsers = [Browser(site) for _ in range(count)]
    with broker_down():
        for n, browser in enumerate(browsers):
            assert browser.send(pageview(f"https://www.example.com/p{n}"), identify(email=f"v{n}@acme.io")).status_code == 202
    assert TrackEvent.objects.filter(processed_at__isnull=True).count() == 2 * count
    return browsers


def test_one_drain_processes_every_waiting_visitor_and_their_leads_appear(site, workspace):
    send_unprocessed(site, 3)
    assert not Lead.objects.exists()

    assert tasks.process_pending_track_events(str(workspace.pk)) == 6

    assert not TrackEvent.objects.filter(processed_at__isnull=True).exists()
    assert pending_work(workspace_id=workspace.pk, limit=10) == ([], [])
    for n in range(3):
        lead = Lead.objects.get(email=f"v{n}@acme.io")
        assert LeadEngagement.objects.get(lead=lead).total_pageviews == 1
    assert tasks.process_pending_track_events(str(workspace.pk)) == 0  # idempotent


def test_a_drain_longer_than_its_rounds_hands_over_to_a_new_message(site, workspace, monkeypatch):
    send_unprocessed(site, 3)
    monkeypatch.setattr(tasks, "DRAIN_BATCH", 1)
    monkeypatch.setattr(tasks, "DRAIN_ROUNDS", 2)

    # Two visitors in this task; it sends itself again for the third (run inline here: eager).
    tasks.process_pending_track_events(str(workspace.pk))
    assert not TrackEvent.objects.filter(processed_at__isnull=True).exists()
    assert Lead.objects.count() == 3


def test_pending_work_lists_the_longest_waiting_visitors_first(site, workspace):
    browsers = send_unprocessed(site, 3)
    keys, lead_ids = pending_work(workspace_id=workspace.pk, limit=2)
    assert keys == [browsers[0].visitor, browsers[1].visitor]
    assert lead_ids == []


@pytest.mark.skipif(not settings.REDIS_URL, reason="coalescing needs the shared cache and a Redis broker (set REDIS_URL)")
def test_a_burst_of_track_requests_sends_one_processing_message(site):
    with real_broker() as waiting:
        for n in range(20):
            assert Browser(site).send(pageview(f"https://www.example.com/{n}")).status_code == 202
        assert waiting() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the fault is injected with a PostgreSQL trigger")
def test_a_visitor_whose_processing_fails_does_not_hold_the_others_back(site, workspace):
    browsers = send_unprocessed(site, 3)
    poisoned = browsers[0].visitor  # the longest waiting: first in every round
    with connection.cursor() as cursor:
        cursor.execute(
            """CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'injected failure'; END $$;
               CREATE TRIGGER poison BEFORE UPDATE ON track_events FOR EACH ROW
               WHEN (NEW.visitor_key = '"""
            + poisoned
            + """') EXECUTE FUNCTION poison();"""
        )

    tasks.process_pending_track_events(str(workspace.pk))

    assert set(TrackEvent.objects.filter(processed_at__isnull=True).values_list("visitor_key", flat=True)) == {poisoned}
    assert set(Lead.objects.values_list("email", flat=True)) == {"v1@acme.io", "v2@acme.io"}
