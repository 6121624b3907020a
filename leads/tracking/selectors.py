"""Reads for the unified profile (seed 000's getProfile), the timeline (getTimeline) and the
company (account) roll-up. Counters come from LeadEngagement: nothing is recounted per request."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from heapq import merge
from urllib.parse import urlparse

from django.db.models import Max, Min, Q, Sum
from django.utils.dateparse import parse_datetime

from leads.models import Company, Lead, LeadActivity, Note, email_domain
from leads.tracking.models import EventKind, LeadEngagement, TrackEvent
from leadsmgr.api.formats import iso_time

TIMELINE_TYPES = ("pageview", "event", "email", "form", "meeting", "note", "activity")
TIMELINE_MAX_LIMIT = 200
# The activities already shown by their own timeline entry, or too noisy to list.
HIDDEN_ACTIVITY_TYPES = ("note_added", "processed")
# Entries of one instant (a batch sent without timestamps) are ordered by source, then id, so a page
# may end between them and the next page starts right after the last entry shown.
SOURCE_RANK = {"n": 0, "a": 1, "e": 2}


@dataclass(frozen=True)
class TimelineCursor:
    """A place in the timeline: the previous page's last entry (`next` is "<time>~<entry key>"), or
    a bare time (everything older than it)."""

    at: datetime
    source: str = ""
    pk: object = None

    def older(self, source: str, field: str) -> Q:
        """The rows of `source` that come after this place, newest first."""
        if not self.source or SOURCE_RANK[source] > SOURCE_RANK[self.source]:
            return Q(**{f"{field}__lt": self.at})
        if SOURCE_RANK[source] < SOURCE_RANK[self.source]:
            return Q(**{f"{field}__lte": self.at})
        return Q(**{f"{field}__lt": self.at}) | Q(**{field: self.at, "pk__lt": self.pk})


def timeline_cursor(value: str) -> TimelineCursor | None:
    """Reads `before`: an ISO time, or a page's `next`. None when it is neither."""
    text, _, key = value.replace(" ", "+").partition("~")
    try:
        at = parse_datetime(text)
        pk = (uuid.UUID(key[1:]) if key[:1] == "n" else int(key[1:])) if key else None
    except ValueError:
        return None
    if at is None or (key and key[:1] not in SOURCE_RANK):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return TimelineCursor(at, key[:1], pk)


def timeline_next(entry: dict) -> str:
    """The cursor of the page ending with `entry`."""
    return f"{entry['timestamp']}~{entry['_key']}"


def _touch(engagement: LeadEngagement | None, which: str) -> dict | None:
    if engagement is None or getattr(engagement, f"{which}_touch_at") is None:
        return None
    return {
        "source": getattr(engagement, f"{which}_touch_source") or None,
        "medium": getattr(engagement, f"{which}_touch_medium") or None,
        "campaign": getattr(engagement, f"{which}_touch_campaign") or None,
        "at": iso_time(getattr(engagement, f"{which}_touch_at")),
    }


def engagement_summary(engagement: LeadEngagement | None) -> dict:
    get = (lambda name: getattr(engagement, name)) if engagement else (lambda name: None)
    return {
        "firstSeen": iso_time(get("first_seen_at")),
        "lastSeen": iso_time(get("last_seen_at")),
        "totalSessions": get("total_sessions") or 0,
        "totalPageviews": get("total_pageviews") or 0,
        "totalEvents": get("total_events") or 0,
        "emailsOpened": get("emails_opened") or 0,
        "emailsClicked": get("emails_clicked") or 0,
    }


def attribution_summary(engagement: LeadEngagement | None) -> dict:
    return {
        "firstTouch": _touch(engagement, "first"),
        "lastTouch": _touch(engagement, "last"),
        "touchCount": engagement.touch_count if engagement else 0,
    }


def lead_profile(*, lead: Lead, engagement: LeadEngagement | None = None) -> dict:
    """`engagement`: the lead's row when the caller has it already (the drawer does)."""
    if engagement is None:
        engagement = LeadEngagement.objects.filter(lead=lead).first()
    company = lead.company
    owner = lead.owner
    return {
        "id": str(lead.pk),
        "contact": {
            "email": lead.email or None,
            "name": lead.name,
            "firstName": lead.first_name or None,
            "lastName": lead.last_name or None,
            "phone": lead.phone or None,
            "title": lead.title or None,
            "country": lead.country or None,
        },
        "company": (
            {
                "id": str(company.pk),
                "name": company.name,
                "domain": company.domain or None,
                "industry": company.industry or None,
                "size": company.size or None,
                "website": company.website or None,
            }
            if company
            else None
        ),
        "status": lead.status,
        "score": lead.score,
        "scoreBand": lead.score_band or None,
        "stage": lead.lifecycle_stage,
        "pipelineStage": {"id": str(lead.stage_id), "name": lead.stage.name},
        "engagement": engagement_summary(engagement),
        "attribution": attribution_summary(engagement),
        "lifecycle": {
            "createdAt": iso_time(lead.created_at),
            "qualifiedAt": iso_time(lead.qualified_at),
            "assignedTo": {"id": owner.pk, "name": owner.display_name, "email": owner.email} if owner else None,
            "lastContactedAt": iso_time(lead.last_contacted_at),
        },
        "visitors": lead.visitors.count(),
    }


