"""The scoring engine: ``score(facts, model, at)`` is a pure function of a lead's facts, a model and an instant.

No database, no clock: the caller gathers the facts and says when. Evaluating at an instant ignores every event and session
after it, so ``?at=<past>`` shows the score as it was (given the same model) and ``?at=<future>`` the score that decay and
inactivity will leave if nothing else happens.

How a score is built (all rules in the order the configuration lists them):

Demographic (who they are; never decays)
    - jobTitle, companySize, industry, country: first matching rule of each list wins, one row per list.
    - emailQuality: the rule for the lead's ``email_kind``. phone: ``valid: true`` for a phone with ``phone_valid`` true,
      ``valid: false`` for a phone that is present without it; no phone matches neither.
    - fields: rules grouped by field; within one field the first matching rule wins, different fields all count.
    - Match: a regex is searched for in the text; a list matches a value equal to an item, ignoring case and surrounding
      spaces. Range: inclusive; a string value is read as its first number ("50-200" -> 50, "1,000+" -> 1000). Exist: the
      value is present (not None, "", or an empty list). A list value (tags) matches when any item matches.

Behavioural (what they do; decays)
    - events: each occurrence of the named event is worth the rule's points. ``window: "Nd"`` counts only occurrences at most
      N days before ``at``; ``maxOccurrences`` keeps the most recent ones. No maxOccurrences means every occurrence counts.
    - pageviews: events named "pageview" whose url matches; each pageview counts for the first rule it matches, with the same
      window and maxOccurrences options.
    - engagement: sessionDuration (minutes) and pagesPerSession each score the one session worth most at ``at`` (its first
      matching range, decayed from its start); returnVisits scores the number of sessions after the first, dated at the
      latest session, so a lead who keeps coming back keeps those points fresh.

Decay (``decay.enabled``)
    Each behavioural contribution is worth ``points * 0.5 ** (age_days / halfLife)``, age measured from the event (session
    start) to ``at``. Events named in ``excludeEvents`` never decay. Decay may not take demographic + behavioural below
    ``min(minimumScore, demographic + behavioural undecayed)``: a lead keeps at least the minimum, and a lead that never
    reached it is not decayed at all (so more activity can never mean a lower floor). Negative rules can still go below it.

Negative (never decay)
    - events: like behavioural events (window, maxOccurrences), with points of zero or less.
    - inactivityDays: days since the latest of last_activity_at, any event and any session start (each only if not after
      ``at``; created_at when there is none). The rule with the largest ``days`` not above that applies; one rule only.

Boosts (after everything else)
    The subtotal S = demographic + behavioural + decay + negative, taken as 0 when below. Each boost whose condition holds
    adds ``(multiplier - 1) * S`` or its ``bonus``; multipliers are all applied to the same S, so they add up rather than
    compound and their order does not matter.

Rounding and the total
    Row points are shown as configured (undecayed). Each part is an integer: demographic and behavioural totals are their row
    sums rounded half up (``floor(x + 0.5)``, so 2.5 -> 3 and -2.5 -> -2) after rounding to 9 decimals to absorb float
    noise; decay is ``round(behavioural decayed) - behavioural total``; negative and each boost line are rounded the same
    way. Their sum is then capped at maxScore and floored at 0 by a signed ``cap`` line, so
    ``demographic + behavioral + decay + negative + boosts + cap == totalScore`` always holds exactly.

Bands
    ``band_for(score, thresholds)`` is the band containing the score; ``crossed(previous, new)`` is the new band when the
    stage changed (up or down), else None, so re-scoring inside one band reports nothing.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from scoring.config import Band, Condition, DecayConfig, EventCondition, Range, ScoringModelConfig, Thresholds

PAGEVIEW = "pageview"
_SECONDS_PER_DAY = 86400
_LEADING_NUMBER = re.compile(r"^\s*[$€£]?\s*([-+]?\d[\d,]*(?:\.\d+)?)")
# isinstance with a tuple of types: the same test as `list | tuple | …`, but quicker in the per-lead hot path.
_COLLECTIONS = (list, tuple, set, frozenset)
_CONTAINERS = (list, tuple, set, frozenset, dict)
_by_event_time = attrgetter("at")
_by_session_start = attrgetter("started_at")


# --------------------------------------------------------------------------------------------------------------------------
# Facts
# --------------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFact:
    name: str
    at: datetime
    url: str = ""  # set for pageviews
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionFact:
    started_at: datetime
    duration_seconds: float
    pageviews: int


@dataclass(frozen=True)
class LeadFacts:
    """What the engine knows about a lead. All datetimes timezone-aware.

    ``fields`` keys are scoring.config.CORE_FIELDS ("title", "country", "email", "email_kind", "phone", "phone_valid",
    "company.size", "company.industry", "tags", …) and "custom.<key>" for custom fields; a missing key is an absent value.
    """

    fields: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    events: Sequence[EventFact] = ()
    sessions: Sequence[SessionFact] = ()
    last_activity_at: datetime | None = None


# --------------------------------------------------------------------------------------------------------------------------
# Breakdown
# --------------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemographicLine:
    factor: str
    value: Any
    points: float

    def to_dict(self) -> dict[str, Any]:
        return {"factor": self.factor, "value": self.value, "points": _plain(self.points)}


@dataclass(frozen=True)
class BehavioralLine:
    """``count`` occurrences counted; ``points`` before decay. ``value`` is what an engagement rule measured
    (session minutes, pages, return visits)."""

    factor: str
    count: int
    points: float
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"factor": self.factor, "count": self.count, "points": _plain(self.points)}
        if self.value is not None:
            data["value"] = _plain(self.value)
        return data


@dataclass(frozen=True)
class BoostLine:
    factor: str
    points: int
    multiplier: float | None = None
    bonus: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"factor": self.factor, "points": self.points}
        if self.multiplier is not None:
            data["multiplier"] = self.multiplier
        else:
            data["bonus"] = self.bonus
        return data


@dataclass(frozen=True)
class Breakdown:
    """A score and its explanation; the integer parts always sum to ``total_score``."""

    total_score: int
    max_score: int
    at: datetime
    demographic_total: int
    demographic: tuple[DemographicLine, ...]
    behavioral_total: int
    behavioral: tuple[BehavioralLine, ...]
    decay: int  # zero or less
    negative: int  # zero or less
    negative_lines: tuple[BehavioralLine, ...]  # inactivity's count is the whole days inactive
    boosts: tuple[BoostLine, ...]
    cap: int  # brings the sum into [0, maxScore]

    @property
    def capped(self) -> bool:
        return self.cap != 0

    def to_dict(self) -> dict[str, Any]:
        """Seed 000's getBreakdown shape, plus negativeBreakdown, boosts, cap, capped, maxScore and at."""
        return {
            "totalScore": self.total_score,
            "demographic": {"total": self.demographic_total, "breakdown": [line.to_dict() for line in self.demographic]},
            "behavioral": {"total": self.behavioral_total, "breakdown": [line.to_dict() for line in self.behavioral]},
            "decay": self.decay,
            "negative": self.negative,
            "negativeBreakdown": [line.to_dict() for line in self.negative_lines],
            "boosts": [line.to_dict() for line in self.boosts],
            "cap": self.cap,
            "capped": self.capped,
            "maxScore": self.max_score,
            "at": self.at.isoformat(),
        }


