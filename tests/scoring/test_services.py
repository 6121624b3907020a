"""Scoring in the database: the versioned model, rescoring leads when they are captured, when their
fields or tags change and when their events are processed, the score history, and band crossings
reported once (activity, lifecycle, the score_changed signal, the outbound event).

Leads and events go through the real API and Track API; `capture` (pytest-django's
django_capture_on_commit_callbacks) runs what the code defers to after the commit.
"""

import json
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.utils import timezone

from integrations.models import DeliveryStatus, OutboundDelivery
from integrations.outbound import outbound_webhook_create
from leads.models import ActivityType, Lead, LeadActivity
from leads.services import lead_delete, lead_tags_change
from leads.tracking.models import TrackEvent
from scoring.events import score_changed
from scoring.models import ScoreChange, ScoringModel
from scoring.presets import default_model_json, threshold_preset_json
from scoring.services import leads_rescore, score_breakdown, scoring_model_get_active, scoring_model_update
from tests.integrations.factories import ingest_path, make_webhook
from tests.leads.factories import make_lead
from tests.leads.tracking.factories import GOOGLEBOT_UA, Browser, ago, custom, identify, iso, make_site, pageview, server_post

pytestmark = pytest.mark.django_db

# Seed 000's model: "Marketing Director" (director) 20 + Technology 15 + "50-200" (read as 50) 10 = 45, band warm.
FIT = {"title": "Marketing Director", "company": {"name": "Acme", "industry": "Technology", "size": "50-200"}}
FIT_SCORE = 45
SCORE_EVENT_KEYS = {"leadId", "previousScore", "newScore", "reason", "stage", "thresholdCrossed"}


# Helpers shared by the scoring database tests


def create_lead(api, capture, **fields) -> Lead:
    """POST /api/v1/leads, then what runs after the commit (processing, which scores the lead)."""
    body = {"name": "Jane Roe", "email": f"jane.{Lead.objects.count() + 1}@acme.io", **fields}
    with capture(execute=True):
        response = api.post("/api/v1/leads", body, format="json")
    assert response.status_code == 201, response.content
    return Lead.objects.get(pk=response.json()["id"])


def track(api, capture, lead: Lead, *names: str, **event_fields) -> Lead:
    """A server posts the named custom events for the lead through the Track API; returns the lead
    read again."""
    with capture(execute=True):
        response = server_post(api, [custom(name, leadId=str(lead.pk), **event_fields) for name in names])
    assert response.status_code == 202, response.content
    assert response.json()["rejected"] == 0, response.json()
    lead.refresh_from_db()
    return lead


def patch_lead(api, capture, lead: Lead, **body) -> Lead:
    with capture(execute=True):
        response = api.patch(f"/api/v1/leads/{lead.pk}", body, format="json")
    assert response.status_code == 200, response.content
    lead.refresh_from_db()
    return lead


def band_activities(lead: Lead) -> list[dict]:
    return list(LeadActivity.objects.filter(lead=lead, type=ActivityType.SCORE_BAND_CHANGED).order_by("id").values_list("data", flat=True))


def history(lead: Lead) -> list[tuple]:
    """(previous, new, previous band, new band, crossed, reason, version), oldest first."""
    return list(
        ScoreChange.objects.filter(lead=lead)
        .order_by("created_at", "id")
        .values_list("previous_score", "new_score", "previous_band", "new_band", "threshold_crossed", "reason", "model_version")
    )


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """A real HTTP server on 127.0.0.1 (a thread of this process) that records each POST and answers
    `status`: an outbound webhook's partner, or Slack."""

    def __init__(self):
        self.requests: list[Received] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(Received(self.path, dict(self.headers), body))
                answer = f"answered {receiver.status}".encode()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def listening():
    """Collects the events the score_changed signal sends while the block runs."""
    events: list[dict] = []
    lock = threading.Lock()

    def receive(sender, event, change, **kwargs):
        with lock:
            events.append(event)

    score_changed.connect(receive)
    try:
        yield events
    finally:
        score_changed.disconnect(receive)


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.fixture
def receiver():
    fake = Receiver()
    yield fake
    fake.close()


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """The Track API's rate limits live in the cache, which outlives a test."""
    cache.clear()
    yield
    cache.clear()


