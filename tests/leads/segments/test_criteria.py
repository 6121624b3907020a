"""The segment criteria compiler: validation with exact error paths, every operator on every field kind, nesting,
windows, one SQL query, and a property test comparing the compiled query with a plain Python evaluation."""

import json
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads.models import Company, Lead, LeadStatus, LifecycleStage
from leads.segments.criteria import FIELDS, MAX_CONDITIONS, MAX_DEPTH, CriteriaError, compile_criteria, validate_criteria
from leads.tracking.models import EventKind, LeadEngagement, TrackEvent
from tests.leads.factories import make_lead
from tests.workspaces.factories import UserFactory

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def ago(**delta) -> datetime:
    return NOW - timedelta(**delta)


def lead_with(workspace, *, name, company=None, tags=(), custom=None, engagement=None, events=(), **fields) -> Lead:
    """A lead through the capture service; then what capture does not set (score, owner, times, deletion, custom values
    of every JSON type) written directly, as scoring, assignment and tracking would."""
    lead = make_lead(workspace, name=name, tags=list(tags))
    custom = dict(custom or {})
    if custom:
        custom["_displayNames"] = {key: key for key in custom}
    Lead.objects.filter(pk=lead.pk).update(company=company, custom_fields=custom, **fields)
    if engagement is not None:
        LeadEngagement.objects.create(lead=lead, workspace=workspace, **engagement)
    TrackEvent.objects.bulk_create(
        TrackEvent(workspace=workspace, lead=lead, kind=EventKind.EVENT, name=event, occurred_at=at, is_bot=is_bot)
        for event, at, is_bot in events
    )
    return lead


def live_leads(workspace):
    """What segments query: the workspace's live leads."""
    return Lead.objects.filter(workspace=workspace, deleted_at__isnull=True)


def matching(workspace, criteria, now: datetime = NOW) -> set[str]:
    return set(live_leads(workspace).filter(compile_criteria(criteria, now=now)).values_list("name", flat=True))


def cond(field_name: str, operator: str, value: Any = None, window: str | None = None) -> dict:
    condition = {"field": field_name, "operator": operator}
    if value is not None:
        condition["value"] = value
    if window is not None:
        condition["window"] = window
    return condition


def errors_of(criteria) -> dict[str, str]:
    with pytest.raises(CriteriaError) as raised:
        validate_criteria(criteria)
    return raised.value.errors


# --------------------------------------------------------------------------------------------------------------------------
# Validation (no database)
# --------------------------------------------------------------------------------------------------------------------------


def test_unknown_field_is_named_at_its_exact_spot_with_the_known_fields():
    errors = errors_of({"all": [cond("score", "gte", 5), cond("name", "eq", "x"), cond("foo", "eq", 1)]})
    assert list(errors) == ["criteria.all[2].field"]
    assert errors["criteria.all[2].field"].startswith("Unknown field 'foo'; known: name, firstName,")
    assert "company.size" in errors["criteria.all[2].field"] and "events.<name>" in errors["criteria.all[2].field"]


@pytest.mark.parametrize(
    ("criteria", "path", "message"),
    [
        ({"any": [cond("score", "approx", 5)]}, "criteria.any[0].operator", "Unknown operator 'approx'"),
        ({"all": [cond("name", "gt", "b")]}, "criteria.all[0].operator", "Operator 'gt' does not apply to name"),
        ({"all": [cond("tags", "eq", "vip")]}, "criteria.all[0].operator", "Operator 'eq' does not apply to tags"),
        ({"all": [cond("createdAt", "exists")]}, "criteria.all[0].operator", "Operator 'exists' does not apply to createdAt"),
        ({"all": [cond("score", "eq")]}, "criteria.all[0].value", "Operator 'eq' needs a value."),
        ({"all": [cond("score", "eq", "ten")]}, "criteria.all[0].value", "Expected a number, got 'ten'."),
        ({"all": [cond("score", "eq", True)]}, "criteria.all[0].value", "Expected a number, got True."),
        ({"all": [cond("score", "gt", 10**16)]}, "criteria.all[0].value", "Numbers are at most"),
        ({"all": [cond("name", "eq", "")]}, "criteria.all[0].value", "Expected non-empty text"),
        ({"all": [cond("name", "eq", 5)]}, "criteria.all[0].value", "Expected non-empty text, got 5."),
        ({"all": [cond("name", "in", [])]}, "criteria.all[0].value", "Expected a non-empty list"),
        ({"all": [cond("name", "in", "a")]}, "criteria.all[0].value", "Expected a non-empty list"),
        ({"all": [cond("name", "in", ["a", 3])]}, "criteria.all[0].value", "Item 1: Expected non-empty text, got 3."),
        ({"all": [cond("name", "exists", "yes")]}, "criteria.all[0].value", "Operator 'exists' takes no value."),
        ({"all": [cond("lastSeenAt", "within", "14 days")]}, "criteria.all[0].value", "Expected a window like '12h', '14d' or '2w'"),
        ({"all": [cond("lastSeenAt", "within", "0d")]}, "criteria.all[0].value", "Expected a window"),
        ({"all": [cond("lastSeenAt", "within", "999999w")]}, "criteria.all[0].value", "A window is at most 36500 days."),
        ({"all": [cond("createdAt", "before", "yesterday")]}, "criteria.all[0].value", "Expected an ISO date"),
        ({"all": [cond("createdAt", "after", 20250101)]}, "criteria.all[0].value", "Expected an ISO date"),
        ({"all": [cond("owner", "eq", "bob")]}, "criteria.all[0].value", "Expected a user id or 'unassigned'"),
        ({"all": [cond("owner", "in", [0])]}, "criteria.all[0].value", "Item 0: Expected a user id"),
        ({"all": [cond("tags", "contains", "   ")]}, "criteria.all[0].value", "Expected a tag name"),
        ({"all": [cond("events.demo", "gte", 1.5)]}, "criteria.all[0].value", "Expected a whole number from 0"),
        ({"all": [cond("events.demo", "gte", -1)]}, "criteria.all[0].value", "Expected a whole number from 0"),
        ({"all": [cond("events.demo", "gte", 1, window="7 days")]}, "criteria.all[0].window", "Expected a window"),
        ({"all": [cond("score", "gte", 1, window="7d")]}, "criteria.all[0].window", "Only events.<name> conditions take a window."),
        ({"all": [cond("events.bad name", "exists")]}, "criteria.all[0].field", "Invalid event name 'bad name'"),
        ({"all": [cond("customFields._displayNames", "exists")]}, "criteria.all[0].field", "Invalid custom field key"),
        ({"all": [cond("custom.", "exists")]}, "criteria.all[0].field", "Invalid custom field key ''"),
        ({"all": [cond("customFields.plan", "gt", "pro")]}, "criteria.all[0].value", "Expected a number, got 'pro'."),
        ({"all": [cond("company.size", "eq", False)]}, "criteria.all[0].value", "Expected a number, got False."),
        ({"all": [{"operator": "eq", "value": 1}]}, "criteria.all[0].field", "Required: the name of a field."),
        ({"all": [{**cond("score", "eq", 1), "negate": True}]}, "criteria.all[0].negate", "Unknown key 'negate'"),
        ({"all": [{}]}, "criteria.all[0]", "Expected a condition"),
        ({"all": ["score > 5"]}, "criteria.all[0]", "Expected a condition"),
        ({"all": cond("score", "eq", 1)}, "criteria.all", "Expected a list of conditions or groups."),
        ({"every": []}, "criteria.every", "Unknown key 'every'; a group has all, any, none."),
        ([cond("score", "eq", 1)], "criteria", "Expected an object"),
        (
            {"none": [{"any": [cond("score", "eq", 1), {"all": [cond("band", "eq", 7)]}]}]},
            "criteria.none[0].any[1].all[0].value",
            "Expected",
        ),
        (cond("score", "gte", "x"), "criteria.value", "Expected a number"),
    ],
)
def test_invalid_criteria_name_the_bad_spot(criteria, path, message):
    errors = errors_of(criteria)
    assert path in errors, errors
    assert message in errors[path]