# --------------------------------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Contribution:
    """Points earned at one instant: the unit decay works on. Not frozen: several are made per lead and per rule, and a
    frozen dataclass pays for each field it sets."""

    points: float
    at: datetime
    decays: bool


DecayFactor = Callable[[_Contribution], float]


def score(facts: LeadFacts, model: ScoringModelConfig, at: datetime) -> Breakdown:
    """Scores ``facts`` with ``model`` as of ``at`` (see the module docstring for every rule)."""
    if at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware.")
    # What happened after `at` had not happened yet at `at`.
    events = sorted((event for event in facts.events if event.at <= at), key=_by_event_time)
    sessions = sorted((session for session in facts.sessions if session.started_at <= at), key=_by_session_start)
    # Each rule looks up its event's occurrences (oldest first) instead of scanning every event.
    by_name: dict[str, list[EventFact]] = {}
    for event in events:
        by_name.setdefault(event.name, []).append(event)
    decay_factor = _decay_factor(model.decay, at)

    demographic = tuple(_demographic_lines(facts.fields, model))
    demographic_exact = sum(line.points for line in demographic)

    behavioral: list[BehavioralLine] = []
    contributions: list[_Contribution] = []
    for line, earned in _behavioral(by_name, sessions, model, at, decay_factor):
        behavioral.append(line)
        contributions.extend(earned)
    behavioral_exact = sum(item.points for item in contributions)
    decayed = sum(item.points * decay_factor(item) for item in contributions)
    if model.decay.enabled:
        undecayed = demographic_exact + behavioral_exact
        floor = min(model.decay.minimum_score, undecayed)
        decayed = max(decayed, floor - demographic_exact)

    demographic_total = _round_half_up(demographic_exact)
    behavioral_total = _round_half_up(behavioral_exact)
    decay = _round_half_up(decayed) - behavioral_total

    negative_lines = tuple(_negative_lines(facts, events, by_name, sessions, model, at))
    negative = _round_half_up(sum(line.points for line in negative_lines))

    subtotal = max(0, demographic_total + behavioral_total + decay + negative)
    boosts = tuple(_boost_lines(facts.fields, by_name, model, at, subtotal))

    before_cap = demographic_total + behavioral_total + decay + negative + sum(line.points for line in boosts)
    cap = 0
    if before_cap > model.max_score:
        cap = model.max_score - before_cap
    elif before_cap < 0:
        cap = -before_cap
    return Breakdown(
        total_score=before_cap + cap,
        max_score=model.max_score,
        at=at,
        demographic_total=demographic_total,
        demographic=demographic,
        behavioral_total=behavioral_total,
        behavioral=tuple(behavioral),
        decay=decay,
        negative=negative,
        negative_lines=negative_lines,
        boosts=boosts,
        cap=cap,
    )


