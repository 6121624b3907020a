"""process_many (an import's batch, one task message) must leave every lead exactly as process()
leaves it one by one: same states, `processed` activities, scores and segment memberships. Each
comparison processes the same leads both ways, in two workspaces that start alike.

The hooks are enrichment providers as a deployment would plug them in through
settings.LEAD_PROCESSING_HOOKS: the extension point, not our code.
"""

import json

import pytest
from django.db import transaction
from django.utils import timezone

from leads import processing
from leads.capture import Submission, leads_capture_many
from leads.models import ActivityType, FailedJob, Lead, LeadActivity, SourceType
from leads.processing import TransientError
from leads.segments.models import SegmentEvent
from leads.tasks import process_lead, process_leads
from scoring.models import ScoreChange
from tests.leads.segments.factories import SCORE_50, make_segment
from tests.workspaces.factories import WorkspaceFactory

HOOKS = __name__


class Provider:
    """The state of a pretend enrichment provider the hooks call."""

    calls: list[tuple[str, str]] = []
    failing: dict[str, int] = {}  # email → failures left


def enrichment(lead) -> None:
    """Records what it saw; for the enrich.example domain it finds the title and flags the lead."""
    Provider.calls.append((lead.email, lead.processing_state))
    if Provider.failing.get(lead.email, 0) > 0:
        Provider.failing[lead.email] -= 1
        raise TransientError("provider timed out")
    if lead.email.endswith("@enrich.example"):
        Lead.objects.filter(pk=lead.pk).update(title="CEO", validation_warnings=[*lead.validation_warnings, "title from enrichment"])


@pytest.fixture(autouse=True)
def provider():
    Provider.calls, Provider.failing = [], {}
    yield Provider


@pytest.fixture
def hooked(settings):
    settings.LEAD_PROCESSING_HOOKS = [f"{HOOKS}.enrichment"]


ENTERPRISE = {"size": "500-1000", "industry": "Software"}
PEOPLE = [
    {"name": "Gina Free", "email": "gina@gmail.com"},
    {"name": "Bo Business", "email": "bo@acme.com", "phone": "+1 415 555 0134"},
    {"name": "Una Parsed", "email": "una@acme.com", "phone": "12"},  # a phone kept with a warning
    {"name": "Dee Disposable", "email": "dee@mailinator.com"},
    # Score 55 by the default model (CEO 20, 500+ employees 20, Software 15): enters the segment.
    {"name": "Cleo Chief", "email": "cleo@bigco.com", "title": "CEO", "company": {"name": "Bigco", **ENTERPRISE}},
    # Becomes a CEO through enrichment: scored with what the hook wrote.
    {"name": "Eli Enriched", "email": "eli@enrich.example", "company": {"name": "Enrich", **ENTERPRISE}},
    {"name": "Val Validated", "email": "val@acme.com"},
    {"name": "Dan Deduplicated", "email": "dan@acme.com"},
    {"name": "Rea Ready", "email": "rea@acme.com"},
    {"name": "Del Deleted", "email": "del@acme.com"},
]


def capture(workspace, people) -> list:
    """The leads as an import leaves them before processing: captured in a batch, received."""
    submissions = [Submission(core=dict(person), source_type=SourceType.IMPORT) for person in people]
    with transaction.atomic():
        outcomes = leads_capture_many(workspace=workspace, submissions=submissions)
    return [outcome.lead.pk for outcome in outcomes]


def arranged(workspace) -> list:
    """PEOPLE captured, with what processing re-derives blanked (the API path skips capture's
    checks), and some leads part-way or past processing, as a retried or repeated message finds them."""
    ids = capture(workspace, PEOPLE)
    leads = Lead.objects.filter(workspace=workspace)
    leads.update(email_kind="", phone_country="")
    leads.filter(email="val@acme.com").update(processing_state="validated")
    leads.filter(email="dan@acme.com").update(processing_state="deduplicated")
    leads.filter(email="rea@acme.com").update(processing_state="ready")
    leads.filter(email="del@acme.com").update(deleted_at=timezone.now())
    return ids


def snapshot(workspace) -> dict:
    """What a user sees of each lead of the workspace after processing, by email."""
    segment_events = {}
    for email, segment, kind in SegmentEvent.objects.filter(workspace=workspace).values_list("lead__email", "segment__name", "kind"):
        segment_events.setdefault(email, []).append((segment, kind))
    return {
        lead.email: {
            "state": lead.processing_state,
            "email_kind": lead.email_kind,
            "phone_country": lead.phone_country,
            "warnings": lead.validation_warnings,
            "title": lead.title,
            "score": (lead.score, lead.score_band, lead.lifecycle_stage),
            "activities": sorted(
                LeadActivity.objects.filter(lead=lead).exclude(type=ActivityType.CREATED).values_list("type", "data"),
                key=lambda activity: (activity[0], json.dumps(activity[1], sort_keys=True)),
            ),
            "score_changes": list(
                ScoreChange.objects.filter(lead=lead).values_list("previous_score", "new_score", "new_band", "threshold_crossed", "reason")
            ),
            "segments": sorted(lead.segment_memberships.values_list("segment__name", flat=True)),
            "segment_events": sorted(segment_events.get(lead.email, [])),
        }
        for lead in Lead.objects.filter(workspace=workspace)
    }