def test_every_problem_is_reported_at_once():
    errors = errors_of({"all": [cond("foo", "eq", 1), cond("score", "gt", "x")], "none": [cond("tags", "nope", "a")]})
    assert set(errors) == {"criteria.all[0].field", "criteria.all[1].value", "criteria.none[0].operator"}


def nested(levels: int) -> dict:
    node: dict = {"all": [cond("title", "contains", "vp")]}
    for _ in range(levels - 1):
        node = {"all": [node]}
    return node


def test_groups_nest_at_most_ten_levels():
    assert validate_criteria(nested(MAX_DEPTH))
    errors = errors_of(nested(MAX_DEPTH + 1))
    assert errors == {"criteria" + ".all[0]" * MAX_DEPTH: "Groups nest at most 10 levels deep."}


def test_at_most_two_hundred_conditions():
    assert validate_criteria({"any": [cond("score", "eq", n) for n in range(MAX_CONDITIONS)]})
    assert errors_of({"any": [cond("score", "eq", n) for n in range(MAX_CONDITIONS + 1)]}) == {
        "criteria": "At most 200 conditions; this has 201."
    }


def test_criteria_error_is_a_value_error_carrying_the_paths():
    with pytest.raises(ValueError, match=r"criteria\.all\[0\]\.field: Unknown field 'x'"):
        compile_criteria({"all": [cond("x", "eq", 1)]}, now=NOW)


def test_compiling_needs_an_aware_instant():
    with pytest.raises(ValueError, match="aware"):
        compile_criteria({}, now=datetime(2025, 6, 1))


def test_normalization_resolves_aliases_instants_owners_and_tag_names():
    normalized = validate_criteria(
        {
            "none": [cond("jobTitle", "eq", "CTO"), cond("stage", "in", ["mql"])],
            "all": [
                cond("custom.budget", "gte", 5),
                cond("createdAt", "after", "2025-05-01"),
                cond("createdAt", "before", "2025-05-01T09:30:00+02:00"),
                cond("lastSeenAt", "before", "30d"),
                cond("owner", "in", ["17", "Unassigned"]),
                cond("tags", "in", ["  Trial   Lead ", "VIP"]),
                cond("events.demo_requested", "gte", 2, window="14d"),
                {"field": "events.demo_requested", "operator": "exists", "value": None, "window": None},
            ],
        }
    )
    assert normalized == {
        "all": [
            cond("customFields.budget", "gte", 5),
            cond("createdAt", "after", "2025-05-01T00:00:00+00:00"),
            cond("createdAt", "before", "2025-05-01T09:30:00+02:00"),
            cond("lastSeenAt", "before", "30d"),
            cond("owner", "in", [17, "unassigned"]),
            cond("tags", "in", ["trial lead", "vip"]),
            cond("events.demo_requested", "gte", 2, window="14d"),
            cond("events.demo_requested", "exists"),
        ],
        "none": [cond("title", "eq", "CTO"), cond("lifecycleStage", "in", ["mql"])],
    }
    assert validate_criteria(normalized) == normalized


def test_a_bare_condition_is_a_one_condition_group_and_an_empty_object_matches_everything():
    condition = {"field": "events.email_clicked", "operator": "gte", "value": 1, "window": "7d"}
    assert validate_criteria(condition) == {"all": [condition]}
    assert validate_criteria({}) == {}


def test_seed_000_segment_criteria_validate_as_written():
    seed = {
        "all": [
            {"field": "company.size", "operator": "gte", "value": 200},
            {"field": "score", "operator": "gte", "value": 50},
            {
                "any": [
                    {"field": "events.demo_requested", "operator": "exists"},
                    {"field": "events.pricing_viewed", "operator": "gte", "value": 2},
                ]
            },
            {"field": "lastSeenAt", "operator": "within", "value": "14d"},
        ],
        "none": [
            {"field": "status", "operator": "eq", "value": "disqualified"},
            {"field": "tags", "operator": "contains", "value": "competitor"},
        ],
    }
    assert validate_criteria(seed) == seed


def test_fields_describe_types_and_operators_for_a_builder():
    described = json.loads(json.dumps(dict(FIELDS)))
    assert described["score"] == {
        "type": "number",
        "label": "Score",
        "operators": {op: "number" for op in ("eq", "neq", "gt", "gte", "lt", "lte")} | {"in": "number[]", "not_in": "number[]"},
    }
    assert described["lifecycleStage"]["choices"] == list(LifecycleStage.values)
    assert described["lifecycleStage"]["aliases"] == ["stage"]
    assert described["status"]["choices"] == list(LeadStatus.values)
    assert described["events.<name>"]["window"] is True
    assert described["events.<name>"]["operators"]["exists"] is None
    assert described["company.size"]["operators"]["gte"] == "number"
    assert described["customFields.<key>"]["operators"]["eq"] == "scalar"
    assert described["lastSeenAt"]["operators"]["within"] == "window"
    assert "exists" not in described["createdAt"]["operators"]


# --------------------------------------------------------------------------------------------------------------------------
# Every operator on every field kind, against hand-made leads
# --------------------------------------------------------------------------------------------------------------------------

ADA, BOB, CY, EVE, FINN, DEE = "Ada Lovelace", "Bob Stone", "Cy Young", "Eve Adams", "Finn Hale", "Dee Deleted"
LIVE = {ADA, BOB, CY, EVE, FINN}


@dataclass
class Crm:
    workspace: Any
    owner_a: Any
    owner_b: Any


