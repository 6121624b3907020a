"""Track API ingest: validate a batch event by event, store the good ones in one INSERT, and hand
their visitors to the processor after the answer. A bad event gets its own error; the good events
of the same batch are kept. Nothing here waits on sessions, identity or counters.
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from crawlerdetect import CrawlerDetect
from django.conf import settings
from django.db import connections, router
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from leads.tracking.models import FORM_EVENTS, EventKind, TrackEvent, TrackingSite

# What a browser (site key) may send; a server with a bearer token may also send email events
# and name the lead directly.
BROWSER_KINDS = {EventKind.PAGEVIEW, EventKind.PAGE_LEAVE, EventKind.EVENT, EventKind.IDENTIFY, EventKind.FORM}
SERVER_KINDS = BROWSER_KINDS | {EventKind.EMAIL}
EMAIL_EVENTS = ("email_opened", "email_clicked")
RESERVED_NAMES = frozenset({EventKind.PAGEVIEW, EventKind.PAGE_LEAVE, EventKind.IDENTIFY, *FORM_EVENTS, *EMAIL_EVENTS})
EVENT_FIELDS = {
    "type",
    "name",
    "visitorId",
    "messageId",
    "timestamp",
    "url",
    "title",
    "referrer",
    "properties",
    "traits",
    "leadId",
    "email",
}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{8,64}$")
MESSAGE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
MAX_PROPERTIES = 100
# A timestamp a little ahead is a client clock; far ahead or very old is an error.
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_EVENT_AGE = timedelta(days=7)
# parse_event's fields as the insert's columns, with their PostgreSQL types.
_ROW_COLUMNS = {
    "kind": "text",
    "name": "text",
    "visitor_key": "text",
    "lead_id": "uuid",
    "message_id": "text",
    "occurred_at": "timestamptz",
    "url": "text",
    "title": "text",
    "referrer": "text",
    "properties": "jsonb",
    "duration_seconds": "float8",
    "scroll_depth": "smallint",
}


class BatchError(ValueError):
    """The batch as a whole cannot be read (not an object, no events list, too many events)."""

    def __init__(self, message: str, fields: dict[str, str]):
        super().__init__(message)
        self.fields = fields


@dataclass
class BatchResult:
    accepted: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    visitor_keys: set[str] = field(default_factory=set)
    lead_ids: set[str] = field(default_factory=set)


@lru_cache(maxsize=4096)
def bot_reason_for_user_agent(user_agent: str) -> str:
    """'user_agent' when the user agent names a crawler, a headless browser or an HTTP library."""
    if not user_agent.strip():
        return "no_user_agent"
    return "user_agent" if _crawler_detect().isCrawler(user_agent) else ""


@lru_cache(maxsize=1)
def _crawler_detect() -> CrawlerDetect:
    return CrawlerDetect()


def _text(raw: dict, key: str, limit: int) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _EventInvalid(key, "Must be a string.")
    # Long URLs and titles are cut, not refused: the event is still worth keeping.
    return value.strip()[:limit]


class _EventInvalid(ValueError):
    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def _timestamp(raw: dict, now: datetime) -> datetime:
    value = raw.get("timestamp")
    if value in (None, ""):
        return now
    if not isinstance(value, str):
        raise _EventInvalid("timestamp", "Must be an ISO 8601 time.")
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise _EventInvalid("timestamp", "Must be an ISO 8601 time, e.g. 2026-01-12T14:22:00Z.")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    if parsed > now + FUTURE_TOLERANCE:
        raise _EventInvalid("timestamp", "Is in the future.")
    if parsed < now - MAX_EVENT_AGE:
        raise _EventInvalid("timestamp", f"Is older than {MAX_EVENT_AGE.days} days.")
    return min(parsed, now)


def _object(raw: dict, key: str) -> dict:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _EventInvalid(key, "Must be an object.")
    if len(value) > MAX_PROPERTIES:
        raise _EventInvalid(key, f"At most {MAX_PROPERTIES} keys.")
    return value


def parse_event(
    raw: Any, *, default_visitor: str, server: bool, now: datetime, known_leads: dict[str, str] | None = None
) -> dict[str, Any]:
    """One event as TrackEvent fields; raises _EventInvalid naming the offending key."""
    if not isinstance(raw, dict):
        raise _EventInvalid("", "Each event must be an object.")
    unknown = sorted(set(raw) - EVENT_FIELDS)
    if unknown:
        raise _EventInvalid(unknown[0], f"Unknown field; known fields: {', '.join(sorted(EVENT_FIELDS))}.")
    kind = raw.get("type")
    allowed = SERVER_KINDS if server else BROWSER_KINDS
    if not isinstance(kind, str) or kind not in allowed:
        raise _EventInvalid("type", f"Must be one of: {', '.join(sorted(allowed))}.")
    name = raw.get("name")
    if kind in (EventKind.PAGEVIEW, EventKind.PAGE_LEAVE, EventKind.IDENTIFY):
        name = kind
    elif not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise _EventInvalid("name", "Required: 1 to 100 letters, digits, '_', '.', ':' or '-'.")
    if kind == EventKind.FORM and name not in FORM_EVENTS:
        raise _EventInvalid("name", f"A form event is one of: {', '.join(FORM_EVENTS)}.")
    if kind == EventKind.EMAIL and name not in EMAIL_EVENTS:
        raise _EventInvalid("name", f"An email event is one of: {', '.join(EMAIL_EVENTS)}.")
    if kind == EventKind.EVENT and name in RESERVED_NAMES:
        # Engagement and scoring count these names: only their own type (and path) may record them.
        raise _EventInvalid("name", f"{name!r} is recorded by its own event type, not as a custom event.")

    visitor_key = raw.get("visitorId", default_visitor) or ""
    if visitor_key and (not isinstance(visitor_key, str) or not ID_PATTERN.match(visitor_key)):
        raise _EventInvalid("visitorId", "Must be 8 to 64 letters, digits, '_' or '-'.")
    lead_id = ""
    if server and (raw.get("leadId") or raw.get("email")):
        lead_id = (known_leads or {}).get(str(raw.get("leadId") or "")) or (known_leads or {}).get(
            str(raw.get("email") or "").strip().lower(), ""
        )
        if not lead_id:
            raise _EventInvalid("leadId" if raw.get("leadId") else "email", "No lead with this id or email in the workspace.")
    elif raw.get("leadId") or raw.get("email"):
        raise _EventInvalid("leadId" if raw.get("leadId") else "email", "Only a server (bearer token) may name a lead.")
    if not visitor_key and not lead_id:
        raise _EventInvalid("visitorId", "Required (or, from a server, leadId or email).")
    message_id = raw.get("messageId") or ""
    if message_id and (not isinstance(message_id, str) or not MESSAGE_ID_PATTERN.match(message_id)):
        raise _EventInvalid("messageId", "At most 64 letters, digits, '_', '.', ':' or '-'.")

    properties = dict(_object(raw, "properties"))
    traits = _object(raw, "traits")
    if kind == EventKind.IDENTIFY:
        if not traits:
            raise _EventInvalid("traits", "An identify event needs traits (e.g. email, name) or a leadToken.")
        properties["traits"] = traits
    duration = scroll = None
    if kind == EventKind.PAGE_LEAVE:
        if not isinstance(properties.get("pageviewId"), str):
            raise _EventInvalid("properties.pageviewId", "The messageId of the pageview being left is required.")
        duration = properties.get("duration")
        if not isinstance(duration, (int, float)) or isinstance(duration, bool) or not 0 <= duration <= 86400:
            raise _EventInvalid("properties.duration", "Seconds on the page, 0 to 86400.")
        scroll = properties.get("scrollDepth", 0)
        if not isinstance(scroll, (int, float)) or isinstance(scroll, bool) or not 0 <= scroll <= 100:
            raise _EventInvalid("properties.scrollDepth", "A percentage, 0 to 100.")
    url = _text(raw, "url", 1000)
    if kind == EventKind.PAGEVIEW and not url:
        raise _EventInvalid("url", "A pageview needs the page's URL.")
    return {
        "kind": kind,
        "name": name,
        "visitor_key": visitor_key if isinstance(visitor_key, str) else "",
        "lead_id": lead_id or None,
        "message_id": message_id,
        "occurred_at": _timestamp(raw, now),
        "url": url,
        "title": _text(raw, "title", 300),
        "referrer": _text(raw, "referrer", 1000),
        "properties": properties,
        "duration_seconds": float(duration) if duration is not None else None,
        "scroll_depth": round(scroll) if scroll is not None else None,
    }


def _known_leads(workspace, events: list) -> dict[str, str]:
    """Lead ids and emails a server batch names, resolved in one query each."""
    from leads.models import Lead

    ids = {str(e.get("leadId")) for e in events if isinstance(e, dict) and e.get("leadId")}
    emails = {str(e.get("email")).strip().lower() for e in events if isinstance(e, dict) and e.get("email")}
    found: dict[str, str] = {}
    live = Lead.objects.filter(workspace=workspace, deleted_at__isnull=True)
    valid_ids = []
    for value in ids:
        try:
            valid_ids.append(str(uuid.UUID(value)))
        except ValueError:
            continue
    for pk in live.filter(pk__in=valid_ids).values_list("pk", flat=True):
        found[str(pk)] = str(pk)
    for pk, email in live.filter(email__in=emails).order_by("-created_at").values_list("pk", "email"):
        found[email] = str(pk)
    return found


def batch_ingest(
    *, workspace, payload: Any, site: TrackingSite | None, user_agent: str, bot_reason: str = "", now: datetime | None = None
) -> BatchResult:
    """Stores the batch's valid events. `site` is None for a server using a bearer token."""
    now = now or timezone.now()
    if not isinstance(payload, dict):
        raise BatchError("Send a JSON object with an events list.", {"events": "Required."})
    unknown = sorted(set(payload) - {"events", "visitorId", "siteKey", "context"})
    if unknown:
        raise BatchError(f"Unknown field {unknown[0]!r}.", {unknown[0]: "Unknown field; send events, visitorId, siteKey, context."})
    events = payload.get("events")
    if not isinstance(events, list) or not events:
        raise BatchError("events must be a non-empty list.", {"events": "A non-empty list of events."})
    limit = settings.TRACK_MAX_EVENTS_PER_BATCH
    if len(events) > limit:
        raise BatchError(f"At most {limit} events a request.", {"events": f"At most {limit} events a request."})
    default_visitor = payload.get("visitorId") or ""
    if not isinstance(default_visitor, str):
        raise BatchError("visitorId must be a string.", {"visitorId": "Must be a string."})
    context = payload.get("context") if isinstance(payload.get("context"), dict) else {}
    server = site is None
    known = _known_leads(workspace, events) if server else None
    # A server's user agent is its HTTP library's, which the crawler list names: only a browser's is judged.
    reason = bot_reason or ("" if server else bot_reason_for_user_agent(user_agent))
    if not reason and not server and context.get("js") is not True:
        # The snippet always says it ran; a browser beacon without it did not execute our script.
        reason = "no_js"

    result = BatchResult()
    rows = []
    for index, raw in enumerate(events):
        try:
            fields = parse_event(raw, default_visitor=default_visitor, server=server, now=now, known_leads=known)
        except _EventInvalid as error:
            key = f"events[{index}].{error.key}" if error.key else f"events[{index}]"
            result.errors.append({"index": index, "fields": {key: str(error)}})
            continue
        rows.append(fields)
        if fields["visitor_key"]:
            result.visitor_keys.add(fields["visitor_key"])
        elif fields["lead_id"]:
            result.lead_ids.add(fields["lead_id"])
    if rows:
        track_events_insert(rows=rows, workspace=workspace, site=site, received_at=now, user_agent=user_agent[:300], bot_reason=reason)
    result.accepted = len(rows)
    return result