def fields_read(model: ScoringModelConfig) -> frozenset[str]:
    """The ``LeadFacts.fields`` keys ``score`` can read with ``model``: a caller gathering facts for many leads may leave out
    every other key without changing any result."""
    config = model.demographic
    names = {rule.condition.field for _, rules in config.factor_lists() for rule in rules}
    names |= {rule.condition.field for rule in config.fields}
    names |= {boost.condition.field for boost in model.boosts if isinstance(boost.condition, Condition)}
    if config.email_quality:
        names.add("email_kind")
    if config.phone:
        names |= {"phone", "phone_valid"}
    return frozenset(names)


def band_for(score: float, thresholds: Thresholds) -> Band | None:
    """The band containing ``score``; None when it falls in a gap or outside every band."""
    return next((band for band in thresholds.bands if band.contains(score)), None)


def crossed(previous_band: Band | None, new_band: Band | None) -> Band | None:
    """The band crossed into, when the stage changed; None when it did not (or the score left every band).

    Bands are compared by stage name, so editing a band's limits is not itself a crossing. A move down (hot -> warm after
    decay) is a crossing too; compare ``min_score`` to tell the direction.
    """
    if new_band is None:
        return None
    if previous_band is not None and previous_band.stage == new_band.stage:
        return None
    return new_band


def _decay_factor(decay: DecayConfig, at: datetime) -> DecayFactor:
    """contribution -> the share of its points left at ``at``."""
    if not decay.enabled or decay.half_life_days is None:
        return _undecayed
    half_life_days = decay.half_life_days

    def factor(contribution: _Contribution) -> float:
        if not contribution.decays:
            return 1.0
        age_days = (at - contribution.at).total_seconds() / _SECONDS_PER_DAY
        return 0.5 ** (age_days / half_life_days)

    return factor


def _undecayed(contribution: _Contribution) -> float:
    return 1.0


# ---- demographic ---------------------------------------------------------------------------------------------------------


def _demographic_lines(fields: Mapping[str, Any], model: ScoringModelConfig) -> Iterable[DemographicLine]:
    config = model.demographic
    for factor, rules in config.factor_lists():
        for rule in rules:  # the first matching rule of each list
            if _condition_holds(rule.condition, fields):
                yield DemographicLine(factor, fields.get(rule.condition.field), rule.points)
                break

    email_kind = fields.get("email_kind") or ""
    email_rule = next((rule for rule in config.email_quality if rule.kind == email_kind), None)
    if email_rule is not None:
        yield DemographicLine("emailQuality", email_kind, email_rule.points)

    if _present(fields.get("phone")):
        valid = bool(fields.get("phone_valid"))
        phone_rule = next((rule for rule in config.phone if rule.valid == valid), None)
        if phone_rule is not None:
            yield DemographicLine("phone", "valid" if valid else "invalid", phone_rule.points)

    decided: set[str] = set()  # fields whose first matching rule has been found
    for rule in config.fields:
        name = rule.condition.field
        if name not in decided and _condition_holds(rule.condition, fields):
            decided.add(name)
            yield DemographicLine(name, fields.get(name), rule.points)