@pytest.fixture
def crm(workspace) -> Crm:
    owner_a, owner_b = UserFactory(), UserFactory()

    def company(name, **fields):
        return Company.objects.create(workspace=workspace, name=name, **fields)

    acme = company("Acme Corp", domain="acme.io", industry="Software", size="1,000-5,000", website="https://acme.io")
    beta = company("Beta Retail", domain="beta.shop", industry="Retail", size="50-200")
    gamma = company("Gamma", size="unknown")
    delta = company("Delta", size=" 500")
    lead_with(
        workspace,
        name=ADA,
        title="VP Engineering",
        department="R&D",
        country="US",
        email="ada@acme.io",
        email_kind="business",
        status="qualified",
        lifecycle_stage="mql",
        score=80,
        score_band="hot",
        owner=owner_a,
        utm_source="google",
        source_campaign="spring-launch",
        created_at=ago(days=90),
        qualified_at=ago(days=3),
        company=acme,
        tags=["VIP", "enterprise"],
        custom={"budget": 5000, "plan": "Pro Annual", "seats": "25", "vip": True},
        engagement={"last_seen_at": ago(days=2), "first_seen_at": ago(days=60), "total_pageviews": 12, "total_sessions": 4},
        events=[
            ("demo_requested", ago(days=3), False),
            ("pricing_viewed", ago(days=1), False),
            ("pricing_viewed", ago(days=10), False),
            ("pricing_viewed", ago(days=20), False),
            *[("pricing_viewed", ago(hours=1), True)] * 4,
            ("email_clicked", ago(days=6), False),
        ],
    )
    lead_with(
        workspace,
        name=BOB,
        title="Sales Manager",
        department="Sales",
        country="DE",
        email="bob@gmail.com",
        email_kind="free",
        status="new",
        lifecycle_stage="lead",
        score=20,
        score_band="cold",
        created_at=ago(days=10),
        company=beta,
        tags=["competitor"],
        custom={"budget": "1200", "plan": "basic", "vip": False},
        events=[
            ("pricing_viewed", ago(days=40), False),
            ("email_clicked", ago(days=5), False),
            ("email_clicked", NOW + timedelta(days=1), False),
        ],
    )
    lead_with(
        workspace,
        name=CY,
        email="cy@example.com",
        status="working",
        lifecycle_stage="sql",
        score=50,
        score_band="warm",
        owner=owner_b,
        created_at=ago(days=400),
        custom={"budget": "n/a", "notes": ""},
        engagement={"last_seen_at": ago(days=30), "total_pageviews": 1, "total_sessions": 1},
        events=[("demo_requested", ago(days=1), True)],
    )
    lead_with(
        workspace,
        name=EVE,
        title="vp of marketing",
        country="us",
        email="eve@example.org",
        email_kind="disposable",
        status="unqualified",
        lifecycle_stage="lead",
        score=49,
        owner=owner_a,
        created_at=ago(days=14),
        company=gamma,
        tags=["trial lead"],
        custom={"budget": 1200.5, "plan": "PRO", "interests": ["a", "b"], "meta": {"x": 1}, "nothing": None},
        engagement={"last_seen_at": None, "total_pageviews": 0, "total_sessions": 0},
    )
    lead_with(
        workspace,
        name=FINN,
        title="Engineer",
        department="data_eng",
        email="finn@example.net",
        status="new",
        score=51,
        created_at=ago(hours=12),
        company=delta,
        custom={"seats": 25},
    )
    lead_with(
        workspace,
        name=DEE,
        title="VP Sales",
        score=99,
        owner=owner_a,
        deleted_at=ago(days=1),
        company=acme,
        tags=["vip", "competitor"],
        custom={"budget": 9999, "plan": "pro"},
        engagement={"last_seen_at": ago(days=1), "total_pageviews": 50},
        events=[("demo_requested", ago(days=1), False)],
    )
    return Crm(workspace, owner_a, owner_b)


