"""Scoring configuration: seed 000's objects load as written, everything round-trips, and errors name the field."""

import copy
import dataclasses
import json

import pytest

from scoring.config import (
    ROOT,
    Action,
    Band,
    Condition,
    ConfigError,
    EventCondition,
    Range,
    parse_model,
    parse_thresholds,
)
from scoring.presets import (
    DEFAULT_THRESHOLD_PRESET,
    SEED_000_MODEL,
    THRESHOLD_PRESETS,
    default_model,
    default_model_json,
    threshold_preset,
    threshold_preset_json,
)

# Seed 000's setThresholds({...}) exactly as written there, transcribed to JSON.
SEED_000_THRESHOLDS = {
    "stages": [
        {"stage": "cold", "minScore": 0, "maxScore": 19},
        {"stage": "warm", "minScore": 20, "maxScore": 49},
        {"stage": "hot", "minScore": 50, "maxScore": 74},
        {"stage": "mql", "minScore": 75, "maxScore": 89},
        {"stage": "sql", "minScore": 90, "maxScore": 100},
    ],
    "automation": {
        "mql": {
            "actions": [
                {"type": "notify", "recipients": ["sales-team@company.com"]},
                {"type": "slack", "channel": "#new-mqls"},
                {"type": "assign", "rule": "round_robin"},
            ]
        },
        "sql": {
            "actions": [
                {"type": "create_task", "assignee": "owner", "task": "Schedule discovery call"},
                {"type": "sync_crm", "priority": "high"},
            ]
        },
    },
}

# Every section and rule kind, in canonical form (what to_json writes).
EVERYTHING = {
    "maxScore": 150,
    "demographic": {
        "jobTitle": [{"match": "\\b(ceo|cto)\\b", "points": 20}, {"exists": True, "points": 1}],
        "companySize": [{"range": [500, None], "points": 20}, {"range": [None, 9], "points": -5}],
        "industry": [{"match": ["SaaS", "Software"], "points": 15}],
        "country": [{"match": ["US", "CA"], "points": 5}],
        "emailQuality": [{"kind": "business", "points": 10}, {"kind": "free", "points": 0}, {"kind": "disposable", "points": -15}],
        "phone": [{"valid": True, "points": 5}, {"valid": False, "points": -2}],
        "fields": [
            {"field": "custom.budget", "range": [10000, None], "points": 10},
            {"field": "custom.timeline", "match": "/^Q[12]/", "points": 5},
            {"field": "tags", "match": ["enterprise"], "points": 4.5},
            {"field": "company.website", "exists": False, "points": -3},
        ],
    },
    "behavioral": {
        "events": [{"name": "demo_requested", "points": 25}, {"name": "email_clicked", "points": 5, "maxOccurrences": 5, "window": "30d"}],
        "pageviews": [{"urlPattern": "/\\/pricing/", "points": 8, "maxOccurrences": 2}],
        "engagement": {
            "sessionDuration": [{"minutes": [5, None], "points": 5}],
            "pagesPerSession": [{"count": [3, 5], "points": 3}],
            "returnVisits": [{"count": [3, None], "points": 5}],
        },
    },
    "decay": {"enabled": True, "halfLife": 45, "minimumScore": 0, "excludeEvents": ["demo_requested"]},
    "negative": {
        "events": [{"name": "unsubscribed", "points": -20, "maxOccurrences": 1}, {"name": "bounced_email", "points": -10, "window": "90d"}],
        "inactivityDays": [{"days": 30, "points": -5}],
    },
    "boosts": [
        {"name": "Enterprise", "condition": {"field": "custom.plan", "match": ["enterprise"]}, "multiplier": 1.2},
        {"condition": {"event": "trial_started", "window": "14d"}, "bonus": 10},
        {"condition": {"field": "custom.seats", "range": [50, None]}, "bonus": 5},
        {"condition": {"field": "phone", "exists": True}, "multiplier": 1.1},
    ],
}


def errors_of(data, parse=parse_model) -> dict[str, str]:
    with pytest.raises(ConfigError) as raised:
        parse(data)
    return raised.value.errors


def with_change(base: dict, path: list, value) -> dict:
    """A deep copy of `base` with the item at `path` (keys and list indexes) set to `value`."""
    data = copy.deepcopy(base)
    target = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return data


# ---- seed 000 and the presets ----------------------------------------------------------------------------------------