def alike_workspaces():
    """Two workspaces with the same segment (by name) and the same arranged leads."""
    workspaces = WorkspaceFactory(), WorkspaceFactory()
    for workspace in workspaces:
        make_segment(workspace, SCORE_50, name="Score 50+")
    return workspaces


def processed(lead_id):
    return LeadActivity.objects.filter(lead_id=lead_id, type=ActivityType.PROCESSED)


def test_a_batch_ends_as_processing_each_lead_one_by_one(db, hooked):
    one_by_one, batch = alike_workspaces()

    ids = arranged(one_by_one)
    for lead_id in ids:
        process_lead.delay(str(lead_id))
    calls_one_by_one, Provider.calls = Provider.calls, []

    ids = arranged(batch)
    assert process_leads.delay([str(lead_id) for lead_id in ids]).get() == len(ids)
    calls_batch = Provider.calls

    expected, actual = snapshot(one_by_one), snapshot(batch)
    assert actual == expected
    assert sorted(calls_batch) == sorted(calls_one_by_one)

    # What the comparison covers, as a user sees it.
    assert {email: lead["state"] for email, lead in actual.items()} == {
        "gina@gmail.com": "ready", "bo@acme.com": "ready", "una@acme.com": "ready", "dee@mailinator.com": "ready",
        "cleo@bigco.com": "ready", "eli@enrich.example": "ready", "val@acme.com": "ready", "dan@acme.com": "ready",
        "rea@acme.com": "ready", "del@acme.com": "received",
    }  # fmt: skip
    kinds = [actual[email]["email_kind"] for email in ("gina@gmail.com", "bo@acme.com", "dee@mailinator.com")]
    assert kinds == ["free", "business", "disposable"]
    assert actual["bo@acme.com"]["phone_country"] == "US"
    assert actual["una@acme.com"]["warnings"] == ["phone '12' could not be parsed as a phone number; kept as given"]
    assert dict(actual["gina@gmail.com"]["activities"])["processed"] == {
        "states": ["validated", "deduplicated", "scored", "ready"],
        "warnings": [],
    }
    assert dict(actual["val@acme.com"]["activities"])["processed"]["states"] == ["deduplicated", "scored", "ready"]
    assert dict(actual["dan@acme.com"]["activities"])["processed"]["states"] == ["scored", "ready"]
    assert dict(actual["eli@enrich.example"]["activities"])["processed"]["warnings"] == ["title from enrichment"]
    assert actual["rea@acme.com"]["activities"] == [] and actual["del@acme.com"]["activities"] == []
    for email in ("cleo@bigco.com", "eli@enrich.example"):
        assert actual[email]["score"][0] == 55
        assert actual[email]["segments"] == ["Score 50+"]
        assert actual[email]["segment_events"] == [("Score 50+", "entered")]
    assert actual["gina@gmail.com"]["segments"] == []
    assert sorted(email for email, state in calls_batch) == sorted(
        ["gina@gmail.com", "bo@acme.com", "una@acme.com", "dee@mailinator.com", "cleo@bigco.com", "eli@enrich.example", "val@acme.com"]
    )
    assert {state for _, state in calls_batch} == {"validated"}


def test_without_hooks_a_batch_ends_as_processing_each_lead_one_by_one(db, settings):
    """Nothing runs between validation and deduplication: a received lead takes both steps in one
    write, and still ends as processed alone, its trail naming both."""
    settings.LEAD_PROCESSING_HOOKS = []
    one_by_one, batch = alike_workspaces()

    ids = arranged(one_by_one)
    for lead_id in ids:
        process_lead.delay(str(lead_id))
    ids = arranged(batch)
    assert process_leads.delay([str(lead_id) for lead_id in ids]).get() == len(ids)

    expected, actual = snapshot(one_by_one), snapshot(batch)
    assert actual == expected
    assert Provider.calls == []
    assert actual["del@acme.com"]["state"] == "received"
    assert {email for email, lead in actual.items() if lead["state"] == "ready"} == {person["email"] for person in PEOPLE} - {
        "del@acme.com"
    }
    assert [actual[email]["email_kind"] for email in ("gina@gmail.com", "bo@acme.com", "dee@mailinator.com")] == [
        "free",
        "business",
        "disposable",
    ]
    assert (actual["bo@acme.com"]["phone_country"], actual["una@acme.com"]["phone_country"]) == ("US", "")
    una = dict(actual["una@acme.com"]["activities"])["processed"]
    assert una == {
        "states": ["validated", "deduplicated", "scored", "ready"],
        "warnings": ["phone '12' could not be parsed as a phone number; kept as given"],
    }
    assert actual["una@acme.com"]["warnings"] == una["warnings"]
    assert dict(actual["cleo@bigco.com"]["activities"])["processed"]["states"] == ["validated", "deduplicated", "scored", "ready"]
    assert dict(actual["val@acme.com"]["activities"])["processed"]["states"] == ["deduplicated", "scored", "ready"]
    assert dict(actual["dan@acme.com"]["activities"])["processed"]["states"] == ["scored", "ready"]
    assert actual["cleo@bigco.com"]["segments"] == ["Score 50+"]
    assert actual["eli@enrich.example"]["title"] == "" and actual["eli@enrich.example"]["segments"] == []