def _condition_holds(condition: Condition, fields: Mapping[str, Any]) -> bool:
    """Whether a Range / Match / Exist condition holds for the lead's ``fields``."""
    value = fields.get(condition.field)
    if condition.exists is not None:
        return _present(value) == condition.exists
    if isinstance(value, _COLLECTIONS):
        return any(_item_holds(condition, item) for item in value)
    return _item_holds(condition, value)


def _item_holds(condition: Condition, item: Any) -> bool:
    """A Range / Match condition tested on one value (a list value holds when any of its items does)."""
    if condition.range is not None:
        return _in_range(condition.range, item)
    if condition.pattern is not None:
        return _scalar(item) and condition.pattern.search(str(item))
    return _scalar(item) and _folded(str(item)) in _folded_values(condition.values or ())


@functools.lru_cache(maxsize=1024)
def _folded_values(values: tuple[str, ...]) -> frozenset[str]:
    """A match list's folded values, once per list rather than once per lead (a model's lists are few and never change)."""
    return frozenset(_folded(text) for text in values)


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, _CONTAINERS):
        return bool(value)
    return True


def _scalar(value: Any) -> bool:
    return _present(value) and not isinstance(value, _CONTAINERS)


def _folded(text: str) -> str:
    return text.strip().casefold()


def _in_range(value_range: Range, value: Any) -> bool:
    number = as_number(value)
    return number is not None and value_range.contains(number)


