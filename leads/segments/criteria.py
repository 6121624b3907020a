"""Segment criteria: seed 000's JSON (``all`` / ``any`` / ``none`` groups of ``{field, operator, value, window}``
conditions) validated, then compiled into ONE Django ``Q`` over leads: lookups, ``Exists`` and scalar subqueries,
never a Python loop over leads. Apply it as ``Lead.objects.filter(workspace=ws).filter(compile_criteria(c, now=now))``.

Shape
- A group has any of ``all`` (AND), ``any`` (OR), ``none`` (NOT any); each is a list of conditions or groups. The keys
  of one group are ANDed. An empty ``all`` or ``none`` holds; an empty ``any`` does not (as Python's ``all([])`` and
  ``any([])``). The root may also be ``{}`` (every live lead) or a bare condition (a sequence step's ``condition``).
- Groups nest at most MAX_DEPTH levels (the root is level 1); a tree holds at most MAX_CONDITIONS conditions.
- Unknown keys, fields or operators, an operator that does not apply to the field, a missing or ill-typed value and a
  malformed window raise :class:`CriteriaError`, whose ``errors`` name each bad spot (``"criteria.all[2].field"``).

Semantics
- Deleted leads never match.
- Text compares case-insensitively (``UPPER``/``LIKE``): fully on PostgreSQL, for ASCII letters only on SQLite.
  Text values must be non-empty; test for an empty or missing value with ``exists`` / ``not_exists``.
- A missing value (empty text, no company, no engagement row, absent custom field) fails every positive operator; the
  negative operators are exact complements: ``neq`` = not ``eq``, ``not_in`` = not ``in``, ``not_contains`` = not
  ``contains``, ``not_exists`` = not ``exists``. So ``status neq "lost"`` includes leads with no status at all.
- Times: ``within "14d"`` holds for ``now - 14d <= t <= now`` (windows are ``<N>h``, ``<N>d`` or ``<N>w``). ``before``
  and ``after`` take an instant: an ISO date or date-time (a date means its midnight, UTC when no offset is given), or
  a window meaning ``now - window``; ``before`` is strictly earlier (``lastSeenAt before "30d"``: last seen more than
  30 days ago), ``after`` strictly later. A missing time fails all three.
- ``owner`` is a user id or ``"unassigned"``; ``totalPageviews`` / ``totalSessions`` are 0 for a lead never seen.
- ``company.size`` is text ("50-200", "1,000+"): text operators compare the text, number values (and ``gt``/``gte``/
  ``lt``/``lte``) compare its leading whole number after dropping commas and leading spaces ("1,000-5,000" → 1000,
  "10k+" → 10, "12.5" → 12); a size without a leading digit is not a number. SQLite caps that number at 2**63-1.
- Custom fields (``customFields.<key>``, alias ``custom.<key>``): a string value matches string values; a number value
  matches JSON numbers and numeric strings ("250", "-3.5": up to 15 digits on each side of the point) numerically; a
  boolean matches booleans. ``exists`` means present, not null and not "". Arrays and objects only ``exists``.
- ``tags``: ``contains`` / ``in`` a tag name (case-insensitive, whitespace collapsed as tags are stored); ``exists`` =
  has any tag.
- ``events.<name>``: the number of the lead's non-bot events with exactly that name (names are identifiers as the
  Track API stores them) that occurred at or before ``now`` and, with a ``window``, within it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from django.db.models import CharField, Count, Exists, F, FloatField, Func, IntegerField, OuterRef, Q, Subquery, TextField
from django.db.models.expressions import ExpressionWrapper
from django.db.models.functions import Coalesce
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IExact,
    In,
    IsNull,
    IStartsWith,
    LessThan,
    LessThanOrEqual,
)

from leads.models import Company, EmailKind, LeadStatus, LeadTag, LifecycleStage, SourceType
from leads.normalization import normalize_tag
from leads.tracking.models import LeadEngagement, TrackEvent

MAX_DEPTH = 10
MAX_CONDITIONS = 200
MAX_LIST_VALUES = 200
MAX_TEXT_LENGTH = 1000
# Numbers beyond this lose precision as doubles; nobody segments on them.
MAX_ABS_NUMBER = 10**15
MAX_COUNT = 1_000_000
MAX_WINDOW = timedelta(days=36500)

ROOT = "criteria"
GROUP_KEYS = ("all", "any", "none")
CONDITION_KEYS = ("field", "operator", "value", "window")
OPERATORS = (
    "eq",
    "neq",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "starts_with",
    "exists",
    "not_exists",
    "within",
    "before",
    "after",
)
# Each negative operator is compiled as NOT of its positive twin, which is always TRUE or FALSE (never SQL NULL).
NEGATIONS = {"neq": "eq", "not_in": "in", "not_contains": "contains", "not_exists": "exists"}

CUSTOM_PREFIX = "customFields."
CUSTOM_ALIAS_PREFIX = "custom."
EVENTS_PREFIX = "events."
# Custom field keys are camelCase, possibly dotted ("contact.firstName"); "_displayNames" is bookkeeping, not a field.
_CUSTOM_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
# As the Track API accepts event names.
_EVENT_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")
_WINDOW = re.compile(r"^([1-9][0-9]{0,5})([hdw])$")
_WINDOW_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
UNASSIGNED = "unassigned"
# A string custom value that compares as a number; Python's `re` (SQLite's REGEXP) and PostgreSQL's `~` read it alike.
_NUMERIC_TEXT_SQLITE = r"^-?[0-9]{1,15}(\.[0-9]{1,15})?\Z"
_NUMERIC_TEXT_POSTGRES = r"^-?[0-9]{1,15}(\.[0-9]{1,15})?$"


class CriteriaError(ValueError):
    """Invalid criteria. ``errors`` maps each offending path (``"criteria.all[2].field"``) to a message."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{path}: {message}" for path, message in self.errors.items()))


