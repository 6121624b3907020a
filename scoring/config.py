"""Scoring model and threshold configuration: parse, validate and serialise.

The accepted JSON is seed 000's ``scoring.configure({...})`` and ``setThresholds({...})`` objects transcribed to JSON:

- regular expressions are strings. A plain string (``"\\\\b(ceo|cto)\\\\b"``) is case-insensitive; the JavaScript literal form
  ``"/pattern/flags"`` is also accepted and then only its own flags apply (``"/\\\\/pricing/"`` is case-sensitive, as in JS);
- ``Infinity`` is ``null`` in ranges (``[500, null]``), which is what ``JSON.stringify`` produces. A bare ``Infinity`` that
  Python's ``json.loads`` turns into ``float("inf")`` is accepted too;
- ranges are inclusive at both ends; where two ranges share an end (``[5, null]`` then ``[2, 5]``) the first rule wins.

Beyond the seed, the model takes (every section and key optional unless noted; "rule" lists are ordered):

- ``demographic.country``: like ``industry``; any of jobTitle / companySize / industry / country rules takes exactly one
  of ``match`` (regex string or list of values), ``range`` ([min, max]) or ``exists`` (bool), plus ``points``;
- ``demographic.emailQuality``: ``[{"kind": "business" | "free" | "disposable", "points"}]``;
- ``demographic.phone``: ``[{"valid": bool, "points"}]``;
- ``demographic.fields``: ``[{"field": <core field or "custom.<key>">, "match" | "range" | "exists", "points"}]``;
- ``behavioral.events`` and ``behavioral.pageviews`` also take ``window: "<N>d"`` (and pageviews ``maxOccurrences``);
- ``negative.events``: ``[{"name", "points" <= 0, "maxOccurrences"?, "window"?}]``;
- ``boosts``: ``[{"name"?, "condition": <field rule without points> | {"event", "window"?}, "multiplier" | "bonus"}]``.

Thresholds: ``{"stages": [{"stage", "minScore", "maxScore"?: null for open-ended, "lifecycleStage"?, "actions"?}]}``
with actions ``{"type": "notify" | "slack" | "assign" | "create_task" | "tag" | "sync_crm", ...}`` (see _ACTION_PARAMS).

Invalid input raises :class:`ConfigError` listing every problem by dotted path (``"behavioral.events[2].points"``), so an API
can answer 400 naming each field. Unknown keys are errors, so a typo never silently scores nothing.

Parsed configurations are frozen dataclasses; ``to_json()`` gives back the canonical JSON (optional keys left out when unset),
and ``parse_model(config.to_json()) == config``.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

# Error key for problems with the whole object, as the API's exception handler spells it.
ROOT = "non_field_errors"

# The keys LeadFacts.fields carries for a lead, besides "custom.<key>" for custom fields.
CORE_FIELDS = frozenset(
    {
        "name",
        "first_name",
        "last_name",
        "email",
        "email_kind",
        "phone",
        "phone_valid",
        "phone_country",
        "title",
        "department",
        "country",
        "status",
        "lifecycle_stage",
        "source_type",
        "source_campaign",
        "source_medium",
        "source_referrer",
        "source_landing_url",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "tags",
        "company.name",
        "company.domain",
        "company.size",
        "company.industry",
        "company.website",
    }
)
CUSTOM_FIELD_PREFIX = "custom."

# Seed 000's demographic factor lists and the lead field each one tests.
DEMOGRAPHIC_LIST_FIELDS = {"jobTitle": "title", "companySize": "company.size", "industry": "company.industry", "country": "country"}

EMAIL_KINDS = ("business", "free", "disposable")

# Mirrors leads.models.LifecycleStage; repeated here so this module stays importable without Django.
LIFECYCLE_STAGES = ("visitor", "lead", "mql", "sql", "opportunity", "customer")

_WINDOW = re.compile(r"^([1-9]\d{0,4})d$")
_REGEX_LITERAL = re.compile(r"^/(.+)/([a-z]*)$", re.DOTALL)
# JS flags that mean something for a single test; g/y/u change nothing for a yes/no match and are accepted for copy-paste.
_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "g": 0, "y": 0, "u": 0}
_MAX_PATTERN_LENGTH = 500


class ConfigError(ValueError):
    """Invalid configuration. ``errors`` maps each offending dotted path to a message."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{path}: {message}" for path, message in self.errors.items()))


# --------------------------------------------------------------------------------------------------------------------------
# Configuration dataclasses
# --------------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """A regular expression as written in the configuration, with its compiled form."""

    source: str
    regex: re.Pattern[str] = field(compare=False, repr=False)

    def search(self, text: str) -> bool:
        return self.regex.search(text) is not None