def as_number(value: Any) -> float | None:
    """A number, or a string's leading number ("50-200" -> 50, "1,000+" -> 1000, "$25" -> 25); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return None if math.isnan(value) else float(value)
    if isinstance(value, str):
        match = _LEADING_NUMBER.match(value)
        if match:
            return float(match.group(1).replace(",", ""))
    return None


# ---- behavioural ---------------------------------------------------------------------------------------------------------


def _counted(occurrences: Sequence[EventFact], max_occurrences: int | None, window_days: int | None, at: datetime) -> list[EventFact]:
    """The occurrences a rule counts: within the window, the most recent ``max_occurrences``. Input is oldest first."""
    if window_days is not None:
        since = at - timedelta(days=window_days)
        occurrences = [event for event in occurrences if event.at >= since]
    if max_occurrences is not None:
        occurrences = occurrences[-max_occurrences:]
    return list(occurrences)


def _behavioral(
    by_name: Mapping[str, Sequence[EventFact]],
    sessions: Sequence[SessionFact],
    model: ScoringModelConfig,
    at: datetime,
    decay_factor: DecayFactor,
) -> Iterable[tuple[BehavioralLine, list[_Contribution]]]:
    """(line, contributions) for every behavioural factor the lead scores on; ``by_name`` holds each event name's
    occurrences up to ``at``, oldest first."""
    config = model.behavioral
    excluded = model.decay.exclude_events

    for rule in config.events:
        occurrences = by_name.get(rule.name)
        counted = _counted(occurrences, rule.max_occurrences, rule.window_days, at) if occurrences else None
        if counted:
            decays = rule.name not in excluded
            yield (
                BehavioralLine(rule.name, len(counted), rule.points * len(counted)),
                [_Contribution(rule.points, event.at, decays) for event in counted],
            )

    # Each pageview counts for the first rule whose pattern it matches.
    by_rule: list[list[EventFact]] = [[] for _ in config.pageviews]
    for event in by_name.get(PAGEVIEW, ()):
        index = next((index for index, rule in enumerate(config.pageviews) if rule.url_pattern.search(event.url)), None)
        if index is not None:
            by_rule[index].append(event)
    for rule, matched in zip(config.pageviews, by_rule, strict=True):
        counted = _counted(matched, rule.max_occurrences, rule.window_days, at) if matched else None
        if counted:
            yield (
                BehavioralLine(f"{PAGEVIEW}:{rule.url_pattern.source}", len(counted), rule.points * len(counted)),
                [_Contribution(rule.points, event.at, PAGEVIEW not in excluded) for event in counted],
            )

    engagement = config.engagement
    for factor, rules, measure in (
        ("session_duration", engagement.session_duration, lambda session: session.duration_seconds / 60),
        ("pages_per_session", engagement.pages_per_session, lambda session: session.pageviews),
    ):
        best: tuple[float, datetime, float, _Contribution] | None = None
        for session in sessions:
            measured = measure(session)
            rule = next((rule for rule in rules if rule.range.contains(measured)), None)
            if rule is None:
                continue
            contribution = _Contribution(rule.points, session.started_at, True)
            # Ties go to the later session (sessions are oldest first), so the row shows the freshest one.
            candidate = (rule.points * decay_factor(contribution), session.started_at, measured, contribution)
            if best is None or candidate[:2] >= best[:2]:
                best = candidate
        if best is not None:
            _, _, measured, contribution = best
            yield BehavioralLine(factor, 1, contribution.points, round(measured, 2)), [contribution]

    if sessions:
        return_visits = len(sessions) - 1
        rule = next((rule for rule in engagement.return_visits if rule.range.contains(return_visits)), None)
        if rule is not None:
            contribution = _Contribution(rule.points, sessions[-1].started_at, True)
            yield BehavioralLine("return_visits", return_visits, rule.points, return_visits), [contribution]


# ---- negative ------------------------------------------------------------------------------------------------------------


def _negative_lines(
    facts: LeadFacts,
    events: Sequence[EventFact],
    by_name: Mapping[str, Sequence[EventFact]],
    sessions: Sequence[SessionFact],
    model: ScoringModelConfig,
    at: datetime,
) -> Iterable[BehavioralLine]:
    for rule in model.negative.events:
        occurrences = by_name.get(rule.name)
        counted = _counted(occurrences, rule.max_occurrences, rule.window_days, at) if occurrences else None
        if counted:
            yield BehavioralLine(rule.name, len(counted), rule.points * len(counted))

    if not model.negative.inactivity:
        return
    # A stored last_activity_at later than `at` is from after the instant being scored; events and sessions are already cut.
    activity = [event.at for event in events] + [session.started_at for session in sessions]
    if facts.last_activity_at is not None and facts.last_activity_at <= at:
        activity.append(facts.last_activity_at)
    since = max(activity) if activity else facts.created_at
    if since is None or since > at:
        return
    idle_days = (at - since).total_seconds() / _SECONDS_PER_DAY
    matching = [rule for rule in model.negative.inactivity if idle_days >= rule.days]
    if matching:
        longest = max(matching, key=lambda rule: rule.days)
        yield BehavioralLine("inactivity", math.floor(idle_days), longest.points)


# ---- boosts --------------------------------------------------------------------------------------------------------------


def _boost_lines(
    fields: Mapping[str, Any], by_name: Mapping[str, Sequence[EventFact]], model: ScoringModelConfig, at: datetime, subtotal: int
) -> Iterable[BoostLine]:
    for boost in model.boosts:
        condition = boost.condition
        if isinstance(condition, EventCondition):
            holds = bool(_counted(by_name.get(condition.event, ()), None, condition.window_days, at))
        else:
            holds = _condition_holds(condition, fields)
        if not holds:
            continue
        if boost.multiplier is not None:
            yield BoostLine(boost.label, _round_half_up((boost.multiplier - 1) * subtotal), multiplier=boost.multiplier)
        elif boost.bonus is not None:
            yield BoostLine(boost.label, _round_half_up(boost.bonus), bonus=boost.bonus)


# ---- numbers -------------------------------------------------------------------------------------------------------------


def _round_half_up(value: float) -> int:
    # round(…, 9) first: 0.5 ** x products land a hair off .5 (2.4999999999 for 2.5) and would otherwise round down.
    return math.floor(round(value, 9) + 0.5)


def _plain(number: float) -> float | int:
    """2.0 -> 2 in JSON, so configured integers stay integers."""
    return int(number) if isinstance(number, float) and number.is_integer() else number