# --------------------------------------------------------------------------------------------------------------------------
# Fields
# --------------------------------------------------------------------------------------------------------------------------

# What value each operator takes, by value kind (None: no value).
_TEXT_OPS = {
    "eq": "text",
    "neq": "text",
    "in": "text[]",
    "not_in": "text[]",
    "contains": "text",
    "not_contains": "text",
    "starts_with": "text",
    "exists": None,
    "not_exists": None,
}
_NUMBER_OPS = {
    "eq": "number",
    "neq": "number",
    "gt": "number",
    "gte": "number",
    "lt": "number",
    "lte": "number",
    "in": "number[]",
    "not_in": "number[]",
}
_TIME_OPS = {"within": "window", "before": "instant", "after": "instant"}
_PRESENCE_OPS = {"exists": None, "not_exists": None}
_OWNER_OPS = {"eq": "owner", "neq": "owner", "in": "owner[]", "not_in": "owner[]", **_PRESENCE_OPS}
_TAG_OPS = {"contains": "text", "not_contains": "text", "in": "text[]", "not_in": "text[]", **_PRESENCE_OPS}
_SIZE_OPS = {
    **_TEXT_OPS,
    "eq": "textOrNumber",
    "neq": "textOrNumber",
    "in": "textOrNumber[]",
    "not_in": "textOrNumber[]",
    **{op: "number" for op in ("gt", "gte", "lt", "lte")},
}
_CUSTOM_OPS = {
    **_TEXT_OPS,
    "eq": "scalar",
    "neq": "scalar",
    "in": "scalar[]",
    "not_in": "scalar[]",
    **{op: "number" for op in ("gt", "gte", "lt", "lte")},
}
_EVENT_OPS = {**_PRESENCE_OPS, **{op: "count" for op in ("eq", "neq", "gt", "gte", "lt", "lte")}}


@dataclass(frozen=True)
class _Field:
    kind: str  # text, number, datetime, owner, tags, company_text, company_size, engagement_*, custom, events
    label: str
    operators: Mapping[str, str | None]
    column: str = ""
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    nullable: bool = False

    def describe(self) -> dict[str, Any]:
        kind = {"company_text": "text", "company_size": "size", "engagement_time": "datetime", "engagement_number": "number"}
        data: dict[str, Any] = {"type": kind.get(self.kind, self.kind), "label": self.label, "operators": dict(self.operators)}
        if self.choices:
            data["choices"] = list(self.choices)
        if self.aliases:
            data["aliases"] = list(self.aliases)
        if self.kind == "events":
            data["window"] = True
        return data


def _text(column: str, label: str, choices: tuple[str, ...] = (), aliases: tuple[str, ...] = ()) -> _Field:
    return _Field("text", label, _TEXT_OPS, column, choices, aliases)