def test_seed_000_model_loads_as_written_and_writes_back_unchanged():
    config = parse_model(SEED_000_MODEL)

    assert config.max_score == 100
    assert [rule.points for rule in config.demographic.job_title] == [20, 10, 5]
    assert config.demographic.company_size[0].condition.range == Range(500, None)
    assert config.demographic.industry[0].condition.values == ("Technology", "SaaS", "Software")
    assert [(rule.name, rule.max_occurrences) for rule in config.behavioral.events][:2] == [
        ("pricing_page_viewed", 3),
        ("demo_requested", None),
    ]
    assert config.decay.half_life_days == 30 and config.decay.minimum_score == 10
    assert config.decay.exclude_events == ("demo_requested", "trial_started")
    assert [(rule.days, rule.points) for rule in config.negative.inactivity] == [(30, -5), (60, -10), (90, -15)]
    assert config.to_json() == SEED_000_MODEL
    assert json.loads(json.dumps(config.to_json())) == SEED_000_MODEL  # plain JSON, nothing Python-only


def test_the_default_model_is_seed_000_and_its_json_is_a_copy():
    assert default_model() == parse_model(SEED_000_MODEL)
    copied = default_model_json()
    copied["maxScore"] = 5
    copied["demographic"]["jobTitle"].clear()
    assert SEED_000_MODEL["maxScore"] == 100 and len(SEED_000_MODEL["demographic"]["jobTitle"]) == 3


def test_a_config_using_every_rule_kind_round_trips():
    config = parse_model(EVERYTHING)

    assert config.to_json() == EVERYTHING
    assert parse_model(config.to_json()) == config
    assert isinstance(config.boosts[1].condition, EventCondition) and config.boosts[1].condition.window_days == 14
    assert config.boosts[0].label == "Enterprise" and config.boosts[2].label == "field custom.seats"
    assert config.behavioral.events[1].window_days == 30


def test_parsed_configs_are_frozen():
    config = parse_model(SEED_000_MODEL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_score = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.behavioral.events[0].points = 99
    assert isinstance(config.behavioral.events, tuple)


def test_seed_000_thresholds_load_as_written_with_their_automation_on_the_bands():
    thresholds = parse_thresholds(SEED_000_THRESHOLDS)

    assert [(band.stage, band.min_score, band.max_score) for band in thresholds.bands] == [
        ("cold", 0, 19),
        ("warm", 20, 49),
        ("hot", 50, 74),
        ("mql", 75, 89),
        ("sql", 90, 100),
    ]
    mql = thresholds.band("mql")
    assert [action.type for action in mql.actions] == ["notify", "slack", "assign"]
    assert mql.actions[0].param("recipients") == ("sales-team@company.com",)
    assert thresholds.band("sql").actions[0] == Action("create_task", (("task", "Schedule discovery call"), ("assignee", "owner")))
    # Written back per band, which reads back to the same thresholds.
    written = thresholds.to_json()
    assert "automation" not in written
    assert written["stages"][3]["actions"][1] == {"type": "slack", "channel": "#new-mqls"}
    assert parse_thresholds(written) == thresholds


@pytest.mark.parametrize("name", sorted(THRESHOLD_PRESETS))
def test_threshold_presets_parse_and_round_trip(name):
    thresholds = threshold_preset(name)
    assert thresholds.to_json() == THRESHOLD_PRESETS[name]
    assert threshold_preset_json(name) == THRESHOLD_PRESETS[name] and threshold_preset_json(name) is not THRESHOLD_PRESETS[name]


def test_preset_bands_as_the_seeds_give_them():
    seed000 = threshold_preset("seed000")
    assert DEFAULT_THRESHOLD_PRESET == "seed000"
    assert [band.stage for band in seed000.bands] == ["cold", "warm", "hot", "mql", "sql"]
    assert seed000.band("mql").lifecycle_stage == "mql" and seed000.band("sql").lifecycle_stage == "sql"
    assert seed000.band("hot").lifecycle_stage is None
    assert [(b.stage, b.min_score, b.max_score) for b in threshold_preset("three_tier").bands] == [
        ("cold", 0, 39),
        ("warm", 40, 69),
        ("hot", 70, None),
    ]
    assert [(b.stage, b.min_score, b.max_score) for b in threshold_preset("leadboxer").bands] == [
        ("cold", 0, 39),
        ("qualified", 40, 59),
        ("warm", 60, 79),
        ("hot", 80, 100),
    ]


# ---- regexes and ranges as JSON carries them ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "text", "matches"),
    [
        ("\\b(ceo|cto)\\b", "Acting CEO", True),  # a bare string is case-insensitive
        ("\\b(ceo|cto)\\b", "Directorate", False),
        ("/\\b(ceo|cto)\\b/i", "Acting CEO", True),
        ("/\\/Pricing/", "/pricing", False),  # a literal without i is case-sensitive, as in JavaScript
        ("/\\/pricing/", "https://acme.com/pricing?plan=team", True),
        ("/pricing", "/pricing/enterprise", True),  # not a literal (no closing slash): a plain pattern
        ("/^q[12]/gi", "Q1 2026", True),  # g changes nothing for a yes/no test
    ],
)
def test_regex_strings(source, text, matches):
    config = parse_model({"demographic": {"jobTitle": [{"match": source, "points": 1}]}})
    pattern = config.demographic.job_title[0].condition.pattern
    assert pattern.search(text) is matches
    assert pattern.source == source


