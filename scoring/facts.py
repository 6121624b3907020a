"""Gathers what the pure engine needs for a set of leads, with a fixed number of queries per batch
(leads, companies, tags, events, sessions), whatever the batch size.

Only what the model can read is read: the lead columns its rules test (engine.fields_read), the
company, tags and custom fields only when a rule tests one, events only of the names it scores.
Rows are tuples and each lead's fields are built once: at 100k leads a rescoring spent more here
than in the engine when every row became a dict of every column."""

from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.db.models.expressions import RawSQL

from leads.models import Company, Lead, LeadTag
from leads.tracking.models import TrackEvent, TrackSession
from scoring.config import CUSTOM_FIELD_PREFIX, EventCondition, ScoringModelConfig
from scoring.engine import PAGEVIEW, EventFact, LeadFacts, SessionFact, fields_read

# The lead's own columns that are scoring fields (scoring.config.CORE_FIELDS), under the same names.
LEAD_FIELDS = (
    "name", "first_name", "last_name", "email", "email_kind", "phone", "phone_country", "title", "department", "country",
    "status", "lifecycle_stage", "source_type", "source_campaign", "source_medium", "source_referrer", "source_landing_url",
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
)  # fmt: skip
COMPANY_PREFIX = "company."
COMPANY_COLUMNS = ("name", "domain", "size", "industry", "website")
COMPANY_FIELDS = tuple(f"{COMPANY_PREFIX}{column}" for column in COMPANY_COLUMNS)
# A lead without a company has every company field absent.
NO_COMPANY = dict.fromkeys(COMPANY_FIELDS)
# What a rescoring compares the new score with, read first in each lead row.
_STATE_COLUMNS = ("id", "score", "score_band", "lifecycle_stage", "is_qualified")


class LeadState(NamedTuple):
    """What a rescoring compares the new score with and may write back."""

    score: int
    score_band: str
    lifecycle_stage: str
    is_qualified: bool  # qualified_at is set


def event_names(model: ScoringModelConfig) -> set[str]:
    """The event names the model scores: only these are read from the database."""
    names = {rule.name for rule in model.behavioral.events} | {rule.name for rule in model.negative.events}
    names |= {boost.condition.event for boost in model.boosts if isinstance(boost.condition, EventCondition)}
    if model.behavioral.pageviews:
        names.add(PAGEVIEW)
    return names


def _id_in(model, field: str, ids: list):
    """A filter: the model's UUID `field` is one of `ids`. On PostgreSQL one array parameter
    (= ANY): a batch's thousand IN parameters cost ~12 ms a query to build and quote, about as
    much as running the query."""
    if connection.vendor != "postgresql":
        return Q(**{f"{field}__in": ids})
    column = f'"{model._meta.db_table}"."{model._meta.get_field(field).column}"'
    return RawSQL(f"{column} = ANY(%s::uuid[])", [ids], output_field=BooleanField())


def facts_for(lead_ids: Iterable, model: ScoringModelConfig, *, workspace_id=None, lock: bool = False, skip_locked: bool = False) -> dict:
    """{lead id: (LeadState, LeadFacts)} for the live leads among `lead_ids` (of `workspace_id` when
    given). With `lock` (inside a transaction) the lead rows are locked FOR UPDATE, in id order, by
    the same query that reads them; `skip_locked` leaves out the leads another transaction holds.
    LeadFacts.fields holds only the fields the model reads (engine.fields_read)."""
    read = fields_read(model)
    lead_fields = tuple(name for name in LEAD_FIELDS if name in read or (name in ("phone", "phone_country") and "phone_valid" in read))
    with_company = any(name.startswith(COMPANY_PREFIX) for name in read)
    with_custom = any(name.startswith(CUSTOM_FIELD_PREFIX) for name in read)
    # Inactivity counts from the latest activity, or from creation; nothing else reads these dates.
    with_dates = bool(model.negative.inactivity)
    columns = (
        *_STATE_COLUMNS,
        *(("created_at", "last_activity_at") if with_dates else ()),
        *(("company_id",) if with_company else ()),
        *(("custom_fields",) if with_custom else ()),
        *lead_fields,
    )

    leads = Lead.objects.filter(_id_in(Lead, "id", list(lead_ids)), deleted_at__isnull=True)
    if workspace_id is not None:
        leads = leads.filter(workspace_id=workspace_id)
    if lock:
        leads = leads.select_for_update(skip_locked=skip_locked).order_by("pk")
    # Whether qualified_at is set is all a rescoring needs of it (see services._write_scores).
    leads = leads.annotate(is_qualified=ExpressionWrapper(Q(qualified_at__isnull=False), output_field=BooleanField()))
    rows = list(leads.values_list(*columns))
    if not rows:
        return {}
    ids = [row[0] for row in rows]

    companies: dict = {}
    if with_company:
        company_ids = {row[columns.index("company_id")] for row in rows} - {None}
        for company_id, *values in Company.objects.filter(_id_in(Company, "id", list(company_ids))).values_list("id", *COMPANY_COLUMNS):
            companies[company_id] = dict(zip(COMPANY_FIELDS, values, strict=True))
    tags: dict = defaultdict(list)
    if "tags" in read:
        for lead_id, name in LeadTag.objects.filter(_id_in(LeadTag, "lead", ids)).values_list("lead_id", "tag__name"):
            tags[lead_id].append(name)
    events: dict = defaultdict(list)
    names = event_names(model)
    if names:
        for lead_id, name, at, url in TrackEvent.objects.filter(_id_in(TrackEvent, "lead", ids), is_bot=False, name__in=names).values_list(
            "lead_id", "name", "occurred_at", "url"
        ):
            events[lead_id].append(EventFact(name, at, url))
    sessions: dict = defaultdict(list)
    engagement = model.behavioral.engagement
    if engagement.session_duration or engagement.pages_per_session or engagement.return_visits or model.negative.inactivity:
        for lead_id, started, ended, pageviews in TrackSession.objects.filter(_id_in(TrackSession, "lead", ids), is_bot=False).values_list(
            "lead_id", "started_at", "ended_at", "pageviews"
        ):
            sessions[lead_id].append(
                SessionFact(started_at=started, duration_seconds=(ended - started).total_seconds(), pageviews=pageviews)
            )

    first_field = len(columns) - len(lead_fields)
    extra_columns = columns[len(_STATE_COLUMNS) : first_field]  # dates, company_id, custom_fields: as needed
    gathered = {}
    for row in rows:
        lead_id = row[0]
        named = dict(zip(extra_columns, row[len(_STATE_COLUMNS) : first_field], strict=True))
        fields = dict(zip(lead_fields, row[first_field:], strict=True))
        if with_company:
            fields.update(companies.get(named["company_id"], NO_COMPANY))
        if "phone_valid" in read:
            fields["phone_valid"] = bool(fields["phone"]) and bool(fields["phone_country"])
        if "tags" in read:
            fields["tags"] = tags[lead_id]
        if with_custom:
            for key, value in (named["custom_fields"] or {}).items():
                if not key.startswith("_"):
                    fields[f"{CUSTOM_FIELD_PREFIX}{key}"] = value
        gathered[lead_id] = (
            LeadState(*row[1 : len(_STATE_COLUMNS)]),
            LeadFacts(
                fields=fields,
                created_at=named.get("created_at"),
                events=tuple(events[lead_id]),
                sessions=tuple(sessions[lead_id]),
                last_activity_at=named.get("last_activity_at"),
            ),
        )
    return gathered