@dataclass(frozen=True)
class Range:
    """Inclusive ``[low, high]``; ``None`` is an open end (JS ``Infinity``)."""

    low: float | None
    high: float | None

    def contains(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def to_json(self) -> list[float | None]:
        return [self.low, self.high]


@dataclass(frozen=True)
class Condition:
    """A test on one lead field; exactly one of ``range`` (Range), ``pattern``/``values`` (Match) or ``exists`` (Exist) is set."""

    field: str
    range: Range | None = None
    pattern: Pattern | None = None
    values: tuple[str, ...] | None = None
    exists: bool | None = None

    def to_json(self, *, with_field: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"field": self.field} if with_field else {}
        if self.range is not None:
            data["range"] = self.range.to_json()
        elif self.pattern is not None:
            data["match"] = self.pattern.source
        elif self.values is not None:
            data["match"] = list(self.values)
        else:
            data["exists"] = self.exists
        return data


@dataclass(frozen=True)
class FieldRule:
    condition: Condition
    points: float

    def to_json(self, *, with_field: bool = True) -> dict[str, Any]:
        return {**self.condition.to_json(with_field=with_field), "points": self.points}


@dataclass(frozen=True)
class EmailQualityRule:
    kind: str  # one of EMAIL_KINDS
    points: float

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "points": self.points}


@dataclass(frozen=True)
class PhoneRule:
    """``valid=True`` matches a valid phone; ``valid=False`` a phone that is present but invalid (no phone matches neither)."""

    valid: bool
    points: float

    def to_json(self) -> dict[str, Any]:
        return {"valid": self.valid, "points": self.points}


@dataclass(frozen=True)
class DemographicConfig:
    job_title: tuple[FieldRule, ...] = ()
    company_size: tuple[FieldRule, ...] = ()
    industry: tuple[FieldRule, ...] = ()
    country: tuple[FieldRule, ...] = ()
    email_quality: tuple[EmailQualityRule, ...] = ()
    phone: tuple[PhoneRule, ...] = ()
    fields: tuple[FieldRule, ...] = ()

    def factor_lists(self) -> tuple[tuple[str, tuple[FieldRule, ...]], ...]:
        """(factor name, rules) for seed 000's lists, in the order they are reported."""
        return (("jobTitle", self.job_title), ("companySize", self.company_size), ("industry", self.industry), ("country", self.country))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, rules in self.factor_lists():
            if rules:
                data[name] = [rule.to_json(with_field=False) for rule in rules]
        if self.email_quality:
            data["emailQuality"] = [rule.to_json() for rule in self.email_quality]
        if self.phone:
            data["phone"] = [rule.to_json() for rule in self.phone]
        if self.fields:
            data["fields"] = [rule.to_json() for rule in self.fields]
        return data


@dataclass(frozen=True)
class EventRule:
    """Points per occurrence of a named event, counting at most ``max_occurrences`` (the most recent), within ``window_days``."""

    name: str
    points: float
    max_occurrences: int | None = None
    window_days: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "points": self.points}
        _put_limits(data, self.max_occurrences, self.window_days)
        return data


@dataclass(frozen=True)
class PageviewRule:
    """Points per pageview whose URL matches, with the same counting options as EventRule."""

    url_pattern: Pattern
    points: float
    max_occurrences: int | None = None
    window_days: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"urlPattern": self.url_pattern.source, "points": self.points}
        _put_limits(data, self.max_occurrences, self.window_days)
        return data


@dataclass(frozen=True)
class EngagementRule:
    range: Range
    points: float


@dataclass(frozen=True)
class EngagementConfig:
    session_duration: tuple[EngagementRule, ...] = ()  # range in minutes
    pages_per_session: tuple[EngagementRule, ...] = ()  # range in pageviews
    return_visits: tuple[EngagementRule, ...] = ()  # range in sessions after the first

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, unit, rules in (
            ("sessionDuration", "minutes", self.session_duration),
            ("pagesPerSession", "count", self.pages_per_session),
            ("returnVisits", "count", self.return_visits),
        ):
            if rules:
                data[key] = [{unit: rule.range.to_json(), "points": rule.points} for rule in rules]
        return data


@dataclass(frozen=True)
class BehavioralConfig:
    events: tuple[EventRule, ...] = ()
    pageviews: tuple[PageviewRule, ...] = ()
    engagement: EngagementConfig = EngagementConfig()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.events:
            data["events"] = [rule.to_json() for rule in self.events]
        if self.pageviews:
            data["pageviews"] = [rule.to_json() for rule in self.pageviews]
        engagement = self.engagement.to_json()
        if engagement:
            data["engagement"] = engagement
        return data