# The versioned model


def test_a_workspace_starts_with_version_1_of_seed_000s_model_and_thresholds(workspace):
    model = scoring_model_get_active(workspace_id=workspace.pk)
    again = scoring_model_get_active(workspace_id=workspace.pk)

    assert again.pk == model.pk
    assert ScoringModel.objects.filter(workspace=workspace).count() == 1
    assert (model.version, model.is_active) == (1, True)
    assert model.config == default_model_json()
    assert model.thresholds == threshold_preset_json("seed000")
    assert [stage["stage"] for stage in model.thresholds["stages"]] == ["cold", "warm", "hot", "mql", "sql"]


def test_an_edit_is_a_new_active_version_and_the_old_one_is_kept(workspace, api, capture):
    lead = create_lead(api, capture, **FIT)
    config = default_model_json()
    config["demographic"]["industry"][0]["points"] = 25  # Technology 15 -> 25

    with capture(execute=True):
        model = scoring_model_update(workspace=workspace, actor=api.user, config=config)

    assert (model.version, model.is_active, model.created_by) == (2, True, api.user)
    assert list(ScoringModel.objects.filter(workspace=workspace).values_list("version", "is_active")) == [(2, True), (1, False)]
    assert ScoringModel.objects.get(workspace=workspace, version=1).config == default_model_json()
    lead.refresh_from_db()
    assert lead.score == FIT_SCORE + 10
    assert history(lead)[-1] == (FIT_SCORE, FIT_SCORE + 10, "warm", "hot", "hot", "scoring model v2", 2)
    assert score_breakdown(lead=lead)["modelVersion"] == 2


def test_an_edit_of_the_thresholds_keeps_the_config(workspace):
    scoring_model_get_active(workspace_id=workspace.pk)
    model = scoring_model_update(workspace=workspace, thresholds=threshold_preset_json("three_tier"))
    assert model.version == 2
    assert model.config == default_model_json()
    assert [stage["stage"] for stage in model.thresholds["stages"]] == ["cold", "warm", "hot"]


def test_an_invalid_edit_names_each_path_and_saves_no_version(workspace):
    scoring_model_get_active(workspace_id=workspace.pk)
    config = default_model_json()
    config["behavioral"]["events"][0]["points"] = "ten"
    thresholds = {"stages": [{"stage": "cold", "minScore": "zero"}]}

    with pytest.raises(ValidationError) as raised:
        scoring_model_update(workspace=workspace, config=config, thresholds=thresholds)

    errors = raised.value.message_dict
    assert "config.behavioral.events[0].points" in errors
    assert "thresholds.stages[0].minScore" in errors
    assert list(ScoringModel.objects.filter(workspace=workspace).values_list("version", "is_active")) == [(1, True)]


# Scoring a new lead


def test_a_lead_created_through_the_api_is_scored_from_its_fields(api, capture):
    lead = create_lead(api, capture, **FIT)

    assert (lead.score, lead.score_band) == (FIT_SCORE, "warm")
    assert history(lead) == [(0, FIT_SCORE, "", "warm", "warm", "captured", 1)]
    processed = LeadActivity.objects.get(lead=lead, type=ActivityType.PROCESSED)
    assert processed.data["states"] == ["validated", "deduplicated", "scored", "ready"]
    assert api.get(f"/api/v1/leads/{lead.pk}").json()["score"] == FIT_SCORE
    rows = {row["factor"]: (row["value"], row["points"]) for row in score_breakdown(lead=lead)["demographic"]["breakdown"]}
    assert rows == {"jobTitle": ("Marketing Director", 20), "industry": ("Technology", 15), "companySize": ("50-200", 10)}


def test_a_lead_with_nothing_that_scores_starts_cold_without_a_crossing(api, capture):
    lead = create_lead(api, capture, name="Sam Poe", email="sam@gmail.com")

    assert (lead.score, lead.score_band) == (0, "cold")
    assert history(lead) == [(0, 0, "", "cold", "", "captured", 1)]
    assert band_activities(lead) == []