def _time(column: str, label: str, *, nullable: bool = False, engagement: bool = False) -> _Field:
    ops = {**_TIME_OPS, **(_PRESENCE_OPS if nullable or engagement else {})}
    return _Field("engagement_time" if engagement else "datetime", label, ops, column, nullable=nullable or engagement)


def _values(choices) -> tuple[str, ...]:
    return tuple(choices.values)


_CORE_FIELDS: dict[str, _Field] = {
    "name": _text("name", "Name"),
    "firstName": _text("first_name", "First name"),
    "lastName": _text("last_name", "Last name"),
    "email": _text("email", "Email"),
    "phone": _text("phone", "Phone"),
    "title": _text("title", "Job title", aliases=("jobTitle",)),
    "department": _text("department", "Department"),
    "country": _text("country", "Country"),
    "emailKind": _text("email_kind", "Email kind", _values(EmailKind)),
    "source": _text("source_type", "Source", _values(SourceType)),
    "campaign": _text("source_campaign", "Campaign"),
    "medium": _text("source_medium", "Medium"),
    "utmSource": _text("utm_source", "UTM source"),
    "utmMedium": _text("utm_medium", "UTM medium"),
    "utmCampaign": _text("utm_campaign", "UTM campaign"),
    "utmTerm": _text("utm_term", "UTM term"),
    "utmContent": _text("utm_content", "UTM content"),
    "status": _text("status", "Status", _values(LeadStatus)),
    "lifecycleStage": _text("lifecycle_stage", "Lifecycle stage", _values(LifecycleStage), aliases=("stage",)),
    "band": _text("score_band", "Score band"),
    "score": _Field("number", "Score", _NUMBER_OPS, "score"),
    "owner": _Field("owner", "Owner", _OWNER_OPS, "owner_id", nullable=True),
    "createdAt": _time("created_at", "Created"),
    "updatedAt": _time("updated_at", "Updated"),
    "lastActivityAt": _time("last_activity_at", "Last activity"),
    "qualifiedAt": _time("qualified_at", "Qualified", nullable=True),
    "lastContactedAt": _time("last_contacted_at", "Last contacted", nullable=True),
    "lastSeenAt": _time("last_seen_at", "Last seen", engagement=True),
    "firstSeenAt": _time("first_seen_at", "First seen", engagement=True),
    "totalPageviews": _Field("engagement_number", "Page views", _NUMBER_OPS, "total_pageviews"),
    "totalSessions": _Field("engagement_number", "Sessions", _NUMBER_OPS, "total_sessions"),
    "company.name": _Field("company_text", "Company", _TEXT_OPS, "name"),
    "company.domain": _Field("company_text", "Company domain", _TEXT_OPS, "domain"),
    "company.industry": _Field("company_text", "Industry", _TEXT_OPS, "industry"),
    "company.website": _Field("company_text", "Company website", _TEXT_OPS, "website"),
    "company.size": _Field("company_size", "Company size", _SIZE_OPS, "size"),
    "tags": _Field("tags", "Tags", _TAG_OPS),
}
_CUSTOM_FIELD = _Field("custom", "Custom field", _CUSTOM_OPS, "custom_fields", aliases=(f"{CUSTOM_ALIAS_PREFIX}<key>",))
_EVENTS_FIELD = _Field("events", "Event count", _EVENT_OPS)
_ALIASES = {alias: name for name, spec in _CORE_FIELDS.items() for alias in spec.aliases}

FIELDS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        **{name: spec.describe() for name, spec in _CORE_FIELDS.items()},
        f"{CUSTOM_PREFIX}<key>": _CUSTOM_FIELD.describe(),
        f"{EVENTS_PREFIX}<name>": _EVENTS_FIELD.describe(),
    }
)
"""Every field a condition may name, for a UI builder: ``{name: {"type", "label", "operators": {operator: value kind},
"choices"?, "aliases"?, "window"?}}``. Value kinds: None (no value), "text", "number", "count" (a whole number >= 0),
"window" ("14d"), "instant" (ISO date/time or a window), "owner" (user id or "unassigned"), "textOrNumber", "scalar"
(text, number or boolean); "[]" marks a list of them."""

_KNOWN_FIELDS = ", ".join(FIELDS)