# (condition, leads expected to match). Owner ids are filled in by the test ("<a>", "<b>").
OPERATOR_CASES = [
    # Text on lead columns: case-insensitive, negatives include empty values, LIKE wildcards are literal.
    (cond("title", "eq", "vp engineering"), {ADA}),
    (cond("jobTitle", "eq", "VP ENGINEERING"), {ADA}),
    (cond("title", "neq", "vp engineering"), {BOB, CY, EVE, FINN}),
    (cond("title", "contains", "VP"), {ADA, EVE}),
    (cond("title", "not_contains", "vp"), {BOB, CY, FINN}),
    (cond("title", "starts_with", "sales"), {BOB}),
    (cond("title", "in", ["engineer", "Sales Manager"]), {BOB, FINN}),
    (cond("title", "not_in", ["engineer", "sales manager"]), {ADA, CY, EVE}),
    (cond("title", "exists"), {ADA, BOB, EVE, FINN}),
    (cond("title", "not_exists"), {CY}),
    (cond("department", "contains", "a_e"), {FINN}),
    (cond("department", "contains", "a%"), set()),
    (cond("department", "eq", "r&d"), {ADA}),
    (cond("country", "eq", "us"), {ADA, EVE}),
    (cond("country", "not_exists"), {CY, FINN}),
    (cond("status", "eq", "disqualified"), set()),
    (cond("status", "neq", "disqualified"), LIVE),
    (cond("status", "in", ["NEW", "working"]), {BOB, CY, FINN}),
    (cond("lifecycleStage", "in", ["mql", "SQL"]), {ADA, CY}),
    (cond("stage", "eq", "lead"), {BOB, EVE, FINN}),
    (cond("band", "eq", "HOT"), {ADA}),
    (cond("band", "not_exists"), {EVE, FINN}),
    (cond("emailKind", "eq", "free"), {BOB}),
    (cond("email", "starts_with", "ADA@"), {ADA}),
    (cond("utmSource", "eq", "google"), {ADA}),
    (cond("campaign", "starts_with", "spring"), {ADA}),
    (cond("firstName", "eq", "ada"), {ADA}),
    (cond("lastName", "contains", "stone"), {BOB}),
    (cond("name", "contains", "%"), set()),
    # Numbers: floats compare exactly against the integer score.
    (cond("score", "eq", 50), {CY}),
    (cond("score", "neq", 50), {ADA, BOB, EVE, FINN}),
    (cond("score", "gt", 50), {ADA, FINN}),
    (cond("score", "gte", 50), {ADA, CY, FINN}),
    (cond("score", "lt", 50), {BOB, EVE}),
    (cond("score", "lte", 49.5), {BOB, EVE}),
    (cond("score", "gte", 49.5), {ADA, CY, FINN}),
    (cond("score", "in", [20, 51]), {BOB, FINN}),
    (cond("score", "not_in", [20, 51]), {ADA, CY, EVE}),
    # Whole floats are whole numbers; a fraction in a list compares the whole list exactly; far-off numbers still compare.
    (cond("score", "gte", 50.0), {ADA, CY, FINN}),
    (cond("score", "in", [20.0, 51.0]), {BOB, FINN}),
    (cond("score", "in", [50, 50.5]), {CY}),
    (cond("score", "not_in", [49.5, 51]), {ADA, BOB, CY, EVE}),
    (cond("score", "lt", 10**15), LIVE),
    (cond("score", "gt", -(10**15)), LIVE),
    (cond("score", "eq", 3_000_000_000), set()),
    # Owner.
    (cond("owner", "eq", "<a>"), {ADA, EVE}),
    (cond("owner", "eq", "unassigned"), {BOB, FINN}),
    (cond("owner", "neq", "<a>"), {BOB, CY, FINN}),
    (cond("owner", "in", ["<b>", "unassigned"]), {BOB, CY, FINN}),
    (cond("owner", "not_in", ["<a>"]), {BOB, CY, FINN}),
    (cond("owner", "exists"), {ADA, CY, EVE}),
    (cond("owner", "not_exists"), {BOB, FINN}),
    # Times on lead columns: within is [now - window, now]; before/after are strict.
    (cond("createdAt", "within", "14d"), {BOB, EVE, FINN}),
    (cond("createdAt", "within", "2w"), {BOB, EVE, FINN}),
    (cond("createdAt", "within", "12h"), {FINN}),
    (cond("createdAt", "within", "11h"), set()),
    (cond("createdAt", "before", "30d"), {ADA, CY}),
    (cond("createdAt", "after", "30d"), {BOB, EVE, FINN}),
    (cond("createdAt", "before", "2025-01-01"), {CY}),
    (cond("createdAt", "after", "2025-05-18T12:00:00Z"), {BOB, FINN}),
    (cond("createdAt", "after", "2025-05-18T14:00:00+02:00"), {BOB, FINN}),
    (cond("createdAt", "after", "2025-05-18T11:59:59Z"), {BOB, EVE, FINN}),
    (cond("qualifiedAt", "exists"), {ADA}),
    (cond("qualifiedAt", "not_exists"), {BOB, CY, EVE, FINN}),
    (cond("qualifiedAt", "within", "7d"), {ADA}),
    (cond("qualifiedAt", "before", "1d"), {ADA}),
    # Engagement: a lead never seen has no last-seen time and zero counters.
    (cond("lastSeenAt", "within", "14d"), {ADA}),
    (cond("lastSeenAt", "before", "14d"), {CY}),
    (cond("lastSeenAt", "after", "14d"), {ADA}),
    (cond("lastSeenAt", "exists"), {ADA, CY}),
    (cond("lastSeenAt", "not_exists"), {BOB, EVE, FINN}),
    (cond("firstSeenAt", "before", "30d"), {ADA}),
    (cond("totalPageviews", "gt", 0), {ADA, CY}),
    (cond("totalPageviews", "eq", 0), {BOB, EVE, FINN}),
    (cond("totalPageviews", "neq", 0), {ADA, CY}),
    (cond("totalPageviews", "lt", 5), {BOB, CY, EVE, FINN}),
    (cond("totalPageviews", "lte", 1), {BOB, CY, EVE, FINN}),
    (cond("totalPageviews", "in", [0, 12]), {ADA, BOB, EVE, FINN}),
    (cond("totalPageviews", "not_in", [0, 12]), {CY}),
    (cond("totalSessions", "gte", 4), {ADA}),
    # Company text; a lead without a company fails positives and passes negatives.
    (cond("company.name", "eq", "acme corp"), {ADA}),
    (cond("company.name", "contains", "A"), {ADA, BOB, EVE, FINN}),
    (cond("company.name", "not_contains", "retail"), {ADA, CY, EVE, FINN}),
    (cond("company.name", "neq", "Gamma"), {ADA, BOB, CY, FINN}),
    (cond("company.name", "exists"), {ADA, BOB, EVE, FINN}),
    (cond("company.name", "not_exists"), {CY}),
    (cond("company.industry", "in", ["software", "RETAIL"]), {ADA, BOB}),
    (cond("company.industry", "not_in", ["software"]), {BOB, CY, EVE, FINN}),
    (cond("company.industry", "exists"), {ADA, BOB}),
    (cond("company.industry", "not_exists"), {CY, EVE, FINN}),
    (cond("company.domain", "starts_with", "ACME"), {ADA}),
    (cond("company.website", "contains", "acme"), {ADA}),
    # Company size: numbers compare its leading whole number, text compares the text.
    (cond("company.size", "gte", 200), {ADA, FINN}),
    (cond("company.size", "gt", 50), {ADA, FINN}),
    (cond("company.size", "gte", 50), {ADA, BOB, FINN}),
    (cond("company.size", "lt", 100), {BOB}),
    (cond("company.size", "lte", 1000), {ADA, BOB, FINN}),
    (cond("company.size", "eq", 500), {FINN}),
    (cond("company.size", "eq", "50-200"), {BOB}),
    (cond("company.size", "neq", 500), {ADA, BOB, CY, EVE}),
    (cond("company.size", "in", [50, "UNKNOWN"]), {BOB, EVE}),
    (cond("company.size", "not_in", [50, "unknown"]), {ADA, CY, FINN}),
    (cond("company.size", "contains", "000"), {ADA}),
    (cond("company.size", "not_contains", "000"), {BOB, CY, EVE, FINN}),
    (cond("company.size", "starts_with", "50"), {BOB}),
    (cond("company.size", "exists"), {ADA, BOB, EVE, FINN}),
    (cond("company.size", "not_exists"), {CY}),
    # Tags, case-insensitive and whitespace-collapsed like stored tag names.
    (cond("tags", "contains", "competitor"), {BOB}),
    (cond("tags", "contains", "VIP"), {ADA}),
    (cond("tags", "contains", "Trial  Lead"), {EVE}),
    (cond("tags", "not_contains", "vip"), {BOB, CY, EVE, FINN}),
    (cond("tags", "in", ["competitor", "enterprise"]), {ADA, BOB}),
    (cond("tags", "not_in", ["competitor", "enterprise"]), {CY, EVE, FINN}),
    (cond("tags", "exists"), {ADA, BOB, EVE}),
    (cond("tags", "not_exists"), {CY, FINN}),
    # Custom fields: numbers match JSON numbers and numeric strings; text matches strings; booleans booleans.
    (cond("customFields.budget", "gt", 1000), {ADA, BOB, EVE}),
    (cond("customFields.budget", "eq", 1200), {BOB}),
    (cond("customFields.budget", "eq", 1200.5), {EVE}),
    (cond("customFields.budget", "eq", "1200"), {BOB}),
    (cond("customFields.budget", "eq", "N/A"), {CY}),
    (cond("custom.budget", "lte", 1200), {BOB}),
    (cond("custom.budget", "lt", 1200.5), {BOB}),
    (cond("custom.budget", "gte", 1200.5), {ADA, EVE}),
    (cond("customFields.budget", "neq", 1200), {ADA, CY, EVE, FINN}),
    (cond("customFields.budget", "in", [5000, "n/a", True]), {ADA, CY}),
    (cond("customFields.budget", "not_in", [5000, "n/a"]), {BOB, EVE, FINN}),
    (cond("customFields.budget", "exists"), {ADA, BOB, CY, EVE}),
    (cond("customFields.budget", "not_exists"), {FINN}),
    (cond("customFields.plan", "eq", "pro annual"), {ADA}),
    (cond("customFields.plan", "contains", "pro"), {ADA, EVE}),
    (cond("customFields.plan", "not_contains", "pro"), {BOB, CY, FINN}),
    (cond("customFields.plan", "starts_with", "pro "), {ADA}),
    (cond("customFields.plan", "in", ["basic", "pro"]), {BOB, EVE}),
    (cond("customFields.plan", "not_in", ["basic", "pro"]), {ADA, CY, FINN}),
    (cond("customFields.vip", "eq", True), {ADA}),
    (cond("customFields.vip", "eq", False), {BOB}),
    (cond("customFields.vip", "neq", True), {BOB, CY, EVE, FINN}),
    (cond("customFields.seats", "gte", 25), {ADA, FINN}),
    (cond("customFields.seats", "eq", "25"), {ADA}),
    (cond("customFields.notes", "exists"), set()),
    (cond("customFields.notes", "not_exists"), LIVE),
    (cond("customFields.nothing", "exists"), set()),
    (cond("customFields.interests", "exists"), {EVE}),
    (cond("customFields.meta", "exists"), {EVE}),
    (cond("customFields.displayNames", "exists"), set()),
    # Events: non-bot, at or before now, within the window when given.
    (cond("events.demo_requested", "exists"), {ADA}),
    (cond("events.demo_requested", "not_exists"), {BOB, CY, EVE, FINN}),
    (cond("events.pricing_viewed", "gte", 2), {ADA}),
    (cond("events.pricing_viewed", "eq", 3), {ADA}),
    (cond("events.pricing_viewed", "eq", 7), set()),
    (cond("events.pricing_viewed", "gte", 2, window="14d"), {ADA}),
    (cond("events.pricing_viewed", "gte", 2, window="7d"), set()),
    (cond("events.pricing_viewed", "eq", 1, window="7d"), {ADA}),
    (cond("events.pricing_viewed", "exists", window="30d"), {ADA}),
    (cond("events.pricing_viewed", "exists", window="6w"), {ADA, BOB}),
    (cond("events.email_clicked", "gte", 1, window="7d"), {ADA, BOB}),
    (cond("events.email_clicked", "eq", 1), {ADA, BOB}),
    (cond("events.email_clicked", "gt", 0), {ADA, BOB}),
    (cond("events.email_clicked", "neq", 0), {ADA, BOB}),
    (cond("events.email_clicked", "lt", 1), {CY, EVE, FINN}),
    (cond("events.email_clicked", "lte", 0), {CY, EVE, FINN}),
    (cond("events.email_clicked", "eq", 0, window="12h"), LIVE),
    (cond("events.never_sent", "not_exists"), LIVE),
]