@dataclass(frozen=True)
class DecayConfig:
    enabled: bool = False
    half_life_days: float | None = None  # required when enabled
    minimum_score: float = 0
    exclude_events: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"enabled": self.enabled}
        if self.half_life_days is not None:
            data["halfLife"] = self.half_life_days
        data["minimumScore"] = self.minimum_score
        data["excludeEvents"] = list(self.exclude_events)
        return data


@dataclass(frozen=True)
class InactivityRule:
    days: int
    points: float  # zero or less

    def to_json(self) -> dict[str, Any]:
        return {"days": self.days, "points": self.points}


@dataclass(frozen=True)
class NegativeConfig:
    events: tuple[EventRule, ...] = ()  # points zero or less
    inactivity: tuple[InactivityRule, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.events:
            data["events"] = [rule.to_json() for rule in self.events]
        if self.inactivity:
            data["inactivityDays"] = [rule.to_json() for rule in self.inactivity]
        return data


@dataclass(frozen=True)
class EventCondition:
    """Holds when the lead has at least one ``event`` (within ``window_days`` before the scoring instant, when given)."""

    event: str
    window_days: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"event": self.event}
        _put_limits(data, None, self.window_days)
        return data


@dataclass(frozen=True)
class Boost:
    """Exactly one of ``multiplier`` and ``bonus`` is set."""

    condition: Condition | EventCondition
    multiplier: float | None = None
    bonus: float | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        """The factor name shown in a breakdown."""
        if self.name:
            return self.name
        if isinstance(self.condition, EventCondition):
            return f"event {self.condition.event}"
        return f"field {self.condition.field}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name} if self.name else {}
        data["condition"] = self.condition.to_json()
        if self.multiplier is not None:
            data["multiplier"] = self.multiplier
        else:
            data["bonus"] = self.bonus
        return data


@dataclass(frozen=True)
class ScoringModelConfig:
    max_score: int = 100
    demographic: DemographicConfig = DemographicConfig()
    behavioral: BehavioralConfig = BehavioralConfig()
    decay: DecayConfig = DecayConfig()
    negative: NegativeConfig = NegativeConfig()
    boosts: tuple[Boost, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"maxScore": self.max_score}
        for key, section in (("demographic", self.demographic), ("behavioral", self.behavioral)):
            section_json = section.to_json()
            if section_json:
                data[key] = section_json
        if self.decay != DecayConfig():
            data["decay"] = self.decay.to_json()
        negative = self.negative.to_json()
        if negative:
            data["negative"] = negative
        if self.boosts:
            data["boosts"] = [boost.to_json() for boost in self.boosts]
        return data


@dataclass(frozen=True)
class Action:
    """A band action; ``params`` are its other keys (lists stored as tuples so the dataclass stays immutable)."""

    type: str
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **{key: list(value) if isinstance(value, tuple) else value for key, value in self.params}}


@dataclass(frozen=True)
class Band:
    """A score band (seed 000's "stage"): ``min_score <= score <= max_score``; ``max_score`` None is open-ended."""

    stage: str
    min_score: float
    max_score: float | None = None
    lifecycle_stage: str | None = None
    actions: tuple[Action, ...] = ()

    def contains(self, score: float) -> bool:
        return score >= self.min_score and (self.max_score is None or score <= self.max_score)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"stage": self.stage, "minScore": self.min_score, "maxScore": self.max_score}
        if self.lifecycle_stage:
            data["lifecycleStage"] = self.lifecycle_stage
        if self.actions:
            data["actions"] = [action.to_json() for action in self.actions]
        return data


@dataclass(frozen=True)
class Thresholds:
    bands: tuple[Band, ...]  # ascending by min_score, not overlapping

    def band(self, stage: str) -> Band | None:
        return next((band for band in self.bands if band.stage == stage), None)

    def to_json(self) -> dict[str, Any]:
        return {"stages": [band.to_json() for band in self.bands]}


def _put_limits(data: dict[str, Any], max_occurrences: int | None, window_days: int | None) -> None:
    if max_occurrences is not None:
        data["maxOccurrences"] = max_occurrences
    if window_days is not None:
        data["window"] = f"{window_days}d"


# --------------------------------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------------------------------


def parse_model(data: Any) -> ScoringModelConfig:
    """Validates a scoring model (seed 000's ``scoring.configure`` object) and returns it parsed; raises ConfigError."""
    parser = _Parser()
    config = parser.model(data)
    if parser.errors or config is None:
        raise ConfigError(parser.errors or {ROOT: "Invalid configuration."})
    return config


def parse_thresholds(data: Any) -> Thresholds:
    """Validates thresholds (seed 000's ``setThresholds`` object) and returns them parsed; raises ConfigError.

    Actions may be given per band (``actions``) or, as in seed 000, under ``automation.<stage>.actions``; both end up on the
    band, and ``to_json()`` writes them per band.
    """
    parser = _Parser()
    thresholds = parser.thresholds(data)
    if parser.errors or thresholds is None:
        raise ConfigError(parser.errors or {ROOT: "Invalid configuration."})
    return thresholds


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _item(path: str, index: int) -> str:
    return f"{path}[{index}]"