def _resolve_field(name: str) -> tuple[str, _Field, str] | str:
    """(canonical name, spec, key or event name), or an error message."""
    name = _ALIASES.get(name, name)
    if name in _CORE_FIELDS:
        return name, _CORE_FIELDS[name], ""
    for prefix in (CUSTOM_PREFIX, CUSTOM_ALIAS_PREFIX):
        if name.startswith(prefix):
            key = name[len(prefix) :]
            if not _CUSTOM_KEY.match(key):
                return f"Invalid custom field key {key!r}: 1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit."
            return f"{CUSTOM_PREFIX}{key}", _CUSTOM_FIELD, key
    if name.startswith(EVENTS_PREFIX):
        event = name[len(EVENTS_PREFIX) :]
        if not _EVENT_NAME.match(event):
            return f"Invalid event name {event!r}: 1 to 100 letters, digits, '_', '.', ':' or '-'."
        return name, _EVENTS_FIELD, event
    return f"Unknown field {name!r}; known: {_KNOWN_FIELDS}."


# --------------------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------------------


class _Invalid(Exception):
    pass


def _parse_window(raw: Any) -> timedelta:
    if not isinstance(raw, str) or not (match := _WINDOW.match(raw)):
        raise _Invalid(f"Expected a window like '12h', '14d' or '2w', got {raw!r}.")
    window = timedelta(**{_WINDOW_UNITS[match.group(2)]: int(match.group(1))})
    if window > MAX_WINDOW:
        raise _Invalid(f"A window is at most {MAX_WINDOW.days} days.")
    return window