def _with_owner_ids(value, crm: Crm):
    ids = {"<a>": crm.owner_a.pk, "<b>": crm.owner_b.pk}
    return [ids.get(item, item) for item in value] if isinstance(value, list) else ids.get(value, value)


@pytest.mark.django_db
def test_every_operator_on_every_field_kind(crm):
    """One lead set, every (field kind, operator) case; all mismatches reported together."""
    mismatches = []
    for condition, expected in OPERATOR_CASES:
        if "value" in condition:
            condition = {**condition, "value": _with_owner_ids(condition["value"], crm)}
        got = matching(crm.workspace, {"all": [condition]})
        if got != expected:
            mismatches.append(f"{condition}: expected {sorted(expected)}, got {sorted(got)}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.django_db
def test_each_case_also_holds_inside_none_as_its_complement(crm):
    """NOT of every compiled condition is exact (no SQL NULL leaks): `none` of it selects exactly the other live leads."""
    mismatches = []
    for condition, expected in OPERATOR_CASES:
        if "value" in condition:
            condition = {**condition, "value": _with_owner_ids(condition["value"], crm)}
        got = matching(crm.workspace, {"none": [condition]})
        if got != LIVE - expected:
            mismatches.append(f"none of {condition}: expected {sorted(LIVE - expected)}, got {sorted(got)}")
    assert not mismatches, "\n".join(mismatches)


def _sample_value(kind: str | None):
    samples = {
        "text": "a",
        "number": 1,
        "count": 1,
        "window": "14d",
        "instant": "2025-01-01",
        "owner": "unassigned",
        "textOrNumber": 5,
        "scalar": True,
    }
    if kind is None:
        return None
    return [samples[kind[:-2]], samples[kind[:-2]]] if kind.endswith("[]") else samples[kind]


@pytest.mark.django_db
def test_every_operator_of_every_field_in_fields_runs_and_splits_the_leads_in_two(crm):
    """Each (field, operator) FIELDS offers runs on this database, and a condition and its `none` partition the live
    leads: no lead is lost to an SQL NULL."""
    checked = 0
    for name, spec in FIELDS.items():
        name = name.replace("<key>", "budget").replace("<name>", "pricing_viewed")
        for operator, kind in spec["operators"].items():
            condition = cond(name, operator, _sample_value(kind), window="7d" if name.startswith("events.") else None)
            inside, outside = matching(crm.workspace, condition), matching(crm.workspace, {"none": [condition]})
            assert inside | outside == LIVE and not inside & outside, condition
            checked += 1
    assert checked > 300


# --------------------------------------------------------------------------------------------------------------------------
# Groups, nesting, deleted leads, time as a parameter, one query
# --------------------------------------------------------------------------------------------------------------------------

SEED_SEGMENT = {
    "all": [
        {"field": "company.size", "operator": "gte", "value": 200},
        {"field": "score", "operator": "gte", "value": 50},
        {
            "any": [
                {"field": "events.demo_requested", "operator": "exists"},
                {"field": "events.pricing_viewed", "operator": "gte", "value": 2},
            ]
        },
        {"field": "lastSeenAt", "operator": "within", "value": "14d"},
    ],
    "none": [
        {"field": "status", "operator": "eq", "value": "disqualified"},
        {"field": "tags", "operator": "contains", "value": "competitor"},
    ],
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (SEED_SEGMENT, {ADA}),
        ({}, LIVE),
        ({"all": []}, LIVE),
        ({"any": []}, set()),
        ({"none": []}, LIVE),
        ({"any": [{"all": []}]}, LIVE),
        ({"none": [{"any": []}]}, LIVE),
        ({"none": [{"all": []}]}, set()),
        ({"all": [cond("score", "gte", 0)], "any": []}, set()),
        (
            {"any": [{"all": [cond("title", "contains", "vp"), cond("country", "eq", "us")]}, {"none": [cond("score", "lt", 50)]}]},
            {ADA, CY, EVE, FINN},
        ),
        ({"none": [{"all": [cond("tags", "exists"), cond("customFields.plan", "contains", "pro")]}]}, {BOB, CY, FINN}),
        (
            {
                "all": [cond("score", "gte", 50)],
                "any": [cond("company.name", "eq", "delta"), cond("tags", "contains", "vip")],
                "none": [cond("lifecycleStage", "eq", "sql")],
            },
            {ADA, FINN},
        ),
        (
            {"any": [{"none": [{"any": [{"all": [cond("company.size", "lt", 100)]}, cond("events.demo_requested", "exists")]}]}]},
            {CY, EVE, FINN},
        ),
        (nested(MAX_DEPTH), {ADA, EVE}),
        (cond("events.email_clicked", "gte", 1, window="7d"), {ADA, BOB}),
    ],
)
def test_groups_combine_as_documented(crm, criteria, expected):
    assert matching(crm.workspace, criteria) == expected


