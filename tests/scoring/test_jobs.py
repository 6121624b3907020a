"""The scoring jobs: the hourly beat job that applies decay and inactivity to every lead, rescoring a
workspace in keyset batches with a fixed number of queries per batch, writing only the scores that
changed and reporting the band changes decay causes."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads.models import Lead
from leads.services import lead_delete
from scoring.models import ScoreChange
from scoring.tasks import rescore_all_leads, rescore_workspace, rescore_workspace_task
from tests.leads.factories import make_lead
from tests.leads.tracking.factories import custom, server_post
from tests.scoring.test_services import FIT, FIT_SCORE, band_activities, listening
from workspaces.models import Role

pytestmark = pytest.mark.django_db

NINETY_DAYS = timedelta(days=90)


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def post_events(client, leads, *names) -> None:
    """One Track API batch from a server: each name once for each lead. Processing rescores them."""
    response = server_post(client, [custom(name, leadId=str(lead.pk)) for lead in leads for name in names])
    assert response.status_code == 202, response.content
    assert response.json()["rejected"] == 0


def engaged_leads(workspace, client, count: int) -> list[Lead]:
    """Leads of seed 000's fit who saw pricing three times: 45 + 30 = 75, mql. Ninety days on the
    visits are worth an eighth and inactivity costs 15: 45 + 4 - 15 = 34, warm."""
    leads = [make_lead(workspace, **FIT) for _ in range(count)]
    post_events(client, leads, "pricing_page_viewed", "pricing_page_viewed", "pricing_page_viewed")
    for lead in leads:
        lead.refresh_from_db()
        assert (lead.score, lead.score_band) == (75, "mql")
    return leads


def scores(leads) -> list[tuple[int, str]]:
    by_id = dict(Lead.objects.filter(pk__in=[lead.pk for lead in leads]).values_list("pk", "score"))
    return [by_id[lead.pk] for lead in leads]


def test_rescoring_far_ahead_lowers_decaying_scores_and_writes_nothing_else(workspace, api):
    engaged = engaged_leads(workspace, api, 4)
    idle = [make_lead(workspace, name=f"Idle {n}", email=f"idle{n}@gmail.com") for n in range(3)]
    demo_only = make_lead(workspace, **FIT)
    post_events(api, [demo_only], "demo_requested")  # never decays
    rescore_workspace(workspace.pk, reason="now")  # the idle leads get their first score: 0, cold
    before = ScoreChange.objects.count()

    changed = rescore_workspace(workspace.pk, reason="decay", at=timezone.now() + NINETY_DAYS, batch_size=2)  # 8 leads: 4 batches

    assert changed == 5
    assert scores(engaged) == [34, 34, 34, 34]
    assert scores(idle) == [0, 0, 0]  # inactivity cannot take 0 lower
    assert scores([demo_only]) == [FIT_SCORE + 25 - 15]  # only inactivity
    written = ScoreChange.objects.filter(reason="decay")
    assert ScoreChange.objects.count() - before == written.count() == 5
    assert set(written.values_list("lead_id", flat=True)) == {lead.pk for lead in [*engaged, demo_only]}
    assert all(change.new_score < change.previous_score for change in written)
    assert set(written.values_list("model_version", flat=True)) == {1}


def test_rescoring_again_at_the_same_instant_changes_and_writes_nothing(workspace, api):
    engaged_leads(workspace, api, 3)
    at = timezone.now() + NINETY_DAYS
    assert rescore_workspace(workspace.pk, reason="decay", at=at, batch_size=2) == 3
    before = ScoreChange.objects.count()

    assert rescore_workspace(workspace.pk, reason="decay", at=at, batch_size=2) == 0
    assert ScoreChange.objects.count() == before


def test_a_band_change_that_decay_causes_is_reported(workspace, api, django_capture_on_commit_callbacks):
    [lead] = engaged_leads(workspace, api, 1)
    qualified_at = Lead.objects.get(pk=lead.pk).qualified_at

    with listening() as events, django_capture_on_commit_callbacks(execute=True):
        rescore_workspace(workspace.pk, reason="decay", at=timezone.now() + NINETY_DAYS)

    lead.refresh_from_db()
    assert (lead.score, lead.score_band, lead.lifecycle_stage, lead.qualified_at) == (34, "warm", "mql", qualified_at)
    assert band_activities(lead)[-1]["fromBand"] == "mql"
    assert band_activities(lead)[-1]["toBand"] == "warm"
    assert [(event["previousScore"], event["newScore"], event["reason"], event["thresholdCrossed"]) for event in events] == [
        (75, 34, "decay", "warm")
    ]


def test_queries_per_batch_do_not_grow_with_the_batch_size(workspace, other_workspace, api, api_as):
    engaged_leads(workspace, api, 6)
    engaged_leads(other_workspace, api_as(Role.MARKETER, other_workspace), 6)
    at = timezone.now() + NINETY_DAYS

    with CaptureQueriesContext(connection) as three_batches:
        assert rescore_workspace(workspace.pk, reason="decay", at=at, batch_size=2) == 6
    with CaptureQueriesContext(connection) as one_batch:
        assert rescore_workspace(other_workspace.pk, reason="decay", at=at, batch_size=6) == 6

    # Each run ends with one query finding no more leads; the rest is the same for every batch.
    per_batch = len(one_batch) - 1
    assert len(three_batches) - 1 == 3 * per_batch


def test_the_hourly_job_rescores_every_workspace(workspace, other_workspace):
    ours, theirs = make_lead(workspace, **FIT), make_lead(other_workspace, **FIT)  # their processing never ran

    assert rescore_all_leads() == 2

    assert list(Lead.objects.filter(pk__in=[ours.pk, theirs.pk]).values_list("score", "score_band")) == [(45, "warm")] * 2
    assert set(ScoreChange.objects.values_list("workspace_id", "reason")) == {(workspace.pk, "decay"), (other_workspace.pk, "decay")}
    assert rescore_all_leads() == 0
    assert settings.CELERY_BEAT_SCHEDULE["rescore-all-leads"] == {"task": "scoring.tasks.rescore_all_leads", "schedule": 3600.0}


def test_the_workspace_task_rescores_with_the_reason_given(workspace, other_workspace):
    ours, theirs = make_lead(workspace, **FIT), make_lead(other_workspace, **FIT)

    assert rescore_workspace_task.delay(str(workspace.pk), "scoring model v2").get() == 1

    assert ScoreChange.objects.get().lead_id == ours.pk
    assert ScoreChange.objects.get().reason == "scoring model v2"
    theirs.refresh_from_db()
    assert theirs.score_band == ""


def test_deleted_leads_are_left_alone(workspace, api):
    live, deleted = engaged_leads(workspace, api, 2)
    lead_delete(lead=deleted, actor=None)

    assert rescore_workspace(workspace.pk, reason="decay", at=timezone.now() + NINETY_DAYS) == 1
    assert scores([live, deleted]) == [34, 75]


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SKIP LOCKED needs PostgreSQL (set DATABASE_URL): SQLite has no row locks",
)
@pytest.mark.django_db(transaction=True)
def test_a_lead_locked_by_another_transaction_is_skipped_and_rescored_next_time(workspace, api):
    busy, free = engaged_leads(workspace, api, 2)
    at = timezone.now() + NINETY_DAYS
    changed: list[int] = []

    def job():
        try:
            changed.append(rescore_workspace(workspace.pk, reason="decay", at=at))
        finally:
            connections.close_all()

    with transaction.atomic():
        Lead.objects.select_for_update().get(pk=busy.pk)  # e.g. its events being processed right now
        worker = threading.Thread(target=job)
        worker.start()
        worker.join(timeout=60)
        assert not worker.is_alive()  # it did not wait for the lock

    assert changed == [1]
    assert scores([busy, free]) == [75, 34]
    assert rescore_workspace(workspace.pk, reason="decay", at=at) == 1
    assert scores([busy, free]) == [34, 34]