def _parse_instant(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise _Invalid(f"Expected an ISO date or date-time, or a window like '14d', got {raw!r}.")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise _Invalid(f"Expected an ISO date ('2025-05-01'), date-time ('2025-05-01T09:30:00Z') or window ('14d'), got {raw!r}.") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _check_text(raw: Any) -> str:
    if not isinstance(raw, str) or not raw:
        raise _Invalid(f"Expected non-empty text, got {raw!r}.")
    if len(raw) > MAX_TEXT_LENGTH:
        raise _Invalid(f"Text is at most {MAX_TEXT_LENGTH} characters.")
    return raw


def _check_number(raw: Any) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise _Invalid(f"Expected a number, got {raw!r}.")
    if abs(raw) > MAX_ABS_NUMBER:
        raise _Invalid(f"Numbers are at most {MAX_ABS_NUMBER} in size.")
    return raw


def _check_count(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_COUNT:
        raise _Invalid(f"Expected a whole number from 0 to {MAX_COUNT}, got {raw!r}.")
    return raw


def _check_owner(raw: Any) -> int | str:
    if isinstance(raw, str) and raw.lower() == UNASSIGNED:
        return UNASSIGNED
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise _Invalid(f"Expected a user id or {UNASSIGNED!r}, got {raw!r}.")
    return raw


def _check_text_or_number(raw: Any) -> str | int | float:
    return _check_text(raw) if isinstance(raw, str) else _check_number(raw)


def _check_scalar(raw: Any) -> str | int | float | bool:
    return raw if isinstance(raw, bool) else _check_text_or_number(raw)


def _check_window(raw: Any) -> str:
    _parse_window(raw)
    return raw


def _check_instant(raw: Any) -> str:
    if isinstance(raw, str) and _WINDOW.match(raw):
        return _check_window(raw)
    return _parse_instant(raw).isoformat()


_SCALAR_CHECKS: dict[str, Callable[[Any], Any]] = {
    "text": _check_text,
    "number": _check_number,
    "count": _check_count,
    "owner": _check_owner,
    "textOrNumber": _check_text_or_number,
    "scalar": _check_scalar,
    "window": _check_window,
    "instant": _check_instant,
}


def _check_value(value_kind: str, raw: Any, *, tags: bool) -> Any:
    if value_kind.endswith("[]"):
        if not isinstance(raw, list) or not raw:
            raise _Invalid(f"Expected a non-empty list, got {raw!r}.")
        if len(raw) > MAX_LIST_VALUES:
            raise _Invalid(f"A list holds at most {MAX_LIST_VALUES} values.")
        check = _SCALAR_CHECKS[value_kind[:-2]]
        values = []
        for index, item in enumerate(raw):
            try:
                values.append(check(item))
            except _Invalid as error:
                raise _Invalid(f"Item {index}: {error}") from None
    else:
        values = _SCALAR_CHECKS[value_kind](raw)
    if tags:
        return [_tag_name(item) for item in values] if isinstance(values, list) else _tag_name(values)
    return values


def _tag_name(raw: str) -> str:
    name = normalize_tag(raw)
    if not name:
        raise _Invalid(f"Expected a tag name, got {raw!r}.")
    return name


class _Validator:
    def __init__(self) -> None:
        self.errors: dict[str, str] = {}
        self.conditions = 0

    def root(self, criteria: Any) -> dict:
        if not isinstance(criteria, dict):
            self.errors[ROOT] = "Expected an object: a group {all, any, none} or a condition {field, operator, value}."
            return {}
        if _is_condition(criteria):
            return {"all": [self.condition(criteria, ROOT)]}
        return self.group(criteria, ROOT, depth=1)

    def node(self, node: Any, path: str, depth: int) -> dict:
        if not isinstance(node, dict) or not node:
            self.errors[path] = "Expected a condition {field, operator, value} or a group {all, any, none}."
            return {}
        if _is_condition(node):
            return self.condition(node, path)
        return self.group(node, path, depth)

    def group(self, group: dict, path: str, depth: int) -> dict:
        if depth > MAX_DEPTH:
            self.errors[path] = f"Groups nest at most {MAX_DEPTH} levels deep."
            return {}
        normalized: dict[str, list] = {}
        for key, children in group.items():
            if key not in GROUP_KEYS:
                self.errors[f"{path}.{key}"] = f"Unknown key {key!r}; a group has {', '.join(GROUP_KEYS)}."
                continue
            if not isinstance(children, list):
                self.errors[f"{path}.{key}"] = "Expected a list of conditions or groups."
                continue
            normalized[key] = [self.node(child, f"{path}.{key}[{index}]", depth + 1) for index, child in enumerate(children)]
        return {key: normalized[key] for key in GROUP_KEYS if key in normalized}

    def condition(self, condition: dict, path: str) -> dict:
        self.conditions += 1
        for key in condition:
            if key not in CONDITION_KEYS:
                self.errors[f"{path}.{key}"] = f"Unknown key {key!r}; a condition has {', '.join(CONDITION_KEYS)}."
        raw_field, operator = condition.get("field"), condition.get("operator")
        if not isinstance(raw_field, str) or not raw_field:
            self.errors[f"{path}.field"] = "Required: the name of a field."
            return {}
        resolved = _resolve_field(raw_field)
        if isinstance(resolved, str):
            self.errors[f"{path}.field"] = resolved
            return {}
        name, spec, _ = resolved
        normalized: dict[str, Any] = {"field": name, "operator": operator}
        if operator not in OPERATORS:
            self.errors[f"{path}.operator"] = f"Unknown operator {operator!r}; known: {', '.join(OPERATORS)}."
            return normalized
        if operator not in spec.operators:
            self.errors[f"{path}.operator"] = f"Operator {operator!r} does not apply to {name}; use one of: {', '.join(spec.operators)}."
            return normalized
        value_kind = spec.operators[operator]
        if value_kind is None:
            if condition.get("value") is not None:
                self.errors[f"{path}.value"] = f"Operator {operator!r} takes no value."
        elif "value" not in condition or condition["value"] is None:
            self.errors[f"{path}.value"] = f"Operator {operator!r} needs a value."
        else:
            try:
                normalized["value"] = _check_value(value_kind, condition["value"], tags=spec.kind == "tags")
            except _Invalid as error:
                self.errors[f"{path}.value"] = str(error)
        window = condition.get("window")
        if window is not None:
            if spec.kind != "events":
                self.errors[f"{path}.window"] = f"Only {EVENTS_PREFIX}<name> conditions take a window."
            else:
                try:
                    _parse_window(window)
                    normalized["window"] = window
                except _Invalid as error:
                    self.errors[f"{path}.window"] = str(error)
        return normalized


def _is_condition(node: dict) -> bool:
    return any(key in node for key in CONDITION_KEYS)


def validate_criteria(criteria: Any) -> dict:
    """The criteria checked and normalized (canonical field names, aliases resolved, instants in ISO form, tag names as
    stored, the root always a group); raises CriteriaError naming every bad spot."""
    validator = _Validator()
    normalized = validator.root(criteria)
    if validator.conditions > MAX_CONDITIONS:
        validator.errors[ROOT] = f"At most {MAX_CONDITIONS} conditions; this has {validator.conditions}."
    if validator.errors:
        raise CriteriaError(validator.errors)
    return normalized


# --------------------------------------------------------------------------------------------------------------------------
# SQL expressions that differ between PostgreSQL and SQLite
# --------------------------------------------------------------------------------------------------------------------------


class _Template(Func):
    """A Func whose SQL is a template per backend, with ``{x}`` (the argument, as often as needed) and named bound
    parameters (``{key}``, ``{pattern}``), so repeated placeholders get their parameters in the right order."""

    arity = 1
    postgresql = ""
    sqlite = ""

    def params(self, vendor: str) -> dict[str, Any]:
        return {}

    def render(self, template: str, compiler, connection):
        sql, params = compiler.compile(self.source_expressions[0])
        values = {"x": (sql, list(params)), **{name: ("%s", [value]) for name, value in self.params(connection.vendor).items()}}
        parts, out_params = [], []
        for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
            parts.append(literal)
            if name:
                part_sql, part_params = values[name]
                parts.append(part_sql)
                out_params.extend(part_params)
        return "".join(parts), out_params

    def as_sql(self, compiler, connection, **extra_context):
        return self.render(self.postgresql, compiler, connection)

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.render(self.sqlite, compiler, connection)


class LeadingNumber(_Template):
    """The leading whole number of a text after dropping commas and leading spaces ("1,000-5,000" → 1000), else NULL."""

    output_field = FloatField()
    postgresql = "CAST(SUBSTRING(REPLACE({x}, ',', '') FROM '^ *([0-9]+)') AS double precision)"
    sqlite = "CASE WHEN LTRIM(REPLACE({x}, ',', ''), ' ') GLOB '[0-9]*' THEN CAST(LTRIM(REPLACE({x}, ',', ''), ' ') AS INTEGER) END"


class _JsonKey(_Template):
    """Reads one key of a JSON column; keys are validated (no quotes), and bound as parameters anyway."""

    def __init__(self, expression, key: str, **extra):
        super().__init__(expression, **extra)
        self.key = key

    def params(self, vendor: str) -> dict[str, Any]:
        # SQLite reads a JSON path; the key is quoted so dots in it stay part of the key.
        return {"key": self.key if vendor == "postgresql" else f'$."{self.key}"'}


class JsonKind(_JsonKey):
    """A custom field's kind: string, number, true, false, array, object, null (JSON null) or missing; never NULL."""

    output_field = CharField()
    postgresql = (
        "CASE WHEN jsonb_typeof({x} -> CAST({key} AS text)) = 'boolean' THEN {x} ->> CAST({key} AS text) "
        "ELSE COALESCE(jsonb_typeof({x} -> CAST({key} AS text)), 'missing') END"
    )
    sqlite = (
        "COALESCE(CASE json_type({x}, {key}) WHEN 'text' THEN 'string' WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' "
        "ELSE json_type({x}, {key}) END, 'missing')"
    )


class JsonText(_JsonKey):
    """A custom field's value when it is a string, else NULL."""

    output_field = TextField()
    postgresql = "CASE WHEN jsonb_typeof({x} -> CAST({key} AS text)) = 'string' THEN {x} ->> CAST({key} AS text) END"
    sqlite = "CASE WHEN json_type({x}, {key}) = 'text' THEN json_extract({x}, {key}) END"


class JsonNumber(_JsonKey):
    """A custom field's value as a number when it is a JSON number or a numeric string, else NULL."""

    output_field = FloatField()
    # jsonb prints numbers in full: a text longer than 300 characters might overflow a double, so it is not read.
    postgresql = (
        "CASE WHEN jsonb_typeof({x} -> CAST({key} AS text)) = 'number' AND LENGTH({x} ->> CAST({key} AS text)) <= 300 "
        "THEN CAST({x} ->> CAST({key} AS text) AS double precision) "
        "WHEN jsonb_typeof({x} -> CAST({key} AS text)) = 'string' AND ({x} ->> CAST({key} AS text)) ~ {pattern} "
        "THEN CAST({x} ->> CAST({key} AS text) AS double precision) END"
    )
    sqlite = (
        "CASE json_type({x}, {key}) WHEN 'integer' THEN CAST(json_extract({x}, {key}) AS REAL) WHEN 'real' THEN json_extract({x}, {key}) "
        "WHEN 'text' THEN CASE WHEN json_extract({x}, {key}) REGEXP {pattern} THEN CAST(json_extract({x}, {key}) AS REAL) END END"
    )

    def params(self, vendor: str) -> dict[str, Any]:
        return {**super().params(vendor), "pattern": _NUMERIC_TEXT_POSTGRES if vendor == "postgresql" else _NUMERIC_TEXT_SQLITE}


# --------------------------------------------------------------------------------------------------------------------------
# Compilation
# --------------------------------------------------------------------------------------------------------------------------


class _Exists(Exists):
    """EXISTS without the LIMIT 1 Django adds: the answer is the same, but PostgreSQL 15 does not turn a subquery with a
    LIMIT into a hashed subplan, so a test such as "has tag vip" ran once per lead instead of once per query."""

    def __init__(self, queryset, **kwargs):
        super().__init__(queryset, **kwargs)
        self.query.clear_limits()


FALSE = Q(pk__in=[])
TRUE = ~FALSE
_COMPARISONS = {"eq": Exact, "gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual}
_TEXT_LOOKUPS = {"eq": "iexact", "contains": "icontains", "starts_with": "istartswith"}
_TEXT_LOOKUP_CLASSES = {"eq": IExact, "contains": IContains, "starts_with": IStartsWith}


def _any_of(parts: list[Q]) -> Q:
    if not parts:
        return FALSE
    result = parts[0]
    for part in parts[1:]:
        result |= part
    return result


def _all_of(parts: list[Q]) -> Q:
    if not parts:
        return TRUE
    result = parts[0]
    for part in parts[1:]:
        result &= part
    return result


def _known(lookup) -> Q:
    """A lookup on an expression that may be NULL, made two-valued: FALSE rather than NULL when the value is missing."""
    return Q(lookup) & Q(IsNull(lookup.lhs, False))


def _text_q(column: str, operator: str, value) -> Q:
    """Case-insensitive text match on a column of the queried model (never NULL there)."""
    if operator == "exists":
        return ~Q(**{column: ""})
    if operator == "in":
        return _any_of([Q(**{f"{column}__iexact": item}) for item in value])
    return Q(**{f"{column}__{_TEXT_LOOKUPS[operator]}": value})


def _number_q(expression, operator: str, value) -> Q:
    """A numeric comparison on a never-NULL expression (floats compare exactly, unlike an IntegerField's lookups)."""
    if operator == "in":
        return _any_of([Q(Exact(expression, item)) for item in value])
    return Q(_COMPARISONS[operator](expression, value))


def _on_integer_column(column: str, value) -> tuple[F | ExpressionWrapper, Any]:
    """(expression, value) to compare an integer column with: the column as it is and whole values as integers (30.0 as
    30); the column as a float when a value has a fraction (49.5), so that it compares exactly. A fractional parameter
    makes PostgreSQL cast the column of every row to numeric, which costs time and any index on it."""
    values = value if isinstance(value, list) else [value]
    if not all(float(item).is_integer() for item in values):
        return ExpressionWrapper(F(column), output_field=FloatField()), value
    whole = [int(item) for item in values]
    return F(column), whole if isinstance(value, list) else whole[0]


def _instant(value: str, now: datetime) -> datetime:
    return now - _parse_window(value) if _WINDOW.match(value) else _parse_instant(value)


def _time_q(column: str, operator: str, value, now: datetime) -> Q:
    if operator == "exists":
        return Q(**{f"{column}__isnull": False})
    if operator == "within":
        return Q(**{f"{column}__gte": now - _parse_window(value), f"{column}__lte": now})
    lookup = "lt" if operator == "before" else "gt"
    return Q(**{f"{column}__{lookup}": _instant(value, now)})


def _custom_q(key: str, operator: str, value) -> Q:
    source = F("custom_fields")
    if operator == "exists":
        present = Q(In(JsonKind(source, key), ["number", "true", "false", "array", "object"]))
        return present | (Q(Exact(JsonKind(source, key), "string")) & ~Q(Exact(JsonText(source, key), "")))
    if operator == "in":
        return _any_of([_custom_q(key, "eq", item) for item in value])
    if isinstance(value, bool):
        return Q(Exact(JsonKind(source, key), "true" if value else "false"))
    if isinstance(value, int | float):
        return _known(_COMPARISONS[operator](JsonNumber(source, key), value))
    return _known(_TEXT_LOOKUP_CLASSES[operator](JsonText(source, key), value))


def _size_q(operator: str, value) -> Q:
    """On Company rows: text operators on the size text, numbers on its leading number."""
    if operator == "in":
        return _any_of([_size_q("eq", item) for item in value])
    if isinstance(value, int | float):
        return Q(_COMPARISONS[operator](LeadingNumber(F("size")), value))
    return _text_q("size", operator, value)


def _events_q(event: str, operator: str, value, window: str | None, now: datetime) -> Q:
    events = TrackEvent.objects.filter(
        workspace=OuterRef("workspace_id"), lead=OuterRef("pk"), name=event, is_bot=False, occurred_at__lte=now
    )
    if window:
        events = events.filter(occurred_at__gte=now - _parse_window(window))
    if operator == "exists" or (operator == "gte" and value == 1) or (operator == "gt" and value == 0):
        return Q(_Exists(events))
    counted = events.order_by().values("lead_id").annotate(n=Count("id")).values("n")
    count = Coalesce(Subquery(counted, output_field=IntegerField()), 0)
    return Q(_COMPARISONS[operator](count, value))


def _positive_q(spec: _Field, key: str, operator: str, value, window: str | None, now: datetime) -> Q:
    """The condition for a positive operator, TRUE or FALSE for every lead (never NULL, so NOT of it is exact)."""
    kind = spec.kind
    if kind == "text":
        return _text_q(spec.column, operator, value)
    if kind == "number":
        expression, value = _on_integer_column(spec.column, value)
        return _number_q(expression, operator, value)
    if kind == "datetime":
        condition = _time_q(spec.column, operator, value, now)
        return condition & Q(**{f"{spec.column}__isnull": False}) if spec.nullable else condition
    if kind == "owner":
        if operator == "exists":
            return Q(owner_id__isnull=False)
        values = value if operator == "in" else [value]
        return _any_of([Q(owner_id__isnull=True) if item == UNASSIGNED else Q(owner_id=item, owner_id__isnull=False) for item in values])
    if kind == "tags":
        tags = LeadTag.objects.filter(lead=OuterRef("pk"))
        if operator == "exists":
            return Q(_Exists(tags))
        names = value if operator == "in" else [value]
        return Q(_Exists(tags.filter(_any_of([Q(tag__name__iexact=name) for name in names]))))
    if kind in ("company_text", "company_size"):
        companies = Company.objects.filter(pk=OuterRef("company_id"))
        condition = _size_q(operator, value) if kind == "company_size" and operator != "exists" else _text_q(spec.column, operator, value)
        return Q(_Exists(companies.filter(condition)))
    if kind == "engagement_time":
        return Q(_Exists(LeadEngagement.objects.filter(lead=OuterRef("pk")).filter(_time_q(spec.column, operator, value, now))))
    if kind == "engagement_number":
        counter = LeadEngagement.objects.filter(lead=OuterRef("pk")).values(spec.column)[:1]
        return _number_q(Coalesce(Subquery(counter), 0, output_field=FloatField()), operator, value)
    if kind == "custom":
        return _custom_q(key, operator, value)
    if kind == "events":
        return _events_q(key, operator, value, window, now)
    raise AssertionError(f"unhandled field kind {kind}")


def _condition_q(condition: dict, now: datetime) -> Q:
    _, spec, key = _resolve_field(condition["field"])
    operator = condition["operator"]
    positive = NEGATIONS.get(operator, operator)
    q = _positive_q(spec, key, positive, condition.get("value"), condition.get("window"), now)
    return ~q if positive != operator else q


def _node_q(node: dict, now: datetime) -> Q:
    if "field" in node:
        return _condition_q(node, now)
    parts = []
    if "all" in node:
        parts.append(_all_of([_node_q(child, now) for child in node["all"]]))
    if "any" in node:
        parts.append(_any_of([_node_q(child, now) for child in node["any"]]))
    if "none" in node:
        parts.append(~_any_of([_node_q(child, now) for child in node["none"]]))
    return _all_of(parts)


def compile_criteria(criteria: Any, *, now: datetime) -> Q:
    """One Q selecting the live leads that match `criteria` at the instant `now`; raises CriteriaError when invalid."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime.")
    return Q(deleted_at__isnull=True) & _node_q(validate_criteria(criteria), now)
