"""The scoring jobs: the hourly beat job that applies decay and inactivity to every lead, rescoring a
workspace in keyset batches with a fixed number of queries per batch, writing only the scores that
changed and reporting the band changes decay causes."""

import itertools
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
from leads.tracking.models import TrackEvent, TrackSession
from scoring import engine
from scoring.config import CORE_FIELDS
from scoring.engine import EventFact, LeadFacts, SessionFact
from scoring.models import RescoreRange, ScoreChange
from scoring.presets import default_model_json
from scoring.services import active_model, leads_rescore, score_breakdown, scoring_model_update
from scoring.tasks import (
    RescoreProgress,
    _key_batches,
    rescore_all_leads,
    rescore_range,
    rescore_range_task,
    rescore_ranges_plan,
    rescore_run_progress,
    rescore_workspace,
    rescore_workspace_start,
    rescore_workspace_task,
)
from tests.leads.factories import make_lead
from tests.leads.tracking.factories import Browser, custom, identify, make_site, pageview, server_post
from tests.scoring.test_services import FIT, FIT_SCORE, band_activities, listening
from tests.workspaces.factories import WorkspaceFactory
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
    third, fourth = WorkspaceFactory(), WorkspaceFactory()
    engaged_leads(workspace, api, 6)
    engaged_leads(other_workspace, api_as(Role.MARKETER, other_workspace), 2)
    engaged_leads(third, api_as(Role.MARKETER, third), 4)
    engaged_leads(fourth, api_as(Role.MARKETER, fourth), 6)
    at = timezone.now() + NINETY_DAYS

    def queries(workspace, batch_size: int, changed: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert rescore_workspace(workspace.pk, reason="decay", at=at, batch_size=batch_size) == changed
        return len(captured)

    one_batch_of_6, one_batch_of_2 = queries(workspace, 6, 6), queries(other_workspace, 2, 2)
    two_batches, three_batches = queries(third, 2, 4), queries(fourth, 2, 6)

    assert one_batch_of_6 == one_batch_of_2
    assert three_batches - two_batches == two_batches - one_batch_of_2 > 0  # each batch adds the same queries


def test_the_hourly_job_rescores_every_workspace(workspace, other_workspace, django_capture_on_commit_callbacks):
    ours, theirs = make_lead(workspace, **FIT), make_lead(other_workspace, **FIT)  # their processing never ran

    with django_capture_on_commit_callbacks(execute=True):  # each workspace's ranges are queued once committed
        assert rescore_all_leads() == 2

    assert list(Lead.objects.filter(pk__in=[ours.pk, theirs.pk]).values_list("score", "score_band")) == [(45, "warm")] * 2
    assert set(ScoreChange.objects.values_list("workspace_id", "reason")) == {(workspace.pk, "decay"), (other_workspace.pk, "decay")}
    with django_capture_on_commit_callbacks(execute=True):
        rescore_all_leads()
    assert ScoreChange.objects.count() == 2
    assert settings.CELERY_BEAT_SCHEDULE["rescore-all-leads"] == {"task": "scoring.tasks.rescore_all_leads", "schedule": 3600.0}


def test_the_hourly_job_purges_the_ranges_of_runs_of_a_week_ago_finished_or_not(workspace, django_capture_on_commit_callbacks):
    make_lead(workspace, **FIT)
    old = rescore_workspace_start(workspace.pk, reason="decay")  # planned; its task never ran
    RescoreRange.objects.filter(run=old).update(done_at=timezone.now() - timedelta(days=8))
    lost = rescore_workspace_start(workspace.pk, reason="decay")  # its message was lost: never finished
    RescoreRange.objects.filter(run=lost).update(created_at=timezone.now() - timedelta(days=8))
    recent = rescore_workspace_start(workspace.pk, reason="decay")

    with django_capture_on_commit_callbacks(execute=True):
        rescore_all_leads()

    assert not RescoreRange.objects.filter(run=old).exists()
    assert not RescoreRange.objects.filter(run=lost).exists()
    assert RescoreRange.objects.filter(run=recent).exists()


def test_the_workspace_task_rescores_with_the_reason_given(workspace, other_workspace, django_capture_on_commit_callbacks):
    ours, theirs = make_lead(workspace, **FIT), make_lead(other_workspace, **FIT)

    with django_capture_on_commit_callbacks(execute=True):
        run = rescore_workspace_task.delay(str(workspace.pk), "scoring model v2").get()

    assert rescore_run_progress(run) == RescoreProgress(ranges=1, done=1, changed=1)
    assert ScoreChange.objects.get().lead_id == ours.pk
    assert ScoreChange.objects.get().reason == "scoring model v2"
    theirs.refresh_from_db()
    assert theirs.score_band == ""


# A workspace is rescored in parallel keyset ranges (settings.RESCORE_PARALLELISM), one task each


def ranges_of(run) -> list[tuple]:
    """Each range's (after, last) bounds as (created_at, id) keys."""
    return [(part.after_key, part.last_key) for part in RescoreRange.objects.filter(run=run).order_by("pk")]


def test_a_workspace_is_split_into_ranges_that_rescore_each_lead_once(workspace, api, settings, django_capture_on_commit_callbacks):
    settings.RESCORE_PARALLELISM = 3
    engaged = engaged_leads(workspace, api, 7)
    at = timezone.now() + NINETY_DAYS

    with listening() as events, django_capture_on_commit_callbacks(execute=True):
        run = rescore_workspace_start(workspace.pk, reason="decay", at=at, batch_size=2)

    assert rescore_run_progress(run) == RescoreProgress(ranges=3, done=3, changed=7)
    bounds = ranges_of(run)
    assert bounds[0][0] is None and bounds[-1][1] is None
    assert all(previous[1] == following[0] for previous, following in itertools.pairwise(bounds))  # adjacent, no gap
    assert sorted(RescoreRange.objects.filter(run=run).values_list("changed", flat=True)) == [2, 2, 3]
    assert scores(engaged) == [34] * 7
    assert sorted(ScoreChange.objects.filter(reason="decay").values_list("lead_id", flat=True)) == sorted(lead.pk for lead in engaged)
    assert sorted(event["leadId"] for event in events) == sorted(str(lead.pk) for lead in engaged)
    assert all(len([row for row in band_activities(lead) if row["reason"] == "decay"]) == 1 for lead in engaged)


def test_leads_created_at_one_instant_are_each_rescored_once_across_batches_and_ranges(
    workspace, api, settings, django_capture_on_commit_callbacks
):
    # An import writes a whole batch with one created_at: the key's id decides between them.
    settings.RESCORE_PARALLELISM = 2
    engaged = engaged_leads(workspace, api, 7)
    Lead.objects.filter(pk__in=[lead.pk for lead in engaged[:5]]).update(created_at=engaged[0].created_at)

    with django_capture_on_commit_callbacks(execute=True):
        run = rescore_workspace_start(workspace.pk, reason="decay", at=timezone.now() + NINETY_DAYS, batch_size=2)

    assert rescore_run_progress(run) == RescoreProgress(ranges=2, done=2, changed=7)
    [(first_after, cut), (cut_again, last)] = ranges_of(run)
    assert first_after is None and last is None and cut == cut_again
    assert cut[0] == engaged[0].created_at  # the ranges split inside the leads sharing that instant
    # Each lead is in exactly one range, and in one batch of it.
    batched = [
        pk
        for part in RescoreRange.objects.filter(run=run)
        for keys in _key_batches(workspace.pk, after=part.after_key, last=part.last_key, batch_size=2)
        for _, pk in keys
    ]
    assert sorted(batched) == sorted(lead.pk for lead in engaged)
    assert scores(engaged) == [34] * 7
    assert sorted(ScoreChange.objects.filter(reason="decay").values_list("lead_id", flat=True)) == sorted(lead.pk for lead in engaged)


def test_a_range_planned_by_the_id_order_version_is_closed_without_rescoring(workspace, api):
    engaged = engaged_leads(workspace, api, 2)
    [part] = rescore_ranges_plan(workspace.pk, reason="decay", at=timezone.now() + NINETY_DAYS, parts=1)
    RescoreRange.objects.filter(pk=part.pk).update(after=engaged[0].pk)  # an id bound without its created_at

    assert rescore_range_task.delay(part.pk).get() == 0

    part.refresh_from_db()
    assert part.done_at is not None
    assert scores(engaged) == [75, 75]


def test_a_workspace_smaller_than_a_batch_is_one_range(workspace, django_capture_on_commit_callbacks):
    make_lead(workspace, **FIT)
    with django_capture_on_commit_callbacks(execute=True):
        run = rescore_workspace_start(workspace.pk, reason="decay")
    assert ranges_of(run) == [(None, None)]
    assert rescore_run_progress(run) == RescoreProgress(ranges=1, done=1, changed=1)


def fail_updates_of(lead: Lead) -> None:
    """A database trigger that makes every UPDATE of this lead's row fail, as a full disk would."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("CREATE FUNCTION fail_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$")
            cursor.execute(
                f"CREATE TRIGGER fail_update BEFORE UPDATE ON leads FOR EACH ROW WHEN (NEW.id = '{lead.pk}') EXECUTE FUNCTION fail_update()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER fail_update BEFORE UPDATE ON leads FOR EACH ROW WHEN NEW.id = '{lead.pk.hex}' "
                "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )


def test_a_failed_range_resumes_after_its_last_batch_and_reports_each_change_once(
    workspace, api, settings, django_capture_on_commit_callbacks
):
    settings.RESCORE_PARALLELISM = 1
    # A range goes through its leads in creation order.
    engaged = sorted(engaged_leads(workspace, api, 6), key=lambda lead: (lead.created_at, lead.pk))
    fail_updates_of(engaged[2])  # the first lead of the second batch
    at = timezone.now() + NINETY_DAYS

    with listening() as events:
        with django_capture_on_commit_callbacks(execute=True):
            run = rescore_workspace_start(workspace.pk, reason="decay", at=at, batch_size=2)

        assert rescore_run_progress(run) == RescoreProgress(ranges=1, done=0, changed=2)
        assert scores(engaged) == [34, 34, 75, 75, 75, 75]  # the first batch is committed
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER fail_update" + (" ON leads" if connection.vendor == "postgresql" else ""))
        [part] = RescoreRange.objects.filter(run=run)
        with django_capture_on_commit_callbacks(execute=True):
            assert rescore_range_task.delay(part.pk, 2).get() == 4  # the message delivered again
            assert rescore_range_task.delay(part.pk, 2).get() == 0  # and once more: the range is done

    assert rescore_run_progress(run) == RescoreProgress(ranges=1, done=1, changed=6)
    assert scores(engaged) == [34] * 6
    assert ScoreChange.objects.filter(reason="decay").count() == 6
    assert sorted(event["leadId"] for event in events) == sorted(str(lead.pk) for lead in engaged)
    assert all(len([row for row in band_activities(lead) if row["reason"] == "decay"]) == 1 for lead in engaged)


def test_a_late_range_of_an_older_run_does_not_put_back_older_scores(workspace, api, django_capture_on_commit_callbacks):
    engaged = engaged_leads(workspace, api, 2)
    [older] = rescore_ranges_plan(workspace.pk, reason="decay", at=timezone.now() + timedelta(days=30), parts=1)  # its message is late
    with django_capture_on_commit_callbacks(execute=True):
        rescore_workspace_start(workspace.pk, reason="decay", at=timezone.now() + NINETY_DAYS)
    assert scores(engaged) == [34, 34]

    assert rescore_range_task.delay(older.pk).get() == 0

    assert scores(engaged) == [34, 34]
    older.refresh_from_db()
    assert older.done_at is not None


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


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="parallel rescoring needs PostgreSQL (set DATABASE_URL): SQLite has one writer"
)
@pytest.mark.django_db(transaction=True)
def test_ranges_running_at_once_next_to_an_event_rescoring_report_each_band_change_once(workspace, api):
    engaged = engaged_leads(workspace, api, 12)
    at = timezone.now() + NINETY_DAYS
    ranges = rescore_ranges_plan(workspace.pk, reason="decay", at=at, parts=2, batch_size=3)
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def run(work) -> None:
        try:
            start.wait(timeout=30)
            work()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    everyone = sorted((lead.pk for lead in engaged), reverse=True)  # locked in id order all the same
    with listening() as events:
        workers = [threading.Thread(target=run, args=(lambda part=part: rescore_range(part.pk, batch_size=3),)) for part in ranges]
        workers.append(
            threading.Thread(target=run, args=(lambda: leads_rescore(workspace_id=workspace.pk, lead_ids=everyone, reason="decay", at=at),))
        )
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)

    assert errors == []
    assert not any(worker.is_alive() for worker in workers)
    assert scores(engaged) == [34] * 12
    assert sorted(ScoreChange.objects.filter(reason="decay").values_list("lead_id", flat=True)) == sorted(lead.pk for lead in engaged)
    assert sorted(event["leadId"] for event in events) == sorted(str(lead.pk) for lead in engaged)
    assert all(len([row for row in band_activities(lead) if row["reason"] == "decay"]) == 1 for lead in engaged)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the failure is raised with a PostgreSQL error code (set DATABASE_URL)")
def test_a_range_that_meets_a_transient_database_error_is_retried_by_its_task(workspace, api, django_capture_on_commit_callbacks):
    engaged = engaged_leads(workspace, api, 4)
    with connection.cursor() as cursor:  # the first rescoring UPDATE fails as a serialization failure would; the retry passes
        cursor.execute("CREATE SEQUENCE leads_updates")
        cursor.execute(
            "CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF nextval('leads_updates') = 1 THEN RAISE EXCEPTION 'could not serialize' USING ERRCODE = '40001'; END IF; "
            "RETURN NULL; END $$"
        )
        cursor.execute("CREATE TRIGGER fail_once BEFORE UPDATE ON leads FOR EACH STATEMENT EXECUTE FUNCTION fail_once()")

    with listening() as events, django_capture_on_commit_callbacks(execute=True):
        run = rescore_workspace_start(workspace.pk, reason="decay", at=timezone.now() + NINETY_DAYS, batch_size=2)

    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM leads_updates")
        assert cursor.fetchone()[0] == 3  # the failed UPDATE, then both batches
    assert rescore_run_progress(run).finished
    assert rescore_run_progress(run).changed == 4
    assert scores(engaged) == [34] * 4
    assert sorted(event["leadId"] for event in events) == sorted(str(lead.pk) for lead in engaged)


# The batch path scores as the engine does (facts read in bulk, only the fields the model reads)

EVERY_RULE_MODEL = {
    **default_model_json(),
    "demographic": {
        **default_model_json()["demographic"],
        "country": [{"match": ["US", "CA"], "points": 4}],
        "emailQuality": [{"kind": "business", "points": 10}, {"kind": "free", "points": -3}],
        "phone": [{"valid": True, "points": 5}, {"valid": False, "points": -5}],
        "fields": [
            {"field": "tags", "match": ["vip"], "points": 9},
            {"field": "custom.budget", "range": [10000, None], "points": 12},
            {"field": "company.name", "exists": True, "points": 2},
            {"field": "department", "match": "sales", "points": 3},
        ],
    },
    "boosts": [
        {"condition": {"field": "custom.budget", "range": [50000, None]}, "multiplier": 1.2},
        {"condition": {"event": "webinar", "window": "60d"}, "bonus": 4},
    ],
}


def engine_facts(lead: Lead) -> LeadFacts:
    """The lead's facts as scoring.engine documents them, from the model objects: every core field,
    the custom fields, every event and session."""
    lead = Lead.objects.select_related("company").get(pk=lead.pk)
    fields = {name: getattr(lead, name) for name in CORE_FIELDS if "." not in name and name not in ("tags", "phone_valid")}
    fields.update({name: getattr(lead.company, name.split(".")[1]) if lead.company else None for name in CORE_FIELDS if "." in name})
    fields["phone_valid"] = bool(lead.phone) and bool(lead.phone_country)
    fields["tags"] = list(lead.lead_tags.values_list("tag__name", flat=True))
    fields.update({f"custom.{key}": value for key, value in lead.custom_fields.items() if not key.startswith("_")})
    events = [EventFact(event.name, event.occurred_at, event.url) for event in TrackEvent.objects.filter(lead=lead, is_bot=False)]
    sessions = [
        SessionFact(session.started_at, (session.ended_at - session.started_at).total_seconds(), session.pageviews)
        for session in TrackSession.objects.filter(lead=lead, is_bot=False)
    ]
    return LeadFacts(fields, lead.created_at, tuple(events), tuple(sessions), lead.last_activity_at)


def test_the_job_stores_the_score_and_band_the_engine_gives_each_lead(workspace, api):
    scoring_model_update(workspace=workspace, config=EVERY_RULE_MODEL)
    leads = [
        make_lead(workspace, **FIT, country="US", phone="+1 415 555 0134", tags=["vip"], custom_fields={"budget": 60000}),
        make_lead(workspace, name="Sam Poe", email="sam@gmail.com", phone="555", department="Sales", custom_fields={"budget": 20000}),
        make_lead(workspace, title="Data Analyst", company={"name": "Tiny", "size": "5"}, country="FR", tags=["newsletter"]),
        make_lead(workspace, name="Idle Person", email="idle@example.org"),
        make_lead(workspace, **FIT, email="visits@acme.io"),
    ]
    post_events(api, leads[:2], "pricing_page_viewed", "demo_requested", "webinar", "unsubscribed")
    post_events(api, [leads[2]], "email_opened", "email_opened", "feature_explored")
    browser = Browser(make_site(workspace))
    sent = browser.send(
        identify(email=leads[4].email), pageview("https://www.example.com/pricing"), pageview("https://www.example.com/docs/a")
    )
    assert sent.status_code == 202
    at = timezone.now() + timedelta(days=40)

    rescore_workspace(workspace.pk, reason="decay", at=at, batch_size=2)

    model = active_model(workspace_id=workspace.pk)
    stored = {lead.pk: (lead.score, lead.score_band) for lead in Lead.objects.filter(pk__in=[lead.pk for lead in leads])}
    expected = {}
    for lead in leads:
        total = engine.score(engine_facts(lead), model.config, at).total_score
        expected[lead.pk] = (total, getattr(engine.band_for(total, model.thresholds), "stage", ""))
    assert stored == expected
    assert len(set(stored.values())) >= 4  # the leads differ, so a mix-up between them would show
    for lead in leads:
        assert score_breakdown(lead=lead, at=at)["totalScore"] == stored[lead.pk][0]


def test_each_change_is_written_once_with_its_history_and_band_crossing(workspace, api):
    engaged = engaged_leads(workspace, api, 3)  # 75, mql
    never_scored = make_lead(workspace, **FIT)  # processing never ran: 0, no band
    rescore_workspace(workspace.pk, reason="now", at=timezone.now())  # only the never scored lead changes
    later = timezone.now() + NINETY_DAYS

    assert rescore_workspace(workspace.pk, reason="decay", at=later, batch_size=2) == 4

    written = ScoreChange.objects.filter(reason="decay")
    assert sorted(
        (row.lead_id, row.previous_score, row.new_score, row.previous_band, row.new_band, row.threshold_crossed) for row in written
    ) == sorted([(lead.pk, 75, 34, "mql", "warm", "warm") for lead in engaged] + [(never_scored.pk, 45, 30, "warm", "warm", "")])
    assert set(written.values_list("model_version", flat=True)) == {1}
    for lead in engaged:
        assert band_activities(lead)[-1] == {
            "fromBand": "mql",
            "toBand": "warm",
            "fromScore": 75,
            "toScore": 34,
            "reason": "decay",
            "lifecycleStage": None,
        }
    assert len(band_activities(never_scored)) == 1  # its first scoring's, none for a change within warm
    assert rescore_workspace(workspace.pk, reason="decay", at=later, batch_size=2) == 0
    assert ScoreChange.objects.filter(reason="decay").count() == 4


def test_crossing_into_mql_qualifies_a_lead_at_the_scoring_instant_once(workspace, api):
    [qualified] = engaged_leads(workspace, api, 1)  # 75, mql: qualified when its events were processed
    first_qualified_at = Lead.objects.get(pk=qualified.pk).qualified_at
    scoring_model_update(
        workspace=workspace,
        thresholds={
            "stages": [
                {"stage": "cold", "minScore": 0, "maxScore": 39},
                {"stage": "mql", "minScore": 40, "maxScore": 69, "lifecycleStage": "mql"},
                {"stage": "sql", "minScore": 70, "lifecycleStage": "sql"},
            ]
        },
    )
    fresh = make_lead(workspace, **FIT)  # 45 once scored
    at = timezone.now() + timedelta(minutes=5)

    assert rescore_workspace(workspace.pk, reason="thresholds", at=at) == 2

    fresh.refresh_from_db()
    qualified.refresh_from_db()
    assert (fresh.score, fresh.score_band, fresh.lifecycle_stage, fresh.qualified_at) == (45, "mql", "mql", at)
    assert (qualified.score, qualified.score_band, qualified.lifecycle_stage) == (75, "sql", "sql")
    assert qualified.qualified_at == first_qualified_at  # qualified once, when it first became an MQL