def test_processing_a_batch_again_changes_nothing(workspace, hooked):
    ids = capture(workspace, PEOPLE[:6])
    processing.process_many(ids)
    before = {lead.pk: (lead.processing_state, lead.processing_state_at, lead.score) for lead in Lead.objects.filter(workspace=workspace)}
    calls, score_changes = len(Provider.calls), ScoreChange.objects.count()

    outcome = processing.process_many(ids)

    assert outcome.ready == [] and outcome.failed == {}
    after = {lead.pk: (lead.processing_state, lead.processing_state_at, lead.score) for lead in Lead.objects.filter(workspace=workspace)}
    assert after == before
    assert len(Provider.calls) == calls
    assert all(processed(lead_id).count() == 1 for lead_id in ids)
    assert ScoreChange.objects.count() == score_changes


def test_a_lead_whose_hook_fails_is_retried_alone_and_the_others_go_on(workspace, hooked, provider):
    ids = capture(workspace, PEOPLE[:4])
    provider.failing["bo@acme.com"] = 1

    assert process_leads.delay([str(lead_id) for lead_id in ids]).get() == 3

    assert set(Lead.objects.filter(pk__in=ids).values_list("processing_state", flat=True)) == {"ready"}
    assert [state for email, state in provider.calls if email == "bo@acme.com"] == ["validated", "validated"]
    assert all(processed(lead_id).count() == 1 for lead_id in ids)
    bo = Lead.objects.get(email="bo@acme.com")
    # Its retry picked it up where the batch left it: validated.
    assert processed(bo.pk).get().data["states"] == ["deduplicated", "scored", "ready"]
    assert not FailedJob.objects.exists()


def test_a_hook_failing_for_good_fails_only_its_lead(workspace, hooked, provider, settings):
    ids = capture(workspace, PEOPLE[:3])
    provider.failing["una@acme.com"] = settings.LEAD_PROCESSING_MAX_RETRIES + 10

    process_leads.delay([str(lead_id) for lead_id in ids])

    states = dict(Lead.objects.filter(pk__in=ids).values_list("email", "processing_state"))
    assert states == {"gina@gmail.com": "ready", "bo@acme.com": "ready", "una@acme.com": "failed"}
    job = FailedJob.objects.get()
    assert job.lead.email == "una@acme.com"
    assert job.error == "TransientError: provider timed out"


def new_leads(count: int) -> list:
    """`count` new people captured in a new workspace with a segment."""
    workspace = WorkspaceFactory()
    make_segment(workspace, SCORE_50)
    ids = capture(workspace, [{"name": f"Person {n}", "email": f"p{n}@acme.com", "phone": f"+1 415 555 {n:04d}"} for n in range(count)])
    Lead.objects.filter(pk__in=ids).update(email_kind="")  # so that validation writes every lead
    return ids


def test_a_batch_takes_a_few_queries_whatever_its_size(db, hooked, django_assert_max_num_queries):
    queries = []
    for count in (5, 50):
        ids = new_leads(count)
        with django_assert_max_num_queries(40) as captured:
            outcome = processing.process_many(ids)
        assert len(outcome.ready) == count
        assert Lead.objects.filter(pk__in=ids, processing_state="ready").count() == count
        queries.append(len(captured))
    assert queries[0] == queries[1]


def test_a_task_whose_own_lead_fails_in_a_catch_up_batch_retries_it(workspace, hooked, provider):
    """The named lead's failure is raised for the task's retry even when others were taken along
    (the task gets the id as text, the batch keys failures by UUID)."""
    ids = capture(workspace, PEOPLE[:3])
    bo = Lead.objects.get(email="bo@acme.com")
    provider.failing["bo@acme.com"] = 1

    assert process_lead.delay(str(bo.pk)).get() == "ready"

    assert set(Lead.objects.filter(pk__in=ids).values_list("processing_state", flat=True)) == {"ready"}
    assert [state for email, state in provider.calls if email == "bo@acme.com"] == ["validated", "validated"]
    assert not FailedJob.objects.exists()
