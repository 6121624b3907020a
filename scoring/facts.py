"""Gathers what the pure engine needs for a set of leads, with a fixed number of queries per batch
(leads, tags, events, sessions), whatever the batch size."""

from collections import defaultdict
from collections.abc import Iterable

from leads.models import Lead, LeadTag
from leads.tracking.models import TrackEvent, TrackSession
from scoring.config import EventCondition, ScoringModelConfig
from scoring.engine import PAGEVIEW, EventFact, LeadFacts, SessionFact

LEAD_COLUMNS = (
    "id", "workspace_id", "name", "first_name", "last_name", "email", "email_kind", "phone", "phone_country", "title",
    "department", "country", "status", "lifecycle_stage", "source_type", "source_campaign", "source_medium", "source_referrer",
    "source_landing_url", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "custom_fields",
    "created_at", "last_activity_at", "score", "score_band", "company__name", "company__domain", "company__size",
    "company__industry", "company__website", "qualified_at",
)  # fmt: skip


def event_names(model: ScoringModelConfig) -> set[str]:
    """The event names the model scores: only these are read from the database."""
    names = {rule.name for rule in model.behavioral.events} | {rule.name for rule in model.negative.events}
    names |= {boost.condition.event for boost in model.boosts if isinstance(boost.condition, EventCondition)}
    if model.behavioral.pageviews:
        names.add(PAGEVIEW)
    return names


def _fields(row: dict, tags: list[str]) -> dict:
    fields = {key.replace("company__", "company."): value for key, value in row.items() if key in LEAD_COLUMNS and key != "custom_fields"}
    fields["phone_valid"] = bool(row["phone"]) and bool(row["phone_country"])
    fields["tags"] = tags
    for key, value in (row["custom_fields"] or {}).items():
        if not key.startswith("_"):
            fields[f"custom.{key}"] = value
    return fields


def facts_for(lead_ids: Iterable, model: ScoringModelConfig) -> dict:
    """{lead id: (row, LeadFacts)} for the live leads among `lead_ids`."""
    ids = list(lead_ids)
    rows = {row["id"]: row for row in Lead.objects.filter(pk__in=ids, deleted_at__isnull=True).values(*LEAD_COLUMNS)}
    if not rows:
        return {}
    tags: dict = defaultdict(list)
    for lead_id, name in LeadTag.objects.filter(lead_id__in=rows).values_list("lead_id", "tag__name"):
        tags[lead_id].append(name)
    events: dict = defaultdict(list)
    names = event_names(model)
    if names:
        for lead_id, name, at, url in TrackEvent.objects.filter(lead_id__in=rows, is_bot=False, name__in=names).values_list(
            "lead_id", "name", "occurred_at", "url"
        ):
            events[lead_id].append(EventFact(name=name, at=at, url=url))
    sessions: dict = defaultdict(list)
    engagement = model.behavioral.engagement
    if engagement.session_duration or engagement.pages_per_session or engagement.return_visits or model.negative.inactivity:
        for lead_id, started, ended, pageviews in TrackSession.objects.filter(lead_id__in=rows, is_bot=False).values_list(
            "lead_id", "started_at", "ended_at", "pageviews"
        ):
            sessions[lead_id].append(
                SessionFact(started_at=started, duration_seconds=(ended - started).total_seconds(), pageviews=pageviews)
            )
    return {
        lead_id: (
            row,
            LeadFacts(
                fields=_fields(row, tags[lead_id]),
                created_at=row["created_at"],
                events=tuple(events[lead_id]),
                sessions=tuple(sessions[lead_id]),
                last_activity_at=row["last_activity_at"],
            ),
        )
        for lead_id, row in rows.items()
    }