def _event_entry(event: TrackEvent) -> dict:
    props = event.properties or {}
    if event.kind == EventKind.PAGEVIEW:
        parsed = urlparse(event.url)
        data = {
            "page": parsed.path or "/",
            "url": event.url,
            "title": event.title,
            "duration": event.duration_seconds,
            "scrollDepth": event.scroll_depth,
        }
        kind = "pageview"
    elif event.kind == EventKind.EMAIL:
        kind = "email"
        data = {"action": event.name.removeprefix("email_"), "campaign": props.get("campaign") or None, "link": props.get("link")}
    elif event.kind == EventKind.FORM:
        kind = "form"
        data = {"action": event.name, "formId": props.get("formId"), "page": urlparse(event.url).path or None}
        if props.get("field"):
            data["field"] = props["field"]
        if props.get("capturedLeadId"):
            data["capturedLeadId"] = props["capturedLeadId"]
    else:
        kind = "event"
        data = {"name": event.name, "properties": {k: v for k, v in props.items() if k not in ("fields", "traits")}}
    return {
        "type": kind,
        "timestamp": iso_time(event.occurred_at),
        "data": data,
        "_at": event.occurred_at,
        "_key": f"e{event.pk}",
        "_sort": (event.occurred_at, SOURCE_RANK["e"], event.pk),
        "_obj": event,
    }


def lead_timeline(*, lead: Lead, types: set[str], limit: int, before: TimelineCursor | datetime | None = None) -> list[dict]:
    """One stream, newest first, of the lead's tracked events, notes and activities. Each source
    is read newest-first with the limit, then merged: at most `limit` rows per source are read."""
    if isinstance(before, datetime):
        before = TimelineCursor(before)
    streams = []
    event_kinds = {
        "pageview": [EventKind.PAGEVIEW],
        "event": [EventKind.EVENT],
        "email": [EventKind.EMAIL],
        "form": [EventKind.FORM],
    }
    kinds = [kind for name, group in event_kinds.items() if name in types for kind in group]
    if kinds:
        events = TrackEvent.objects.filter(lead=lead, kind__in=kinds, is_bot=False)
        if before:
            events = events.filter(before.older("e", "occurred_at"))
        streams.append(map(_event_entry, events.order_by("-occurred_at", "-id")[:limit]))
    if "note" in types:
        notes = Note.objects.filter(lead=lead).select_related("author")
        if before:
            notes = notes.filter(before.older("n", "created_at"))
        streams.append(
            {
                "type": "note",
                "timestamp": iso_time(note.created_at),
                "data": {"text": note.text, "author": note.author.display_name if note.author else None},
                "_at": note.created_at,
                "_key": f"n{note.pk}",
                "_sort": (note.created_at, SOURCE_RANK["n"], note.pk),
                "_obj": note,
            }
            for note in notes.order_by("-created_at", "-id")[:limit]
        )
    if "activity" in types:
        activities = LeadActivity.objects.filter(lead=lead).exclude(type__in=HIDDEN_ACTIVITY_TYPES).select_related("actor")
        if before:
            activities = activities.filter(before.older("a", "created_at"))
        streams.append(
            {
                "type": "activity",
                "timestamp": iso_time(activity.created_at),
                "data": {
                    "activity": activity.type,
                    "label": activity.get_type_display(),
                    "actor": activity.actor.display_name if activity.actor else None,
                    **activity.data,
                },
                "_at": activity.created_at,
                "_key": f"a{activity.pk}",
                "_sort": (activity.created_at, SOURCE_RANK["a"], activity.pk),
                "_obj": activity,
            }
            for activity in activities.order_by("-created_at", "-id")[:limit]
        )
    merged = merge(*streams, key=lambda entry: entry["_sort"], reverse=True)
    entries = []
    for entry in merged:
        if len(entries) == limit:
            break
        entries.append(entry)
    return entries


def company_rollup(*, company: Company) -> dict:
    """The account view: the company's leads (linked, or sharing its email domain) with their
    engagement combined."""
    leads = Lead.objects.filter(workspace_id=company.workspace_id, deleted_at__isnull=True)
    match = Q(company=company)
    if company.domain:
        match |= Q(email_domain=company.domain.lower())
    leads = leads.alias(email_domain=email_domain()).filter(match)
    totals = LeadEngagement.objects.filter(lead__in=leads.values("pk")).aggregate(
        first_seen=Min("first_seen_at"),
        last_seen=Max("last_seen_at"),
        sessions=Sum("total_sessions"),
        pageviews=Sum("total_pageviews"),
        events=Sum("total_events"),
        opened=Sum("emails_opened"),
        clicked=Sum("emails_clicked"),
        touches=Sum("touch_count"),
    )
    top = (
        leads.select_related("engagement")
        .order_by("-engagement__last_seen_at", "-created_at")
        .only("pk", "name", "email", "score", "engagement__last_seen_at", "engagement__total_pageviews")[:20]
    )
    return {
        "id": str(company.pk),
        "name": company.name,
        "domain": company.domain or None,
        "industry": company.industry or None,
        "size": company.size or None,
        "leadCount": leads.count(),
        "engagement": {
            "firstSeen": iso_time(totals["first_seen"]),
            "lastSeen": iso_time(totals["last_seen"]),
            "totalSessions": totals["sessions"] or 0,
            "totalPageviews": totals["pageviews"] or 0,
            "totalEvents": totals["events"] or 0,
            "emailsOpened": totals["opened"] or 0,
            "emailsClicked": totals["clicked"] or 0,
            "touchCount": totals["touches"] or 0,
        },
        "leads": [
            {
                "id": str(lead.pk),
                "name": lead.name,
                "email": lead.email or None,
                "score": lead.score,
                "lastSeen": iso_time(getattr(getattr(lead, "engagement", None), "last_seen_at", None)),
                "pageviews": getattr(getattr(lead, "engagement", None), "total_pageviews", 0),
            }
            for lead in top
        ],
    }
