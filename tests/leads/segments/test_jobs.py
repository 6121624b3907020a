"""Segment background jobs: the beat job refreshing segments whose interval has passed, decay moving leads out
of score segments, and (on PostgreSQL) a refresh whose query count does not grow with the segment."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads.models import Lead
from leads.segments import tasks
from leads.segments.models import Segment, SegmentEvent, SegmentEventKind
from leads.segments.services import refresh_due_segments, segment_refresh
from leadsmgr.celery import app as celery_app
from pipelines.services import pipeline_ensure_default
from scoring.models import ScoreChange
from scoring.tasks import rescore_workspace
from tests.leads.segments.factories import SCORE_50, committed, enterprise_lead, lead, make_segment, member_ids, track
from tests.workspaces.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

GERMANY = {"all": [{"field": "country", "operator": "eq", "value": "DE"}]}


# The beat job


def test_the_beat_job_refreshes_only_due_segments_and_moves_their_next_run(workspace):
    mover = lead(workspace, name="Moe Ver", country="FR")
    hourly = make_segment(workspace, GERMANY, name="Hourly", refresh_interval="hourly")
    daily = make_segment(workspace, GERMANY, name="Daily", refresh_interval="daily")
    fresh = make_segment(workspace, GERMANY, name="Fresh", refresh_interval="5m")
    Lead.objects.filter(pk=mover.pk).update(country="DE")
    at = timezone.now() + timedelta(minutes=61)  # past the hourly one's next run; the daily and 5m ones are set below
    Segment.objects.filter(pk=daily.pk).update(next_refresh_at=at - timedelta(seconds=1))
    Segment.objects.filter(pk=fresh.pk).update(next_refresh_at=at + timedelta(minutes=2))

    with committed():
        assert refresh_due_segments(now=at) == 2

    hourly.refresh_from_db(), daily.refresh_from_db(), fresh.refresh_from_db()
    assert (hourly.last_refreshed_at, hourly.next_refresh_at) == (at, at + timedelta(hours=1))
    assert (daily.last_refreshed_at, daily.next_refresh_at) == (at, at + timedelta(days=1))
    assert fresh.last_refreshed_at < at and fresh.next_refresh_at == at + timedelta(minutes=2)
    assert member_ids(hourly) == member_ids(daily) == {mover.pk}
    assert (hourly.member_count, daily.member_count, fresh.member_count) == (1, 1, 0)
    assert member_ids(fresh) == set()
    for segment in (hourly, daily):
        event = SegmentEvent.objects.get(segment=segment)
        assert (event.lead_id, event.kind, event.reason, event.at) == (mover.pk, SegmentEventKind.ENTERED, "scheduled refresh", at)

    # Claimed: the same minute runs nothing again; the 5-minute one is due two minutes later.
    assert refresh_due_segments(now=at) == 0
    assert refresh_due_segments(now=at + timedelta(minutes=2)) == 1
    fresh.refresh_from_db()
    assert member_ids(fresh) == {mover.pk} and fresh.next_refresh_at == at + timedelta(minutes=7)


def test_the_beat_job_takes_the_longest_waiting_first_within_its_limit(workspace):
    now = timezone.now()
    older = make_segment(workspace, GERMANY, name="Older")
    newer = make_segment(workspace, GERMANY, name="Newer")
    Segment.objects.filter(pk=older.pk).update(next_refresh_at=now - timedelta(minutes=30))
    Segment.objects.filter(pk=newer.pk).update(next_refresh_at=now - timedelta(minutes=10))

    assert refresh_due_segments(now=now, limit=1) == 1

    older.refresh_from_db(), newer.refresh_from_db()
    assert older.last_refreshed_at == now
    assert newer.next_refresh_at == now - timedelta(minutes=10)


def test_a_scheduled_refresh_runs_enter_automations(workspace):
    mover = lead(workspace, name="Auto Mated", country="FR")
    segment = make_segment(workspace, GERMANY, automation={"onEnter": [{"action": "tag", "tags": ["germany"]}]})
    Lead.objects.filter(pk=mover.pk).update(country="DE")

    with committed():
        assert refresh_due_segments(now=segment.next_refresh_at) == 1

    assert set(mover.tags.values_list("name", flat=True)) == {"germany"}


def test_a_new_refresh_interval_counts_from_the_last_refresh(workspace, api):
    mover = lead(workspace, name="Moe Ver", country="FR")
    segment = make_segment(workspace, GERMANY, refresh_interval="daily")
    assert segment.next_refresh_at == segment.last_refreshed_at + timedelta(days=1)
    Lead.objects.filter(pk=mover.pk).update(country="DE")

    response = api.patch(f"/api/v1/segments/{segment.pk}", {"refreshInterval": "5m"}, format="json")

    assert response.status_code == 200, response.content
    segment.refresh_from_db()
    assert segment.next_refresh_at == segment.last_refreshed_at + timedelta(minutes=5)
    assert refresh_due_segments(now=segment.last_refreshed_at + timedelta(minutes=6)) == 1
    assert member_ids(segment) == {mover.pk}


def test_the_beat_task_is_scheduled_and_runs_through_celery(workspace):
    entry = settings.CELERY_BEAT_SCHEDULE["refresh-due-segments"]
    assert entry["task"] in celery_app.tasks
    assert tasks.refresh_due_segments.name == entry["task"]
    segment = make_segment(workspace, GERMANY)
    Segment.objects.filter(pk=segment.pk).update(next_refresh_at=timezone.now() - timedelta(seconds=1))

    assert tasks.refresh_due_segments.delay().get() == 1

    segment.refresh_from_db()
    assert segment.next_refresh_at > timezone.now() + timedelta(minutes=59)


# Decay


def test_decay_moves_a_lead_out_of_a_score_segment_with_an_exit_event(workspace, api):
    fading = lead(workspace, name="Fay Ding", title="CEO", company={"name": "Fade Co", "industry": "Software"})
    track(api, fading, "pricing_page_viewed", "pricing_page_viewed", "pricing_page_viewed")
    lasting = enterprise_lead(workspace, "Las Ting")
    track(api, lasting, "demo_requested")  # demo_requested never decays
    fading.refresh_from_db(), lasting.refresh_from_db()
    assert (fading.score, lasting.score) == (65, 80)
    segment = make_segment(workspace, SCORE_50)
    assert member_ids(segment) == {fading.pk, lasting.pk}

    far = timezone.now() + timedelta(days=365)
    with committed():
        rescore_workspace(workspace.pk, reason="decay", at=far)

    fading.refresh_from_db(), lasting.refresh_from_db()
    # A year on: the page views have decayed away and 90+ days of inactivity cost 15.
    assert (fading.score, lasting.score) == (20, 65)
    assert member_ids(segment) == {lasting.pk}
    event = SegmentEvent.objects.get(segment=segment)
    assert (event.lead_id, event.kind, event.reason, event.at) == (fading.pk, SegmentEventKind.EXITED, "decay", far)
    segment.refresh_from_db()
    assert segment.member_count == 1
    assert ScoreChange.objects.filter(lead=fading, reason="decay", new_score=20).exists()

    # Run again at the same instant: nothing changes, nothing more is recorded.
    with committed():
        assert rescore_workspace(workspace.pk, reason="decay", at=far) == 0
    assert SegmentEvent.objects.filter(segment=segment).count() == 1


def test_decay_never_touches_another_workspaces_segments(workspace, other_workspace, api, api_as):
    theirs = lead(other_workspace, name="Their Fader", title="CEO", company={"name": "Other Co", "industry": "Software"})
    track(api_as(of_workspace=other_workspace), theirs, "pricing_page_viewed", "pricing_page_viewed", "pricing_page_viewed")
    their_segment = make_segment(other_workspace, SCORE_50)
    assert member_ids(their_segment) == {theirs.pk}

    with committed():
        rescore_workspace(workspace.pk, reason="decay", at=timezone.now() + timedelta(days=365))

    assert member_ids(their_segment) == {theirs.pk}
    assert not SegmentEvent.objects.filter(segment=their_segment).exists()


# PostgreSQL: set-based refresh


def _bulk_leads(workspace, count: int) -> None:
    pipeline, _ = pipeline_ensure_default(workspace=workspace)
    stage = pipeline.stages.order_by("position").first()
    Lead.objects.bulk_create(
        [Lead(workspace=workspace, pipeline=pipeline, stage=stage, name=f"Bulk {n}", country="DE", score=n % 100) for n in range(count)],
        batch_size=1000,
    )


CRITERIA = {
    "all": [
        {"field": "country", "operator": "eq", "value": "DE"},
        {"field": "score", "operator": "gte", "value": 0},
        {
            "any": [
                {"field": "events.demo_requested", "operator": "not_exists"},
                {"field": "lastSeenAt", "operator": "within", "value": "14d"},
            ]
        },
    ],
    "none": [{"field": "tags", "operator": "contains", "value": "competitor"}],
}


def _queries(workspace, count: int) -> dict[str, list[str]]:
    """The SQL of a segment's baseline fill, of a refresh where every lead leaves, and of one where every lead
    comes back, over `count` matching leads."""
    _bulk_leads(workspace, count)
    captured = {}
    with CaptureQueriesContext(connection) as context:
        segment = make_segment(workspace, CRITERIA)
    captured["baseline"] = [query["sql"] for query in context.captured_queries]
    assert segment.member_count == count
    for name, country in (("exit", "FR"), ("enter", "DE")):
        Lead.objects.filter(workspace=workspace).update(country=country)
        with CaptureQueriesContext(connection) as context:
            segment_refresh(segment_id=segment.pk, reason=name)
        captured[name] = [query["sql"] for query in context.captured_queries]
    assert SegmentEvent.objects.filter(segment=segment, kind=SegmentEventKind.EXITED).count() == count
    assert SegmentEvent.objects.filter(segment=segment, kind=SegmentEventKind.ENTERED).count() == count
    return captured


def test_a_refresh_issues_the_same_queries_for_a_hundred_or_two_thousand_leads(db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the set-based refresh is measured where it runs in production")
    small = _queries(WorkspaceFactory(), 100)
    large = _queries(WorkspaceFactory(), 2000)

    assert len(large["baseline"]) == len(small["baseline"])
    for name in ("exit", "enter"):
        # Membership changes and their enter/exit history are one statement each, however many leads move.
        assert len(large[name]) == len(small[name]), name
        assert len(small[name]) <= 10, small[name]