def test_a_lead_captured_by_a_webhook_scores_what_capture_validated_and_its_custom_fields(workspace, client, capture):
    config = default_model_json()
    config["demographic"].update(
        {
            "emailQuality": [{"kind": "business", "points": 10}, {"kind": "free", "points": -5}],
            "phone": [{"valid": True, "points": 5}, {"valid": False, "points": -5}],
            "country": [{"match": ["US", "CA"], "points": 4}],
            "fields": [{"field": "custom.budget", "range": [10000, None], "points": 15}],
        }
    )
    scoring_model_update(workspace=workspace, config=config)
    _, key = make_webhook(workspace)

    def submit(payload: dict) -> Lead:
        with capture(execute=True):
            response = client.post(ingest_path(key), data=json.dumps(payload), content_type="application/json")
        assert response.status_code == 200, response.content
        return Lead.objects.get(pk=response.json()["leadId"])

    lead = submit({"name": "Jane Roe", "email": "jane@acme.io", "phone": "+1 415 555 0134", "country": "US", "budget": 25000})
    freemail = submit({"name": "Sam Poe", "email": "sam@gmail.com", "phone": "555"})

    rows = {row["factor"]: (row["value"], row["points"]) for row in score_breakdown(lead=lead)["demographic"]["breakdown"]}
    assert rows == {"country": ("US", 4), "emailQuality": ("business", 10), "phone": ("valid", 5), "custom.budget": (25000, 15)}
    assert (lead.score, lead.score_band) == (34, "warm")
    assert history(lead) == [(0, 34, "", "warm", "warm", "captured", 2)]
    assert [row["factor"] for row in score_breakdown(lead=freemail)["demographic"]["breakdown"]] == ["emailQuality", "phone"]
    assert (freemail.score, freemail.score_band) == (0, "cold")  # -10, floored at 0


# Rescoring on new events


def test_new_events_raise_the_score_in_the_task_that_processes_them(workspace, api, capture):
    lead = create_lead(api, capture, **FIT)
    browser = Browser(make_site(workspace))
    assert browser.send(identify(email=lead.email)).status_code == 202

    # No commit callbacks are run here: the score is written by the task processing the events.
    response = browser.send(custom("demo_requested"), *[custom("pricing_page_viewed") for _ in range(4)])

    assert response.status_code == 202
    lead.refresh_from_db()
    # 45 + demo_requested 25 + pricing_page_viewed 3 times 10 (maxOccurrences 3; the 4th does not count) = 100.
    assert (lead.score, lead.score_band) == (100, "sql")
    assert (lead.lifecycle_stage, lead.qualified_at is not None) == ("sql", True)
    assert history(lead)[-1] == (FIT_SCORE, 100, "warm", "sql", "sql", "new activity", 1)
    behavioral = {row["factor"]: (row["count"], row["points"]) for row in score_breakdown(lead=lead)["behavioral"]["breakdown"]}
    assert behavioral == {"demo_requested": (1, 25), "pricing_page_viewed": (3, 30)}


def test_events_a_server_sends_for_a_lead_rescore_it_without_a_crossing_inside_a_band(api, capture):
    lead = create_lead(api, capture, **FIT)

    lead = track(api, capture, lead, "email_opened", "email_opened")

    assert (lead.score, lead.score_band) == (FIT_SCORE + 4, "warm")
    assert history(lead)[-1] == (FIT_SCORE, FIT_SCORE + 4, "warm", "warm", "", "new activity", 1)
    assert len(band_activities(lead)) == 1  # only the first scoring's


def test_pageviews_and_sessions_score_through_the_track_api(workspace, api):
    lead = make_lead(workspace, email="jo@acme.io")
    browser = Browser(make_site(workspace))
    paths = ["pricing", "docs", "", "about", "blog"]
    pageviews = [pageview(f"https://www.example.com/{path}", timestamp=iso(ago(minutes=10 - 2 * i))) for i, path in enumerate(paths)]

    assert browser.send(*pageviews, identify(email="jo@acme.io")).status_code == 202

    lead.refresh_from_db()
    rows = {row["factor"]: row["points"] for row in score_breakdown(lead=lead)["behavioral"]["breakdown"]}
    # /pricing 8 and /docs 3; one session of five pages (pagesPerSession [5, ∞) → 5) lasting ten minutes (sessionDuration [5, ∞) → 5).
    assert rows == {"pageview:/\\/pricing/": 8, "pageview:/\\/docs/": 3, "session_duration": 5, "pages_per_session": 5}
    assert (lead.score, lead.score_band) == (21, "warm")