@pytest.mark.django_db
def test_deleted_leads_never_match_even_without_the_callers_filter(crm):
    q = compile_criteria({"any": [cond("score", "gte", 0), cond("name", "eq", DEE)]}, now=NOW)
    assert set(Lead.objects.filter(workspace=crm.workspace).filter(q).values_list("name", flat=True)) == LIVE
    assert Lead.objects.filter(workspace=crm.workspace, name=DEE).exists()


@pytest.mark.django_db
def test_time_is_a_parameter(crm):
    assert matching(crm.workspace, cond("lastSeenAt", "within", "14d"), now=NOW + timedelta(days=20)) == set()
    # Five days ago: Finn (created 12 hours ago) did not exist yet, Eve and Bob were new.
    assert matching(crm.workspace, cond("createdAt", "within", "14d"), now=NOW - timedelta(days=5)) == {BOB, EVE}
    # Tomorrow Bob's second email click has happened.
    assert matching(crm.workspace, cond("events.email_clicked", "eq", 2), now=NOW + timedelta(days=2)) == {BOB}


@pytest.mark.django_db
def test_other_workspaces_leads_stay_out_of_subqueries(crm, other_workspace):
    lead_with(other_workspace, name="Stranger", tags=["vip"], events=[("demo_requested", ago(days=1), False)])
    assert matching(crm.workspace, cond("events.demo_requested", "exists")) == {ADA}
    assert matching(other_workspace, cond("tags", "contains", "vip")) == {"Stranger"}


@pytest.mark.django_db
def test_a_segment_is_one_sql_query(crm):
    q = compile_criteria(
        {
            "all": [*SEED_SEGMENT["all"], cond("customFields.budget", "gt", 10), cond("owner", "in", [crm.owner_a.pk, "unassigned"])],
            "none": [*SEED_SEGMENT["none"], cond("company.name", "contains", "retail")],
        },
        now=NOW,
    )
    with CaptureQueriesContext(connection) as queries:
        assert live_leads(crm.workspace).filter(q).count() == 1
    assert len(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        assert list(live_leads(crm.workspace).filter(q).values_list("name", flat=True)) == [ADA]
    assert len(queries) == 1


# --------------------------------------------------------------------------------------------------------------------------
# Property: the compiled query selects exactly what a plain Python evaluation selects
# --------------------------------------------------------------------------------------------------------------------------

HOURS = [-30, 0, 1, 11, 12, 13, 24, 24 * 7, 24 * 14, 24 * 14 + 1, 24 * 30, 24 * 90, 24 * 400]
WINDOWS = ["12h", "1d", "7d", "2w", "14d", "30d"]
INSTANTS = ["2025-05-18T12:00:00Z", "2025-05-18", "2025-06-01T14:00:00+02:00", "2024-01-01", "2025-05-31T11:00:00"]
LEAD_TEXTS = ["", "", "alpha", "Alpha Beta", "beta", "al%pha", "a_b", "axb", "ALPHA", "gamma"]
CRITERIA_TEXTS = ["alpha", "ALPHA", "beta", "al%", "a_b", "a", "x", "Alpha Beta", "gam", "zzz"]
STATUSES = [*LeadStatus.values, "disqualified"]
STAGES = list(LifecycleStage.values)
BANDS = ["", "cold", "warm", "hot", "MQL"]
COUNTRIES = ["", "US", "us", "DE", "FR"]
# (criteria field, lead attribute, values on leads, values in criteria)
TEXT_FIELDS = {
    "title": ("title", LEAD_TEXTS, CRITERIA_TEXTS),
    "jobTitle": ("title", LEAD_TEXTS, CRITERIA_TEXTS),
    "department": ("department", LEAD_TEXTS, CRITERIA_TEXTS),
    "utmSource": ("utm_source", LEAD_TEXTS, CRITERIA_TEXTS),
    "campaign": ("source_campaign", LEAD_TEXTS, CRITERIA_TEXTS),
    "country": ("country", COUNTRIES, ["us", "US", "de", "u", "S", "fr"]),
    "status": ("status", STATUSES, [*STATUSES, "QUALIFIED", "qual"]),
    "lifecycleStage": ("lifecycle_stage", STAGES, [*STAGES, "MQL", "s"]),
    "stage": ("lifecycle_stage", STAGES, STAGES),
    "band": ("score_band", BANDS, ["cold", "HOT", "mql", "w"]),
}
COMPANY_TEXTS = {"company.name": "name", "company.industry": "industry", "company.domain": "domain"}
COMPANY_NAMES = ["Acme", "acme labs", "Beta", "Gamma%Co", "Delta_Inc", "Alpha"]
COMPANY_INDUSTRIES = ["", "Software", "software", "Retail", "alpha"]
COMPANY_SIZES = ["50-200", "500", "1,000-5,000", " 20", "unknown", "", "10k+", "200", "0"]
SCORES = [-5, 0, 10, 49, 50, 51, 80, 100]
COUNTERS = [0, 1, 5, 12]
TAGS = ["vip", "competitor", "enterprise", "trial lead"]
CUSTOM_KEYS = ["budget", "plan", "vip", "notes"]
# Numbers, numeric and non-numeric strings, booleans, JSON null, an array and an object.
CUSTOM_VALUES = [5000, 1200, 1200.5, 0, -3.5, "1200", "-3.5", "0012", "1e3", " 12", "n/a", "", "Pro", "pro plan"]
CUSTOM_VALUES += [True, False, None, [1, 2], {"a": 1}]
EVENT_NAMES = ["demo_requested", "pricing_viewed", "email_clicked"]
TEXT_OPS = ["eq", "neq", "in", "not_in", "contains", "not_contains", "starts_with", "exists", "not_exists"]
NUMBER_OPS = ["eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in"]
COMPARISONS = ["eq", "neq", "gt", "gte", "lt", "lte"]
NEGATIONS = {"neq": "eq", "not_in": "in", "not_contains": "contains", "not_exists": "exists"}


@dataclass
class Facts:
    """What the reference evaluator knows about a lead, read back from the database."""

    id: Any
    deleted: bool
    text: dict[str, str]
    score: int
    owner_id: int | None
    times: dict[str, datetime | None]
    counters: dict[str, int]
    company: dict[str, str] | None
    tags: set[str]
    custom: dict[str, Any]
    events: list[tuple[str, datetime, bool]] = field(default_factory=list)


def build_random_leads(workspace, rng: random.Random, owners: list, count: int) -> None:
    companies = [
        Company.objects.create(
            workspace=workspace,
            name=name,
            domain=rng.choice(["", f"{name.split()[0].lower()}.io"]),
            industry=rng.choice(COMPANY_INDUSTRIES),
            size=rng.choice(COMPANY_SIZES),
        )
        for name in COMPANY_NAMES
    ]
    for index in range(count):
        text = {attribute: rng.choice(values) for attribute, values, _ in TEXT_FIELDS.values()}
        lead_with(
            workspace,
            name=f"Random {index}",
            **text,
            score=rng.choice(SCORES),
            owner=rng.choice([None, *owners]),
            created_at=NOW - timedelta(hours=rng.choice(HOURS)),
            last_activity_at=NOW - timedelta(hours=rng.choice(HOURS)),
            qualified_at=rng.choice([None, NOW - timedelta(hours=rng.choice(HOURS))]),
            deleted_at=NOW if rng.random() < 0.15 else None,
            company=rng.choice([None, *companies]),
            tags=rng.sample(TAGS, rng.randint(0, 3)),
            custom={key: rng.choice(CUSTOM_VALUES) for key in CUSTOM_KEYS if rng.random() < 0.6},
            engagement=None
            if rng.random() < 0.3
            else {
                "last_seen_at": rng.choice([None, NOW - timedelta(hours=rng.choice(HOURS))]),
                "first_seen_at": rng.choice([None, NOW - timedelta(hours=rng.choice(HOURS))]),
                "total_pageviews": rng.choice(COUNTERS),
                "total_sessions": rng.choice(COUNTERS),
            },
            events=[
                (rng.choice(EVENT_NAMES), NOW - timedelta(hours=rng.choice(HOURS)), rng.random() < 0.2) for _ in range(rng.randint(0, 6))
            ],
        )


def load_facts(workspace) -> list[Facts]:
    leads = Lead.objects.filter(workspace=workspace).select_related("company").prefetch_related("tags", "track_events")
    engagement = {row.lead_id: row for row in LeadEngagement.objects.filter(workspace=workspace)}
    facts = []
    for lead in leads:
        seen = engagement.get(lead.pk)
        facts.append(
            Facts(
                id=lead.pk,
                deleted=lead.deleted_at is not None,
                text={attribute: getattr(lead, attribute) for attribute, _, _ in TEXT_FIELDS.values()},
                score=lead.score,
                owner_id=lead.owner_id,
                times={
                    "createdAt": lead.created_at,
                    "lastActivityAt": lead.last_activity_at,
                    "qualifiedAt": lead.qualified_at,
                    "lastSeenAt": seen.last_seen_at if seen else None,
                    "firstSeenAt": seen.first_seen_at if seen else None,
                },
                counters={
                    "totalPageviews": seen.total_pageviews if seen else 0,
                    "totalSessions": seen.total_sessions if seen else 0,
                },
                company={
                    "name": lead.company.name,
                    "industry": lead.company.industry,
                    "domain": lead.company.domain,
                    "size": lead.company.size,
                }
                if lead.company
                else None,
                tags={tag.name for tag in lead.tags.all()},
                custom=lead.custom_fields,
                events=[(event.name, event.occurred_at, event.is_bot) for event in lead.track_events.all()],
            )
        )
    return facts


# The reference evaluator: the documented semantics, written plainly over one lead's facts.


def window_of(raw: str) -> timedelta:
    amount, unit = int(raw[:-1]), raw[-1]
    return timedelta(hours=amount) if unit == "h" else timedelta(days=amount) if unit == "d" else timedelta(weeks=amount)


def instant_of(raw: str, now: datetime) -> datetime:
    if re.fullmatch(r"[0-9]+[hdw]", raw):
        return now - window_of(raw)
    parsed = datetime.fromisoformat(raw)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def text_matches(actual: str, operator: str, value) -> bool:
    actual = actual.lower()
    if operator == "exists":
        return actual != ""
    if operator == "eq":
        return actual == value.lower()
    if operator == "in":
        return any(actual == item.lower() for item in value)
    if operator == "contains":
        return value.lower() in actual
    return actual.startswith(value.lower())


def number_matches(actual, operator: str, value) -> bool:
    if actual is None:
        return False
    if operator == "in":
        return any(actual == item for item in value)
    return {"eq": actual == value, "gt": actual > value, "gte": actual >= value, "lt": actual < value, "lte": actual <= value}[operator]


def leading_number(size: str) -> int | None:
    match = re.match(r" *([0-9]+)", size.replace(",", ""))
    return int(match.group(1)) if match else None


def custom_number(raw) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str) and re.fullmatch(r"-?[0-9]{1,15}(\.[0-9]{1,15})?", raw):
        return float(raw)
    return None