def test_infinity_is_null_and_a_bare_json_infinity_is_accepted():
    from_null = parse_model({"demographic": {"companySize": [{"range": [500, None], "points": 20}]}})
    from_infinity = parse_model(json.loads('{"demographic": {"companySize": [{"range": [500, Infinity], "points": 20}]}}'))
    assert from_null == from_infinity
    assert from_infinity.to_json()["demographic"]["companySize"][0]["range"] == [500, None]


def test_defaults_when_sections_are_left_out():
    config = parse_model({})
    assert config.max_score == 100
    assert not config.decay.enabled and config.boosts == () and config.behavioral.events == ()
    assert config.to_json() == {"maxScore": 100}


# ---- errors name the field ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        (["behavioral", "events", 2, "points"], "ten", "behavioral.events[2].points", "Must be a number."),
        (["behavioral", "events", 2, "points"], True, "behavioral.events[2].points", "Must be a number."),
        (["behavioral", "events", 0, "points"], -5, "behavioral.events[0].points", "Must be at least 0."),
        (["behavioral", "events", 0, "maxOccurrences"], 0, "behavioral.events[0].maxOccurrences", "Must be at least 1."),
        (["behavioral", "events", 0, "maxOccurrences"], 2.5, "behavioral.events[0].maxOccurrences", "Must be a whole number."),
        (["behavioral", "events", 0, "window"], "30 days", "behavioral.events[0].window", 'Must be a number of days like "30d".'),
        (["behavioral", "events", 1, "name"], "pricing_page_viewed", "behavioral.events[1].name", "Repeats an earlier rule"),
        (["behavioral", "events", 0, "pointz"], 1, "behavioral.events[0].pointz", "Unknown field."),
        (["behavioral", "pageviews", 1, "urlPattern"], "/(/", "behavioral.pageviews[1].urlPattern", "Invalid regular expression"),
        (
            ["behavioral", "engagement", "sessionDuration", 0],
            {"count": [1, 2], "points": 1},
            "behavioral.engagement.sessionDuration[0].count",
            "Unknown field.",
        ),
        (["demographic", "jobTitle", 0, "match"], "(unclosed", "demographic.jobTitle[0].match", "Invalid regular expression"),
        (["demographic", "jobTitle", 0], {"points": 1}, "demographic.jobTitle[0]", "Give exactly one of range, match or exists."),
        (["demographic", "companySize", 0, "range"], [10, 5], "demographic.companySize[0].range", "min must not be greater than max."),
        (["demographic", "companySize", 0, "range"], [10], "demographic.companySize[0].range", "Must be [min, max]"),
        (["demographic", "companySize", 0, "range"], [None, "x"], "demographic.companySize[0].range[1]", "Must be a number."),
        (["demographic", "industry", 0, "match"], [], "demographic.industry[0].match", "Must be a non-empty list"),
        (["demographic", "fields"], [{"field": "shoe_size", "exists": True, "points": 1}], "demographic.fields[0].field", "Unknown field."),
        (["demographic", "emailQuality"], [{"kind": "gmail", "points": 1}], "demographic.emailQuality[0].kind", "Must be one of"),
        (["decay", "halfLife"], 0, "decay.halfLife", "Must be greater than 0."),
        (["decay", "minimumScore"], -1, "decay.minimumScore", "Must be at least 0."),
        (["decay", "excludeEvents"], "demo_requested", "decay.excludeEvents", "Must be a list."),
        (["negative", "events", 0, "points"], 20, "negative.events[0].points", "Must be at most 0."),
        (["negative", "inactivityDays", 2, "days"], 30, "negative.inactivityDays[2].days", "Repeats an earlier rule"),
        (["maxScore"], 0, "maxScore", "Must be at least 1."),
        (["surprise"], {}, "surprise", "Unknown field."),
    ],
)
def test_errors_name_the_field(path, value, field, message):
    errors = errors_of(with_change(SEED_000_MODEL, path, value))
    assert field in errors, errors
    assert errors[field].startswith(message)


def test_decay_enabled_needs_a_half_life():
    data = with_change(SEED_000_MODEL, ["decay"], {"enabled": True})
    assert errors_of(data) == {"decay.halfLife": "Required when decay is enabled."}
    assert parse_model(with_change(SEED_000_MODEL, ["decay"], {"enabled": False})).decay.enabled is False