def test_events_flagged_as_bots_do_not_score(workspace, api, capture):
    lead = create_lead(api, capture, **FIT)
    site = make_site(workspace)
    human = Browser(site)
    assert human.send(identify(email=lead.email)).status_code == 202

    crawler = Browser(site, visitor=human.visitor, user_agent=GOOGLEBOT_UA)
    assert crawler.send(custom("demo_requested")).status_code == 202

    bot_event = TrackEvent.objects.get(name="demo_requested")
    assert (bot_event.lead_id, bot_event.is_bot) == (lead.pk, True)  # it is the lead's, and a bot's
    lead.refresh_from_db()
    assert lead.score == FIT_SCORE
    assert score_breakdown(lead=lead)["behavioral"]["breakdown"] == []


# Rescoring on field and tag changes


def test_a_field_change_rescores_the_lead_after_the_commit(api, capture):
    lead = create_lead(api, capture, **FIT)

    with capture(execute=True):
        response = api.patch(f"/api/v1/leads/{lead.pk}", {"title": "Data Analyst"}, format="json")
        assert response.status_code == 200
        lead.refresh_from_db()
        assert lead.score == FIT_SCORE  # not before the change has committed
    lead.refresh_from_db()
    assert (lead.score, lead.score_band) == (FIT_SCORE - 20 + 5, "warm")  # analyst 5 instead of director 20

    lead = patch_lead(api, capture, lead, title="CTO")
    assert lead.score == FIT_SCORE
    assert [row[1:2] + row[5:] for row in history(lead)] == [(45, "captured", 1), (30, "fields changed", 1), (45, "fields changed", 1)]


def test_filling_in_the_companys_size_and_industry_through_a_patch_rescores_the_lead(api, capture):
    lead = create_lead(api, capture, title="Marketing Director", company={"name": "Initech"})
    assert lead.score == 20

    lead = patch_lead(api, capture, lead, company={"name": "Initech", "size": "500", "industry": "Technology"})

    assert score_breakdown(lead=lead)["totalScore"] == 55
    assert lead.score == 55


def test_a_change_that_does_not_move_the_score_writes_no_history(api, capture):
    lead = create_lead(api, capture, **FIT)

    patch_lead(api, capture, lead, title="Sales Director", department="Sales")

    assert len(history(lead)) == 1


def test_a_tag_change_rescores_the_lead(workspace, api, capture):
    config = default_model_json()
    config["demographic"]["fields"] = [{"field": "tags", "match": ["vip"], "points": 30}]
    scoring_model_update(workspace=workspace, config=config)
    lead = create_lead(api, capture, **FIT)

    with capture(execute=True):
        lead_tags_change(lead=lead, actor=None, add=["VIP"])
    lead.refresh_from_db()
    assert (lead.score, lead.score_band) == (FIT_SCORE + 30, "mql")

    with capture(execute=True):
        lead_tags_change(lead=lead, actor=None, remove=["vip"])
    lead.refresh_from_db()
    assert lead.score == FIT_SCORE
    assert [row[5] for row in history(lead)] == ["captured", "tags changed", "tags changed"]


def test_tags_set_through_the_api_rescore_the_lead(workspace, api, capture):
    config = default_model_json()
    config["demographic"]["fields"] = [{"field": "tags", "match": ["vip"], "points": 10}]
    scoring_model_update(workspace=workspace, config=config)
    lead = create_lead(api, capture, **FIT)

    lead = patch_lead(api, capture, lead, tags=["vip", "webinar"])

    assert lead.score == FIT_SCORE + 10
    assert history(lead)[-1][5:] == ("fields changed", 2)


# A band crossing is reported once


def test_rescoring_a_lead_whose_score_did_not_change_writes_nothing(api, capture):
    lead = create_lead(api, capture, **FIT)
    activities = LeadActivity.objects.filter(lead=lead).count()

    with listening() as events, capture(execute=True):
        changes = leads_rescore(workspace_id=lead.workspace_id, lead_ids=[lead.pk], reason="again")

    assert changes == []
    assert events == []
    assert len(history(lead)) == 1
    assert LeadActivity.objects.filter(lead=lead).count() == activities