def custom_matches(custom: dict, key: str, operator: str, value) -> bool:
    missing = object()
    raw = custom.get(key, missing)
    if operator == "exists":
        return raw is not missing and raw is not None and raw != ""
    if operator == "in":
        return any(custom_matches(custom, key, "eq", item) for item in value)
    if isinstance(value, bool):
        return raw is value
    if isinstance(value, int | float):
        return number_matches(custom_number(raw), operator, value)
    return isinstance(raw, str) and text_matches(raw, operator, value)


def size_matches(size: str, operator: str, value) -> bool:
    if operator == "in":
        return any(size_matches(size, "eq", item) for item in value)
    if isinstance(value, int | float) and operator != "exists":
        return number_matches(leading_number(size), operator, value)
    return text_matches(size, operator, value)


def condition_holds(lead: Facts, condition: dict, now: datetime) -> bool:
    name, operator, value = condition["field"], condition["operator"], condition.get("value")
    if operator in NEGATIONS:
        return not condition_holds(lead, {**condition, "operator": NEGATIONS[operator]}, now)
    if name in TEXT_FIELDS:
        return text_matches(lead.text[TEXT_FIELDS[name][0]], operator, value)
    if name in COMPANY_TEXTS:
        return lead.company is not None and text_matches(lead.company[COMPANY_TEXTS[name]], operator, value)
    if name == "company.size":
        return lead.company is not None and size_matches(lead.company["size"], operator, value)
    if name == "score":
        return number_matches(lead.score, operator, value)
    if name in lead.counters:
        return number_matches(lead.counters[name], operator, value)
    if name == "owner":
        if operator == "exists":
            return lead.owner_id is not None
        wanted = value if operator == "in" else [value]
        return any(lead.owner_id is None if item == "unassigned" else lead.owner_id == item for item in wanted)
    if name in lead.times:
        at = lead.times[name]
        if at is None:
            return False
        if operator == "exists":
            return True
        if operator == "within":
            return now - window_of(value) <= at <= now
        return at < instant_of(value, now) if operator == "before" else at > instant_of(value, now)
    if name == "tags":
        if operator == "exists":
            return bool(lead.tags)
        wanted = value if operator == "in" else [value]
        return any(" ".join(item.split()).lower() in lead.tags for item in wanted)
    if name.startswith(("customFields.", "custom.")):
        return custom_matches(lead.custom, name.split(".", 1)[1], operator, value)
    if name.startswith("events."):
        window = condition.get("window")
        count = sum(
            1
            for event, at, is_bot in lead.events
            if event == name.removeprefix("events.") and not is_bot and at <= now and (window is None or at >= now - window_of(window))
        )
        return count >= 1 if operator == "exists" else number_matches(count, operator, value)
    raise AssertionError(f"the reference does not know {name}")


def group_holds(lead: Facts, node: dict, now: datetime) -> bool:
    if "field" in node:
        return condition_holds(lead, node, now)
    return (
        all(group_holds(lead, child, now) for child in node.get("all", []))
        and (any(group_holds(lead, child, now) for child in node["any"]) if "any" in node else True)
        and not any(group_holds(lead, child, now) for child in node.get("none", []))
    )