# The batch travels as one JSON parameter and PostgreSQL unpacks it: Django's bulk_create would
# prepare every field of every row in Python, which cost more than the rest of the request.
_INSERT_SQL = f"""
INSERT INTO {TrackEvent._meta.db_table}
    (workspace_id, site_id, received_at, user_agent, is_bot, bot_reason, {", ".join(_ROW_COLUMNS)})
SELECT %s, %s, %s, %s, %s, %s, {", ".join(f"e.{column}" for column in _ROW_COLUMNS)}
FROM jsonb_to_recordset(%s::jsonb) AS e({", ".join(f"{column} {kind}" for column, kind in _ROW_COLUMNS.items())})
ON CONFLICT DO NOTHING
"""


def track_events_insert(*, rows: list[dict[str, Any]], workspace, site, received_at, user_agent: str, bot_reason: str) -> None:
    """Stores parsed events (parse_event's fields) in one statement; an event whose messageId the
    workspace already has is skipped, so a retried batch is stored once."""
    connection = connections[router.db_for_write(TrackEvent)]
    if connection.vendor != "postgresql":
        common = {
            "workspace": workspace,
            "site": site,
            "received_at": received_at,
            "user_agent": user_agent,
            "is_bot": bool(bot_reason),
            "bot_reason": bot_reason,
        }
        TrackEvent.objects.bulk_create([TrackEvent(**common, **fields) for fields in rows], ignore_conflicts=True)
        return
    document = json.dumps([{**fields, "occurred_at": fields["occurred_at"].isoformat()} for fields in rows])
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_SQL,
            [workspace.pk, site.pk if site else None, received_at, user_agent, bool(bot_reason), bot_reason, document],
        )