# Each band action's own keys: name -> (kind, required). Kinds: "text" a non-empty string, "texts" a non-empty list of them.
_ACTION_PARAMS: dict[str, dict[str, tuple[str, bool]]] = {
    "notify": {"recipients": ("texts", True), "message": ("text", False)},
    "slack": {"channel": ("text", True), "message": ("text", False), "webhookUrl": ("text", False)},
    "assign": {"rule": ("text", False), "assignee": ("text", False)},
    "create_task": {"task": ("text", True), "assignee": ("text", False), "dueIn": ("text", False)},
    "tag": {"tags": ("texts", True)},
    "sync_crm": {"priority": ("text", False)},
}

_T = TypeVar("_T")


class _Parser:
    """Walks the JSON collecting every error by path; each method returns None where its part of the input was invalid."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def fail(self, path: str, message: str) -> None:
        # The first problem found at a path is the one worth reporting; later ones usually follow from it.
        self.errors.setdefault(path or ROOT, message)

    # ---- generic shapes ----------------------------------------------------------------------------------------------

    def mapping(self, value: Any, path: str, allowed: Iterable[str], required: Iterable[str] = ()) -> Mapping[str, Any] | None:
        """The object if it is one with every required key; unknown keys are reported but do not void the object."""
        if not isinstance(value, Mapping):
            self.fail(path, "Must be an object.")
            return None
        allowed = set(allowed)
        for key in value:
            if key not in allowed:
                self.fail(_at(path, str(key)), "Unknown field.")
        missing = [key for key in required if key not in value]
        for key in missing:
            self.fail(_at(path, key), "This field is required.")
        return None if missing else value

    def sequence(self, value: Any, path: str) -> list[Any] | None:
        if not isinstance(value, list | tuple):
            self.fail(path, "Must be a list.")
            return None
        return list(value)

    def number(self, value: Any, path: str, *, minimum: float | None = None, maximum: float | None = None) -> float | None:
        # bool is an int in Python, but `true` is not a number in a config.
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or math.isinf(value):
            self.fail(path, "Must be a number.")
            return None
        if minimum is not None and value < minimum:
            self.fail(path, f"Must be at least {minimum}.")
            return None
        if maximum is not None and value > maximum:
            self.fail(path, f"Must be at most {maximum}.")
            return None
        return value

    def positive_number(self, value: Any, path: str) -> float | None:
        number = self.number(value, path)
        if number is not None and number <= 0:
            self.fail(path, "Must be greater than 0.")
            return None
        return number

    def whole_number(self, value: Any, path: str, *, minimum: int) -> int | None:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, "Must be a whole number.")
            return None
        if value < minimum:
            self.fail(path, f"Must be at least {minimum}.")
            return None
        return value

    def boolean(self, value: Any, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.fail(path, "Must be true or false.")
            return None
        return value

    def text(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, "Must be a non-empty string.")
            return None
        return value

    def texts(self, value: Any, path: str) -> tuple[str, ...] | None:
        items = self.sequence(value, path)
        if items is None:
            return None
        if not items or not all(isinstance(item, str) and item.strip() for item in items):
            self.fail(path, "Must be a non-empty list of non-empty strings.")
            return None
        return tuple(items)

    def pattern(self, value: Any, path: str) -> Pattern | None:
        source = self.text(value, path)
        if source is None:
            return None
        if len(source) > _MAX_PATTERN_LENGTH:
            self.fail(path, f"Must be at most {_MAX_PATTERN_LENGTH} characters.")
            return None
        literal = _REGEX_LITERAL.match(source)
        if literal and all(flag in _REGEX_FLAGS for flag in literal.group(2)):
            expression, flags = literal.group(1), 0
            for flag in literal.group(2):
                flags |= _REGEX_FLAGS[flag]
        else:
            # Seed 000's title patterns are all /…/i: a bare string gets the same case-insensitive default.
            expression, flags = source, re.IGNORECASE
        try:
            return Pattern(source, re.compile(expression, flags))
        except re.error as error:
            self.fail(path, f"Invalid regular expression: {error}.")
            return None

    def value_range(self, value: Any, path: str) -> Range | None:
        items = self.sequence(value, path)
        if items is None:
            return None
        if len(items) != 2:
            self.fail(path, "Must be [min, max]; use null for no bound.")
            return None
        # An open end is null, or the ±inf that Python's json.loads makes of a bare Infinity; all are stored as None.
        bounds: list[float | None] = []
        for index, (bound, open_end) in enumerate(zip(items, (-math.inf, math.inf), strict=True)):
            if bound is None or (isinstance(bound, float) and bound == open_end):
                bounds.append(None)
                continue
            number = self.number(bound, _item(path, index))
            if number is None:
                return None
            bounds.append(number)
        low, high = bounds
        if low is not None and high is not None and low > high:
            self.fail(path, "min must not be greater than max.")
            return None
        return Range(low, high)

    def window(self, value: Any, path: str) -> int | None:
        match = _WINDOW.match(value) if isinstance(value, str) else None
        if match is None:
            self.fail(path, 'Must be a number of days like "30d".')
            return None
        return int(match.group(1))

    def field_name(self, value: Any, path: str) -> str | None:
        name = self.text(value, path)
        if name is None:
            return None
        if name not in CORE_FIELDS and not (name.startswith(CUSTOM_FIELD_PREFIX) and len(name) > len(CUSTOM_FIELD_PREFIX)):
            self.fail(path, "Unknown field.")
            return None
        return name

    def condition(self, data: Mapping[str, Any], path: str, field_name: str) -> Condition | None:
        """Reads exactly one of range / match / exists from ``data`` (whose other keys the caller checks)."""
        given = [key for key in ("range", "match", "exists") if key in data]
        if len(given) != 1:
            self.fail(path, "Give exactly one of range, match or exists.")
            return None
        key = given[0]
        if key == "range":
            value_range = self.value_range(data["range"], _at(path, "range"))
            return None if value_range is None else Condition(field_name, range=value_range)
        if key == "exists":
            exists = self.boolean(data["exists"], _at(path, "exists"))
            return None if exists is None else Condition(field_name, exists=exists)
        match = data["match"]
        if isinstance(match, list | tuple):
            values = self.texts(match, _at(path, "match"))
            return None if values is None else Condition(field_name, values=values)
        pattern = self.pattern(match, _at(path, "match"))
        return None if pattern is None else Condition(field_name, pattern=pattern)

    def rules(self, value: Any, path: str, parse_one: Callable[[Any, str], _T | None]) -> tuple[_T, ...] | None:
        items = self.sequence(value, path)
        if items is None:
            return None
        parsed = [parse_one(item, _item(path, index)) for index, item in enumerate(items)]
        if any(rule is None for rule in parsed):
            return None
        return tuple(rule for rule in parsed if rule is not None)

    def unique(self, rules: tuple[Any, ...] | None, key: Callable[[Any], Any], path: str, key_name: str) -> None:
        """Flags a repeated key: with first-match-wins the later rule could never apply."""
        seen = set()
        for index, rule in enumerate(rules or ()):
            if key(rule) in seen:
                self.fail(_at(_item(path, index), key_name), "Repeats an earlier rule, which would always win.")
            seen.add(key(rule))

    # ---- scoring model -----------------------------------------------------------------------------------------------

    def model(self, value: Any) -> ScoringModelConfig | None:
        data = self.mapping(value, "", ("maxScore", "demographic", "behavioral", "decay", "negative", "boosts"))
        if data is None:
            return None
        max_score = self.whole_number(data.get("maxScore", 100), "maxScore", minimum=1)
        demographic = self.demographic(data["demographic"], "demographic") if "demographic" in data else DemographicConfig()
        behavioral = self.behavioral(data["behavioral"], "behavioral") if "behavioral" in data else BehavioralConfig()
        decay = self.decay(data["decay"], "decay") if "decay" in data else DecayConfig()
        negative = self.negative(data["negative"], "negative") if "negative" in data else NegativeConfig()
        boosts = self.rules(data["boosts"], "boosts", self.boost) if "boosts" in data else ()
        if max_score is None or demographic is None or behavioral is None or decay is None or negative is None or boosts is None:
            return None
        return ScoringModelConfig(max_score, demographic, behavioral, decay, negative, boosts)

    def demographic(self, value: Any, path: str) -> DemographicConfig | None:
        data = self.mapping(value, path, (*DEMOGRAPHIC_LIST_FIELDS, "emailQuality", "phone", "fields"))
        if data is None:
            return None
        lists: dict[str, tuple[FieldRule, ...] | None] = {}
        for key, field_name in DEMOGRAPHIC_LIST_FIELDS.items():
            lists[key] = ()
            if key in data:
                lists[key] = self.rules(data[key], _at(path, key), functools.partial(self.list_rule, field_name=field_name))
        email = self.rules(data["emailQuality"], _at(path, "emailQuality"), self.email_rule) if "emailQuality" in data else ()
        self.unique(email, lambda rule: rule.kind, _at(path, "emailQuality"), "kind")
        phone = self.rules(data["phone"], _at(path, "phone"), self.phone_rule) if "phone" in data else ()
        self.unique(phone, lambda rule: rule.valid, _at(path, "phone"), "valid")
        fields = self.rules(data["fields"], _at(path, "fields"), self.field_rule) if "fields" in data else ()
        job_title, company_size, industry, country = (lists[key] for key in DEMOGRAPHIC_LIST_FIELDS)
        if job_title is None or company_size is None or industry is None or country is None:
            return None
        if email is None or phone is None or fields is None:
            return None
        return DemographicConfig(job_title, company_size, industry, country, email, phone, fields)

    def list_rule(self, value: Any, path: str, field_name: str) -> FieldRule | None:
        """A rule of seed 000's jobTitle / companySize / industry (or country) lists: the field is implied by the list."""
        data = self.mapping(value, path, ("match", "range", "exists", "points"), required=("points",))
        if data is None:
            return None
        condition = self.condition(data, path, field_name)
        points = self.number(data["points"], _at(path, "points"))
        return None if condition is None or points is None else FieldRule(condition, points)

    def field_rule(self, value: Any, path: str) -> FieldRule | None:
        data = self.mapping(value, path, ("field", "match", "range", "exists", "points"), required=("field", "points"))
        if data is None:
            return None
        field_name = self.field_name(data["field"], _at(path, "field"))
        condition = self.condition(data, path, field_name) if field_name else None
        points = self.number(data["points"], _at(path, "points"))
        return None if condition is None or points is None else FieldRule(condition, points)

    def email_rule(self, value: Any, path: str) -> EmailQualityRule | None:
        data = self.mapping(value, path, ("kind", "points"), required=("kind", "points"))
        if data is None:
            return None
        kind = data["kind"]
        if kind not in EMAIL_KINDS:
            self.fail(_at(path, "kind"), f"Must be one of {', '.join(EMAIL_KINDS)}.")
        points = self.number(data["points"], _at(path, "points"))
        return None if kind not in EMAIL_KINDS or points is None else EmailQualityRule(kind, points)

    def phone_rule(self, value: Any, path: str) -> PhoneRule | None:
        data = self.mapping(value, path, ("valid", "points"), required=("valid", "points"))
        if data is None:
            return None
        valid = self.boolean(data["valid"], _at(path, "valid"))
        points = self.number(data["points"], _at(path, "points"))
        return None if valid is None or points is None else PhoneRule(valid, points)

    def behavioral(self, value: Any, path: str) -> BehavioralConfig | None:
        data = self.mapping(value, path, ("events", "pageviews", "engagement"))
        if data is None:
            return None
        events = self.rules(data["events"], _at(path, "events"), self.positive_event) if "events" in data else ()
        self.unique(events, lambda rule: rule.name, _at(path, "events"), "name")
        pageviews = self.rules(data["pageviews"], _at(path, "pageviews"), self.pageview_rule) if "pageviews" in data else ()
        engagement = self.engagement(data["engagement"], _at(path, "engagement")) if "engagement" in data else EngagementConfig()
        if events is None or pageviews is None or engagement is None:
            return None
        return BehavioralConfig(events, pageviews, engagement)

    def positive_event(self, value: Any, path: str) -> EventRule | None:
        return self.event_rule(value, path, negative=False)

    def negative_event(self, value: Any, path: str) -> EventRule | None:
        return self.event_rule(value, path, negative=True)

    def event_rule(self, value: Any, path: str, *, negative: bool) -> EventRule | None:
        data = self.mapping(value, path, ("name", "points", "maxOccurrences", "window"), required=("name", "points"))
        if data is None:
            return None
        name = self.text(data["name"], _at(path, "name"))
        # Penalties live under `negative` and rewards under `behavioral`, so decay (which shrinks rewards) never meets a sign flip.
        if negative:
            points = self.number(data["points"], _at(path, "points"), maximum=0)
        else:
            points = self.number(data["points"], _at(path, "points"), minimum=0)
        limits = self.limits(data, path)
        if name is None or points is None or limits is None:
            return None
        return EventRule(name, points, *limits)

    def limits(self, data: Mapping[str, Any], path: str) -> tuple[int | None, int | None] | None:
        """(maxOccurrences, window in days), each None when not given; None when either is invalid."""
        max_occurrences = window_days = None
        if "maxOccurrences" in data:
            max_occurrences = self.whole_number(data["maxOccurrences"], _at(path, "maxOccurrences"), minimum=1)
        if "window" in data:
            window_days = self.window(data["window"], _at(path, "window"))
        if ("maxOccurrences" in data and max_occurrences is None) or ("window" in data and window_days is None):
            return None
        return max_occurrences, window_days

    def pageview_rule(self, value: Any, path: str) -> PageviewRule | None:
        data = self.mapping(value, path, ("urlPattern", "points", "maxOccurrences", "window"), required=("urlPattern", "points"))
        if data is None:
            return None
        pattern = self.pattern(data["urlPattern"], _at(path, "urlPattern"))
        points = self.number(data["points"], _at(path, "points"), minimum=0)
        limits = self.limits(data, path)
        if pattern is None or points is None or limits is None:
            return None
        return PageviewRule(pattern, points, *limits)

    def engagement(self, value: Any, path: str) -> EngagementConfig | None:
        data = self.mapping(value, path, ("sessionDuration", "pagesPerSession", "returnVisits"))
        if data is None:
            return None
        parsed: list[tuple[EngagementRule, ...] | None] = []
        for key, unit in (("sessionDuration", "minutes"), ("pagesPerSession", "count"), ("returnVisits", "count")):
            rules: tuple[EngagementRule, ...] | None = ()
            if key in data:
                rules = self.rules(data[key], _at(path, key), functools.partial(self.engagement_rule, unit=unit))
            parsed.append(rules)
        session_duration, pages_per_session, return_visits = parsed
        if session_duration is None or pages_per_session is None or return_visits is None:
            return None
        return EngagementConfig(session_duration, pages_per_session, return_visits)

    def engagement_rule(self, value: Any, path: str, unit: str) -> EngagementRule | None:
        data = self.mapping(value, path, (unit, "points"), required=(unit, "points"))
        if data is None:
            return None
        value_range = self.value_range(data[unit], _at(path, unit))
        points = self.number(data["points"], _at(path, "points"), minimum=0)
        return None if value_range is None or points is None else EngagementRule(value_range, points)

    def decay(self, value: Any, path: str) -> DecayConfig | None:
        data = self.mapping(value, path, ("enabled", "halfLife", "minimumScore", "excludeEvents"), required=("enabled",))
        if data is None:
            return None
        enabled = self.boolean(data["enabled"], _at(path, "enabled"))
        half_life = self.positive_number(data["halfLife"], _at(path, "halfLife")) if "halfLife" in data else None
        if enabled and "halfLife" not in data:
            self.fail(_at(path, "halfLife"), "Required when decay is enabled.")
        minimum = self.number(data.get("minimumScore", 0), _at(path, "minimumScore"), minimum=0)
        excluded: tuple[str, ...] | None = ()
        if "excludeEvents" in data:
            items = self.sequence(data["excludeEvents"], _at(path, "excludeEvents"))
            excluded = None
            if items is not None and all(isinstance(item, str) and item.strip() for item in items):
                excluded = tuple(items)
            elif items is not None:
                self.fail(_at(path, "excludeEvents"), "Must be a list of event names.")
        if enabled is None or minimum is None or excluded is None or (("halfLife" in data or enabled) and half_life is None):
            return None
        return DecayConfig(enabled, half_life, minimum, excluded)

    def negative(self, value: Any, path: str) -> NegativeConfig | None:
        data = self.mapping(value, path, ("events", "inactivityDays"))
        if data is None:
            return None
        events = self.rules(data["events"], _at(path, "events"), self.negative_event) if "events" in data else ()
        self.unique(events, lambda rule: rule.name, _at(path, "events"), "name")
        inactivity = ()
        if "inactivityDays" in data:
            inactivity = self.rules(data["inactivityDays"], _at(path, "inactivityDays"), self.inactivity_rule)
        self.unique(inactivity, lambda rule: rule.days, _at(path, "inactivityDays"), "days")
        if events is None or inactivity is None:
            return None
        return NegativeConfig(events, inactivity)

    def inactivity_rule(self, value: Any, path: str) -> InactivityRule | None:
        data = self.mapping(value, path, ("days", "points"), required=("days", "points"))
        if data is None:
            return None
        days = self.whole_number(data["days"], _at(path, "days"), minimum=1)
        points = self.number(data["points"], _at(path, "points"), maximum=0)
        return None if days is None or points is None else InactivityRule(days, points)

    def boost(self, value: Any, path: str) -> Boost | None:
        data = self.mapping(value, path, ("name", "condition", "multiplier", "bonus"), required=("condition",))
        if data is None:
            return None
        name = self.text(data["name"], _at(path, "name")) if "name" in data else None
        condition = self.boost_condition(data["condition"], _at(path, "condition"))
        if ("multiplier" in data) == ("bonus" in data):
            self.fail(path, "Give exactly one of multiplier or bonus.")
            return None
        multiplier = self.positive_number(data["multiplier"], _at(path, "multiplier")) if "multiplier" in data else None
        bonus = self.number(data["bonus"], _at(path, "bonus")) if "bonus" in data else None
        if condition is None or (multiplier is None and bonus is None) or ("name" in data and name is None):
            return None
        return Boost(condition, multiplier, bonus, name)

    def boost_condition(self, value: Any, path: str) -> Condition | EventCondition | None:
        """``{"event": name, "window"?: "30d"}`` (the lead did it), or a field rule without points."""
        if isinstance(value, Mapping) and "event" in value:
            data = self.mapping(value, path, ("event", "window"))
            if data is None:
                return None
            event = self.text(data["event"], _at(path, "event"))
            window_days = self.window(data["window"], _at(path, "window")) if "window" in data else None
            if event is None or ("window" in data and window_days is None):
                return None
            return EventCondition(event, window_days)
        data = self.mapping(value, path, ("field", "match", "range", "exists"), required=("field",))
        if data is None:
            return None
        field_name = self.field_name(data["field"], _at(path, "field"))
        return self.condition(data, path, field_name) if field_name else None

    # ---- thresholds --------------------------------------------------------------------------------------------------

    def thresholds(self, value: Any) -> Thresholds | None:
        data = self.mapping(value, "", ("stages", "automation"), required=("stages",))
        if data is None:
            return None
        bands = self.rules(data["stages"], "stages", self.band)
        if bands is None:
            return None
        if not bands:
            self.fail("stages", "Give at least one stage.")
            return None
        self.unique(bands, lambda band: band.stage, "stages", "stage")
        if "automation" in data:
            bands = self.automation(data["automation"], "automation", bands)
        if bands is None:
            return None
        # Overlapping bands would make band_for ambiguous; gaps are allowed (a score there has no band).
        ordered = sorted(enumerate(bands), key=lambda pair: pair[1].min_score)
        for (_, lower), (index, upper) in itertools.pairwise(ordered):
            if lower.max_score is None or upper.min_score <= lower.max_score:
                self.fail(_at(_item("stages", index), "minScore"), f"Overlaps stage {lower.stage!r}.")
        if self.errors:
            return None
        return Thresholds(tuple(band for _, band in ordered))

    def band(self, value: Any, path: str) -> Band | None:
        data = self.mapping(value, path, ("stage", "minScore", "maxScore", "lifecycleStage", "actions"), required=("stage", "minScore"))
        if data is None:
            return None
        stage = self.text(data["stage"], _at(path, "stage"))
        low = self.number(data["minScore"], _at(path, "minScore"), minimum=0)
        high_given = data.get("maxScore") is not None
        high = self.number(data["maxScore"], _at(path, "maxScore")) if high_given else None
        if low is not None and high is not None and high < low:
            self.fail(_at(path, "maxScore"), "Must not be less than minScore.")
            return None
        lifecycle = data.get("lifecycleStage")
        if lifecycle is not None and lifecycle not in LIFECYCLE_STAGES:
            self.fail(_at(path, "lifecycleStage"), f"Must be one of {', '.join(LIFECYCLE_STAGES)}.")
        actions = self.rules(data["actions"], _at(path, "actions"), self.action) if "actions" in data else ()
        if stage is None or low is None or (high_given and high is None) or actions is None:
            return None
        if lifecycle is not None and lifecycle not in LIFECYCLE_STAGES:
            return None
        return Band(stage, low, high, lifecycle, actions)

    def automation(self, value: Any, path: str, bands: tuple[Band, ...]) -> tuple[Band, ...] | None:
        """Seed 000's ``automation: {<stage>: {actions: [...]}}``, moved onto the bands."""
        if not isinstance(value, Mapping):
            self.fail(path, "Must be an object.")
            return None
        by_stage = {band.stage: band for band in bands}
        for stage, entry in value.items():
            entry_path = _at(path, str(stage))
            band = by_stage.get(stage)
            if band is None:
                self.fail(entry_path, "No such stage.")
                continue
            if band.actions:
                self.fail(entry_path, "This stage already lists its actions.")
                continue
            body = self.mapping(entry, entry_path, ("actions",), required=("actions",))
            actions = self.rules(body["actions"], _at(entry_path, "actions"), self.action) if body is not None else None
            if actions is not None:
                by_stage[stage] = replace(band, actions=actions)
        return tuple(by_stage[band.stage] for band in bands)

    def action(self, value: Any, path: str) -> Action | None:
        if not isinstance(value, Mapping):
            self.fail(path, "Must be an object.")
            return None
        kind = value.get("type")
        if kind not in _ACTION_PARAMS:
            self.fail(_at(path, "type"), f"Must be one of {', '.join(_ACTION_PARAMS)}.")
            return None
        spec = _ACTION_PARAMS[kind]
        data = self.mapping(value, path, ("type", *spec), required=[key for key, (_, required) in spec.items() if required])
        if data is None:
            return None
        params: list[tuple[str, Any]] = []
        for key, (param_kind, _) in spec.items():
            if key in data:
                parse = self.texts if param_kind == "texts" else self.text
                params.append((key, parse(data[key], _at(path, key))))
        if any(parsed is None for _, parsed in params):
            return None
        return Action(kind, tuple(params))