def test_crossing_into_mql_is_reported_once_everywhere(workspace, api, capture, receiver):
    outbound_webhook_create(workspace=workspace, name="CRM", url=receiver.url(), event_types=["lead.score_changed"])
    outbound_webhook_create(workspace=workspace, name="Segments only", url=receiver.url("/other"), event_types=["lead.segment_entered"])
    lead = create_lead(api, capture, **FIT)
    OutboundDelivery.objects.all().delete()
    receiver.requests.clear()

    with listening() as events:
        lead = track(api, capture, lead, "demo_requested", "pricing_page_viewed")  # 45 + 25 + 10 = 80

    assert (lead.score, lead.score_band, lead.lifecycle_stage) == (80, "mql", "mql")
    assert lead.qualified_at is not None
    assert history(lead)[-1] == (FIT_SCORE, 80, "warm", "mql", "mql", "new activity", 1)
    assert band_activities(lead)[-1] == {
        "fromBand": "warm",
        "toBand": "mql",
        "fromScore": FIT_SCORE,
        "toScore": 80,
        "reason": "new activity",
        "lifecycleStage": "mql",
    }
    assert len(events) == 1
    expected = {
        "leadId": str(lead.pk),
        "previousScore": FIT_SCORE,
        "newScore": 80,
        "reason": "new activity",
        "stage": "mql",
        "thresholdCrossed": "mql",
    }
    assert {key: events[0][key] for key in SCORE_EVENT_KEYS} == expected
    assert (events[0]["previousStage"], events[0]["modelVersion"]) == ("warm", 1)
    delivery = OutboundDelivery.objects.get()
    assert (delivery.event_type, delivery.status) == ("lead.score_changed", DeliveryStatus.DELIVERED)
    assert {key: delivery.payload[key] for key in SCORE_EVENT_KEYS} == expected
    [sent] = receiver.requests
    assert (sent.path, sent.headers["X-Leadsmgr-Event"]) == ("/hook", "lead.score_changed")
    assert sent.json()["data"]["thresholdCrossed"] == "mql"

    # More activity inside the band, and recomputing with nothing new, report nothing more.
    qualified_at = lead.qualified_at
    with listening() as later:
        lead = track(api, capture, lead, "email_opened")
        with capture(execute=True):
            assert leads_rescore(workspace_id=workspace.pk, lead_ids=[lead.pk], reason="again") == []
    lead.refresh_from_db()
    assert (lead.score, lead.score_band, lead.qualified_at) == (82, "mql", qualified_at)
    assert history(lead)[-1] == (80, 82, "mql", "mql", "", "new activity", 1)
    assert later == []
    assert len(band_activities(lead)) == 2  # the first scoring's and the crossing into mql
    assert OutboundDelivery.objects.count() == 1
    assert len(receiver.requests) == 1


def test_a_failing_subscriber_does_not_stop_the_outbound_event(workspace, api, capture, receiver):
    outbound_webhook_create(workspace=workspace, name="CRM", url=receiver.url(), event_types=["lead.score_changed"])

    def broken(sender, **kwargs):
        raise RuntimeError("subscriber bug")

    score_changed.connect(broken)
    try:
        lead = create_lead(api, capture, **FIT)
    finally:
        score_changed.disconnect(broken)

    assert lead.score_band == "warm"
    assert [request.json()["data"]["thresholdCrossed"] for request in receiver.requests] == ["warm"]


def test_falling_back_a_band_is_a_crossing_but_keeps_the_lifecycle_stage(api, capture):
    lead = create_lead(api, capture, **FIT)
    lead = track(api, capture, lead, "demo_requested", "pricing_page_viewed")
    qualified_at = lead.qualified_at

    with listening() as events:
        lead = patch_lead(api, capture, lead, title="")  # loses the director's 20: 80 -> 60

    assert (lead.score, lead.score_band) == (60, "hot")
    assert (lead.lifecycle_stage, lead.qualified_at) == ("mql", qualified_at)
    assert history(lead)[-1] == (80, 60, "mql", "hot", "hot", "fields changed", 1)
    assert band_activities(lead)[-1]["toBand"] == "hot"
    assert band_activities(lead)[-1]["lifecycleStage"] is None
    assert [(event["previousScore"], event["newScore"], event["stage"], event["thresholdCrossed"]) for event in events] == [
        (80, 60, "hot", "hot")
    ]