# Random criteria over the same vocabularies as the random leads.


def values_for(operator: str, pick: st.SearchStrategy) -> st.SearchStrategy:
    if operator in ("exists", "not_exists"):
        return st.none()
    if operator in ("in", "not_in"):
        return st.lists(pick, min_size=1, max_size=3)
    return pick


@st.composite
def conditions(draw, owner_ids: list[int]) -> dict:
    kind = draw(st.sampled_from(["text", "company", "size", "score", "counter", "owner", "time", "tags", "custom", "events"]))
    if kind == "text":
        name = draw(st.sampled_from(sorted(TEXT_FIELDS)))
        operator = draw(st.sampled_from(TEXT_OPS))
        return cond(name, operator, draw(values_for(operator, st.sampled_from(TEXT_FIELDS[name][2]))))
    if kind == "company":
        name, operator = draw(st.sampled_from(sorted(COMPANY_TEXTS))), draw(st.sampled_from(TEXT_OPS))
        words = ["acme", "ACME LABS", "%", "_", "alpha", "software", "beta", "io", "Delta_inc", "a"]
        return cond(name, operator, draw(values_for(operator, st.sampled_from(words))))
    if kind == "size":
        operator = draw(st.sampled_from([*TEXT_OPS, "gt", "gte", "lt", "lte"]))
        numbers = st.sampled_from([0, 10, 20, 50, 199.5, 200, 500, 1000])
        texts = st.sampled_from(["50", "500", "k+", "UNKNOWN", "1,000", " 20", "-"])
        if operator in ("gt", "gte", "lt", "lte"):
            pick = numbers
        elif operator in ("contains", "not_contains", "starts_with"):
            pick = texts
        else:
            pick = numbers | texts
        return cond("company.size", operator, draw(values_for(operator, pick)))
    if kind == "score":
        operator = draw(st.sampled_from(NUMBER_OPS))
        return cond("score", operator, draw(values_for(operator, st.sampled_from([-5, 0, 7, 10, 49.5, 50, 51, 100]))))
    if kind == "counter":
        name, operator = draw(st.sampled_from(["totalPageviews", "totalSessions"])), draw(st.sampled_from(NUMBER_OPS))
        return cond(name, operator, draw(values_for(operator, st.sampled_from([0, 1, 4.5, 5, 12]))))
    if kind == "owner":
        operator = draw(st.sampled_from(["eq", "neq", "in", "not_in", "exists", "not_exists"]))
        return cond("owner", operator, draw(values_for(operator, st.sampled_from([*owner_ids, "unassigned", 10**9]))))
    if kind == "time":
        name = draw(st.sampled_from(["createdAt", "lastActivityAt", "qualifiedAt", "lastSeenAt", "firstSeenAt"]))
        nullable = name in ("qualifiedAt", "lastSeenAt", "firstSeenAt")
        operator = draw(st.sampled_from(["within", "before", "after", *(["exists", "not_exists"] if nullable else [])]))
        instants = st.sampled_from(WINDOWS if operator == "within" else [*WINDOWS, *INSTANTS])
        return cond(name, operator, draw(values_for(operator, instants)))
    if kind == "tags":
        operator = draw(st.sampled_from(["contains", "not_contains", "in", "not_in", "exists", "not_exists"]))
        names = st.sampled_from(["VIP", "competitor", "Trial  Lead", "enterprise", "nosuch"])
        return cond("tags", operator, draw(values_for(operator, names)))
    if kind == "custom":
        name = draw(st.sampled_from(["customFields.", "custom."])) + draw(st.sampled_from([*CUSTOM_KEYS, "absent"]))
        operator = draw(st.sampled_from([*TEXT_OPS, "gt", "gte", "lt", "lte"]))
        if operator in ("gt", "gte", "lt", "lte"):
            pick = st.sampled_from([-4, 0, 12, 1000, 1200, 1200.5, 5000])
        elif operator in ("contains", "not_contains", "starts_with"):
            pick = st.sampled_from(["pro", "n", "PLAN", "12", "/", "1e"])
        else:
            pick = st.sampled_from([5000, 1200, 1200.5, -3.5, 12, 0, "pro", "PRO PLAN", "n/a", "1200", "1e3", True, False])
        return cond(name, operator, draw(values_for(operator, pick)))
    name = "events." + draw(st.sampled_from(EVENT_NAMES))
    operator = draw(st.sampled_from(["exists", "not_exists", *COMPARISONS]))
    value = None if operator in ("exists", "not_exists") else draw(st.sampled_from([0, 1, 2, 3]))
    return cond(name, operator, value, window=draw(st.none() | st.sampled_from(WINDOWS)))


def criteria_trees(owner_ids: list[int]) -> st.SearchStrategy:
    def groups(children):
        # Mostly non-empty lists: an empty `any` is false and would make most trees select nobody.
        lists = st.one_of(st.lists(children, min_size=1, max_size=3), st.lists(children, min_size=1, max_size=2), st.just([]))
        keys = st.sampled_from([("all",), ("any",), ("none",), ("all", "any"), ("all", "none"), ("any", "none"), ("all", "any", "none")])
        return keys.flatmap(lambda chosen: st.fixed_dictionaries({key: lists for key in chosen}))

    return st.recursive(conditions(owner_ids), groups, max_leaves=6)


@pytest.fixture
def random_crm(workspace):
    owners = [UserFactory(), UserFactory()]
    build_random_leads(workspace, random.Random(20250601), owners, count=40)
    return workspace, [owner.pk for owner in owners], load_facts(workspace)


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_compiled_criteria_select_what_python_evaluation_selects(random_crm, data):
    workspace, owner_ids, facts = random_crm
    now = NOW + timedelta(hours=data.draw(st.sampled_from([0, 0, -13, 24 * 8]), label="shift hours"))
    # A few trees per example: more of the lead set is exercised for the same number of examples.
    for criteria in data.draw(st.lists(criteria_trees(owner_ids), min_size=3, max_size=3), label="criteria"):
        expected = {lead.id for lead in facts if not lead.deleted and group_holds(lead, criteria, now)}
        got = set(live_leads(workspace).filter(compile_criteria(criteria, now=now)).values_list("id", flat=True))
        assert got == expected, criteria
        normalized = validate_criteria(criteria)
        assert set(live_leads(workspace).filter(compile_criteria(normalized, now=now)).values_list("id", flat=True)) == expected


@pytest.mark.django_db
def test_the_random_leads_cover_what_the_property_needs(random_crm):
    """Guards the property test against a generator that silently stopped producing interesting leads."""
    _, _, facts = random_crm
    assert sum(lead.deleted for lead in facts) >= 2
    assert sum(lead.company is None for lead in facts) >= 3
    assert sum(bool(lead.events) for lead in facts) >= 20
    assert any(is_bot for lead in facts for _, _, is_bot in lead.events)
    assert sum(lead.times["lastSeenAt"] is None for lead in facts) >= 5
    assert sum("budget" in lead.custom for lead in facts) >= 10