@pytest.mark.parametrize(
    ("boost", "field", "message"),
    [
        (
            {"condition": {"event": "demo_requested"}, "multiplier": 1.5, "bonus": 5},
            "boosts[0]",
            "Give exactly one of multiplier or bonus.",
        ),
        ({"condition": {"event": "demo_requested"}}, "boosts[0]", "Give exactly one of multiplier or bonus."),
        ({"condition": {"event": "demo_requested"}, "multiplier": 0}, "boosts[0].multiplier", "Must be greater than 0."),
        ({"condition": {"event": "demo_requested", "window": "2w"}, "bonus": 5}, "boosts[0].condition.window", "Must be a number of days"),
        ({"condition": {"field": "custom.plan"}, "bonus": 5}, "boosts[0].condition", "Give exactly one of range, match or exists."),
        ({"condition": {"match": ["x"]}, "bonus": 5}, "boosts[0].condition.field", "This field is required."),
        ({"condition": {"field": "tags", "exists": "yes"}, "bonus": 5}, "boosts[0].condition.exists", "Must be true or false."),
    ],
)
def test_boost_errors_name_the_field(boost, field, message):
    errors = errors_of({"boosts": [boost]})
    assert errors[field].startswith(message), errors


def test_every_error_is_reported_at_once():
    data = with_change(SEED_000_MODEL, ["behavioral", "events", 2, "points"], "x")
    data["negative"]["events"][1]["points"] = 10
    data["demographic"]["jobTitle"][1]["match"] = "(("
    errors = errors_of(data)
    assert set(errors) == {"behavioral.events[2].points", "negative.events[1].points", "demographic.jobTitle[1].match"}


def test_config_error_is_a_value_error_naming_the_paths():
    with pytest.raises(ValueError, match=r"behavioral\.events\[2\]\.points: Must be a number\."):
        parse_model(with_change(SEED_000_MODEL, ["behavioral", "events", 2, "points"], None))


@pytest.mark.parametrize("data", [None, [], "maxScore: 100"])
def test_a_config_that_is_not_an_object(data):
    assert errors_of(data) == {ROOT: "Must be an object."}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda t: t["stages"][1].update(minScore=15), "stages[1].minScore", "Overlaps stage 'cold'."),
        (lambda t: t["stages"][2].update(stage="warm"), "stages[2].stage", "Repeats an earlier rule"),
        (lambda t: t["stages"][0].update(maxScore=-1), "stages[0].maxScore", "Must not be less than minScore."),
        (lambda t: t["stages"][0].update(lifecycleStage="hot"), "stages[0].lifecycleStage", "Must be one of"),
        (lambda t: t["automation"].update(vip={"actions": []}), "automation.vip", "No such stage."),
        (lambda t: t["automation"]["mql"]["actions"].append({"type": "fax"}), "automation.mql.actions[3].type", "Must be one of"),
        (lambda t: t["automation"]["mql"]["actions"][1].pop("channel"), "automation.mql.actions[1].channel", "This field is required."),
        (lambda t: t["automation"]["mql"]["actions"][0].update(cc="x"), "automation.mql.actions[0].cc", "Unknown field."),
        (lambda t: t["automation"]["sql"]["actions"][0].update(task=""), "automation.sql.actions[0].task", "Must be a non-empty string."),
        (lambda t: t.update(stages=[]), "stages", "Give at least one stage."),
        (lambda t: t.pop("stages"), "stages", "This field is required."),
    ],
)
def test_threshold_errors_name_the_field(change, field, message):
    data = copy.deepcopy(SEED_000_THRESHOLDS)
    change(data)
    errors = errors_of(data, parse_thresholds)
    assert errors[field].startswith(message), errors


def test_actions_given_both_per_band_and_in_automation_are_refused():
    data = copy.deepcopy(SEED_000_THRESHOLDS)
    data["stages"][3]["actions"] = [{"type": "tag", "tags": ["mql"]}]
    assert errors_of(data, parse_thresholds) == {"automation.mql": "This stage already lists its actions."}


def test_an_open_ended_top_band_and_gaps_are_allowed():
    thresholds = parse_thresholds({"stages": [{"stage": "hot", "minScore": 70}, {"stage": "cold", "minScore": 0, "maxScore": 39}]})
    assert thresholds.bands == (Band("cold", 0, 39), Band("hot", 70, None))


def test_conditions_compare_by_pattern_source():
    first = parse_model({"demographic": {"jobTitle": [{"match": "ceo", "points": 1}]}})
    second = parse_model({"demographic": {"jobTitle": [{"match": "ceo", "points": 1}]}})
    assert first == second
    assert first.demographic.job_title[0].condition == Condition("title", pattern=second.demographic.job_title[0].condition.pattern)