def test_a_lead_further_along_keeps_its_lifecycle_stage_when_it_crosses_into_mql(api, capture):
    lead = create_lead(api, capture, **FIT, lifecycleStage="customer")

    lead = track(api, capture, lead, "demo_requested", "pricing_page_viewed")

    assert (lead.score_band, lead.lifecycle_stage) == ("mql", "customer")
    assert band_activities(lead)[-1]["lifecycleStage"] is None


def test_only_the_given_workspaces_live_leads_are_rescored(workspace, other_workspace):
    ours, gone = make_lead(workspace, **FIT), make_lead(workspace, **FIT)
    theirs = make_lead(other_workspace, **FIT)
    lead_delete(lead=gone, actor=None)

    changes = leads_rescore(workspace_id=workspace.pk, lead_ids=[ours.pk, gone.pk, theirs.pk], reason="batch")

    assert [change.lead_id for change in changes] == [ours.pk]
    assert list(Lead.objects.order_by("created_at").values_list("score", "score_band")) == [(45, "warm"), (0, ""), (0, "")]
    assert ScoreChange.objects.filter(workspace=other_workspace).count() == 0


def test_a_long_reason_is_cut_to_fit(workspace):
    lead = make_lead(workspace, **FIT)
    leads_rescore(workspace_id=workspace.pk, lead_ids=[lead.pk], reason="x" * 500)
    assert ScoreChange.objects.get(lead=lead).reason == "x" * 200


def test_the_score_at_an_instant_before_the_events_leaves_them_out(api, capture):
    lead = create_lead(api, capture, **FIT)
    before = timezone.now()
    lead = track(api, capture, lead, "demo_requested")

    assert score_breakdown(lead=lead)["totalScore"] == FIT_SCORE + 25
    assert score_breakdown(lead=lead, at=before)["totalScore"] == FIT_SCORE


# Two rescorings at once (PostgreSQL: real row locks, real commits)

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="concurrent rescoring needs PostgreSQL (set DATABASE_URL): SQLite serializes writers, so there is no race to test",
)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_rescorings_of_one_lead_at_once_report_its_crossing_once(workspace, receiver):
    # Committed for real: processing, rescoring and the crossing's effects run at each commit.
    outbound_webhook_create(workspace=workspace, name="CRM", url=receiver.url(), event_types=["lead.score_changed"])
    lead = make_lead(workspace, **FIT)
    browser = Browser(make_site(workspace))
    assert browser.send(identify(email=lead.email), *[custom("pricing_page_viewed") for _ in range(3)]).status_code == 202
    lead.refresh_from_db()
    assert (lead.score, lead.score_band) == (75, "mql")
    deliveries = OutboundDelivery.objects.count()
    # Ninety days on, the pricing visits have decayed to an eighth and inactivity costs 15: 45 + 4 - 15 = 34.
    later = timezone.now() + timedelta(days=90)
    results: list = []
    errors: list = []

    def rescore():
        try:
            results.append(leads_rescore(workspace_id=workspace.pk, lead_ids=[lead.pk], reason="decay", at=later))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    with listening() as events:
        with transaction.atomic():
            Lead.objects.select_for_update().get(pk=lead.pk)  # both threads queue behind this lock
            threads = [threading.Thread(target=rescore) for _ in range(2)]
            for thread in threads:
                thread.start()
            time.sleep(0.5)
        for thread in threads:
            thread.join(timeout=60)

    assert errors == []
    assert sorted(len(changes) for changes in results) == [0, 1]
    lead.refresh_from_db()
    assert (lead.score, lead.score_band, lead.lifecycle_stage) == (34, "warm", "mql")
    assert ScoreChange.objects.filter(lead=lead, reason="decay").count() == 1
    assert [data["toBand"] for data in band_activities(lead)] == ["warm", "mql", "warm"]
    assert [(event["newScore"], event["thresholdCrossed"]) for event in events] == [(34, "warm")]
    assert OutboundDelivery.objects.count() == deliveries + 1
