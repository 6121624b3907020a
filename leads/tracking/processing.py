"""Turns stored events into sessions, identities and engagement, one visitor at a time.

Each visitor is processed under a row lock on its Visitor, so two workers never sessionize the
same browser at once; counters are added with single UPDATE statements (n = n + k), so events of
one lead arriving through several visitors or workers at once are all counted.
"""

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlparse

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, Count, F, Max, Min, Q, Value, When
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from integrations.mapping import MappingError, map_payload
from leads.models import ActivityType, Lead, LeadActivity, SourceType
from leads.tracking.models import EventKind, IdentityConflict, LeadEngagement, TrackEvent, TrackingSite, TrackSession, Visitor

BATCH_SIZE = 1000
VISITOR_IDENTIFY_SALT = "leadsmgr.tracking.identify"
SEARCH_ENGINES = {"google": "google", "bing": "bing", "duckduckgo": "duckduckgo", "yahoo": "yahoo", "baidu": "baidu", "yandex": "yandex"}


@dataclass
class Touch:
    at: datetime
    source: str
    medium: str
    campaign: str


@dataclass
class EngagementDelta:
    """What a batch (or a stitched history) adds to a lead's engagement."""

    sessions: int = 0
    pageviews: int = 0
    events: int = 0
    emails_opened: int = 0
    emails_clicked: int = 0
    touches: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    first_touch: Touch | None = None
    last_touch: Touch | None = None

    def seen(self, at: datetime) -> None:
        self.first_seen = at if self.first_seen is None else min(self.first_seen, at)
        self.last_seen = at if self.last_seen is None else max(self.last_seen, at)

    def touch(self, touch: Touch) -> None:
        self.touches += 1
        if self.first_touch is None or touch.at < self.first_touch.at:
            self.first_touch = touch
        if self.last_touch is None or touch.at >= self.last_touch.at:
            self.last_touch = touch

    def count(self, event: TrackEvent) -> None:
        """Counts one event that is not a bot's."""
        if event.kind == EventKind.PAGE_LEAVE:
            return
        self.events += 1
        if event.kind == EventKind.PAGEVIEW:
            self.pageviews += 1
        if event.kind == EventKind.EMAIL and event.name == "email_opened":
            self.emails_opened += 1
            return  # mail clients fetch images on their own: an open does not say the person was here
        if event.kind == EventKind.EMAIL and event.name == "email_clicked":
            self.emails_clicked += 1
            self.touch(Touch(event.occurred_at, "email", "email", str(event.properties.get("campaign") or "")[:200]))
        self.seen(event.occurred_at)

    def add(self, other: "EngagementDelta") -> None:
        for name in ("sessions", "pageviews", "events", "emails_opened", "emails_clicked"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for at in (other.first_seen, other.last_seen):
            if at is not None:
                self.seen(at)
        self.touches += other.touches
        if other.first_touch and (self.first_touch is None or other.first_touch.at < self.first_touch.at):
            self.first_touch = other.first_touch
        if other.last_touch and (self.last_touch is None or other.last_touch.at >= self.last_touch.at):
            self.last_touch = other.last_touch

    @property
    def empty(self) -> bool:
        return not (self.sessions or self.events or self.touches)


def session_timeout() -> timedelta:
    return timedelta(minutes=settings.TRACK_SESSION_TIMEOUT_MINUTES)


def touch_for(*, url: str, referrer: str, properties: dict, at: datetime) -> Touch | None:
    """Where a visit came from: its UTM parameters, else an outside referrer; None when direct."""
    query = parse_qs(urlparse(url).query) if url else {}
    utm = properties.get("utm") if isinstance(properties.get("utm"), dict) else {}

    def param(name: str) -> str:
        value = utm.get(name.removeprefix("utm_")) or utm.get(name) or (query.get(name) or [""])[0]
        return str(value)[:200]

    if param("utm_source"):
        return Touch(at, param("utm_source"), param("utm_medium"), param("utm_campaign"))
    if referrer:
        ref_host = (urlparse(referrer).hostname or "").removeprefix("www.")
        own_host = (urlparse(url).hostname or "").removeprefix("www.")
        if ref_host and ref_host != own_host:
            engine = next((name for key, name in SEARCH_ENGINES.items() if key in ref_host.split(".")), None)
            return Touch(at, engine or ref_host[:200], "organic" if engine else "referral", "")
    return None


def engagement_add(*, workspace_id, lead_id, delta: EngagementDelta) -> None:
    """Adds the delta in one UPDATE; the row is created first if the lead has none."""
    if delta.empty:
        return
    LeadEngagement.objects.bulk_create([LeadEngagement(lead_id=lead_id, workspace_id=workspace_id)], ignore_conflicts=True)
    updates: dict = {
        "total_sessions": F("total_sessions") + delta.sessions,
        "total_pageviews": F("total_pageviews") + delta.pageviews,
        "total_events": F("total_events") + delta.events,
        "emails_opened": F("emails_opened") + delta.emails_opened,
        "emails_clicked": F("emails_clicked") + delta.emails_clicked,
        "touch_count": F("touch_count") + delta.touches,
    }
    if delta.first_seen is not None:
        updates["first_seen_at"] = Least(Coalesce(F("first_seen_at"), Value(delta.first_seen)), Value(delta.first_seen))
        updates["last_seen_at"] = Greatest(Coalesce(F("last_seen_at"), Value(delta.last_seen)), Value(delta.last_seen))
    if delta.first_touch is not None:
        earlier = Q(first_touch_at__isnull=True) | Q(first_touch_at__gt=delta.first_touch.at)
        for part in ("at", "source", "medium", "campaign"):
            updates[f"first_touch_{part}"] = Case(
                When(earlier, then=Value(getattr(delta.first_touch, part))), default=F(f"first_touch_{part}")
            )
    if delta.last_touch is not None:
        later = Q(last_touch_at__isnull=True) | Q(last_touch_at__lte=delta.last_touch.at)
        for part in ("at", "source", "medium", "campaign"):
            updates[f"last_touch_{part}"] = Case(When(later, then=Value(getattr(delta.last_touch, part))), default=F(f"last_touch_{part}"))
    LeadEngagement.objects.filter(lead_id=lead_id).update(**updates)


def history_delta(*, events, sessions) -> EngagementDelta:
    """The engagement of already-processed events and sessions, aggregated in the database."""
    delta = EngagementDelta()
    # Events still waiting are counted by the processor when it gets to them.
    human = events.filter(is_bot=False, processed_at__isnull=False).exclude(kind=EventKind.PAGE_LEAVE)
    totals = human.aggregate(
        events=Count("id"),
        pageviews=Count("id", filter=Q(kind=EventKind.PAGEVIEW)),
        opened=Count("id", filter=Q(name="email_opened")),
        clicked=Count("id", filter=Q(name="email_clicked")),
        first=Min("occurred_at", filter=~Q(name="email_opened")),
        last=Max("occurred_at", filter=~Q(name="email_opened")),
    )
    delta.events, delta.pageviews = totals["events"], totals["pageviews"]
    delta.emails_opened, delta.emails_clicked = totals["opened"], totals["clicked"]
    if totals["first"] is not None:
        delta.seen(totals["first"])
        delta.seen(totals["last"])
    for session in sessions.filter(is_bot=False).only("started_at", "source", "medium", "campaign").order_by("started_at"):
        delta.sessions += 1
        if session.source:
            delta.touch(Touch(session.started_at, session.source, session.medium, session.campaign))
    for clicked in human.filter(name="email_clicked").only("occurred_at", "properties"):
        delta.touch(Touch(clicked.occurred_at, "email", "email", str(clicked.properties.get("campaign") or "")[:200]))
    return delta


@transaction.atomic
def lead_engagement_rebuild(*, lead: Lead) -> None:
    """Recounts one lead's engagement from its events and sessions (after a merge moved them)."""
    LeadEngagement.objects.filter(lead=lead).select_for_update().first()
    LeadEngagement.objects.filter(lead=lead).delete()
    delta = history_delta(events=TrackEvent.objects.filter(lead=lead), sessions=TrackSession.objects.filter(lead=lead))
    engagement_add(workspace_id=lead.workspace_id, lead_id=lead.pk, delta=delta)


def track_events_process(*, workspace_id, visitor_keys=(), lead_ids=()) -> int:
    """Processes the waiting events of these visitors and of these leads (server/email events
    without a visitor). Idempotent: only events not yet processed are touched."""
    done = 0
    for key in sorted(set(visitor_keys)):
        done += _process_visitor(workspace_id, key)
    for lead_id in sorted({str(lead_id) for lead_id in lead_ids}):
        done += _process_lead_events(workspace_id, lead_id)
    return done


def _live_lead(lead: Lead | None) -> Lead | None:
    """A merged lead's events belong to the lead it was merged into."""
    seen = 0
    while lead is not None and lead.merged_into_id is not None and seen < 5:
        lead, seen = lead.merged_into, seen + 1
    if lead is not None and lead.deleted_at is not None:
        return None
    return lead


@transaction.atomic
def _process_lead_events(workspace_id, lead_id: str) -> int:
    events = list(
        TrackEvent.objects.filter(workspace_id=workspace_id, lead_id=lead_id, visitor_key="", processed_at__isnull=True)
        .select_for_update(skip_locked=True)
        .order_by("occurred_at", "id")[:BATCH_SIZE]
    )
    if not events:
        return 0
    delta = EngagementDelta()
    now = timezone.now()
    for event in events:
        if not event.is_bot:
            delta.count(event)
        event.processed_at = now
    # One value for all: a plain UPDATE, not bulk_update's CASE per row.
    TrackEvent.objects.filter(pk__in=[event.pk for event in events]).update(processed_at=now)
    engagement_add(workspace_id=workspace_id, lead_id=lead_id, delta=delta)
    return len(events)


class _VisitorBatch:
    """The state of one visitor while its waiting events are processed."""

    def __init__(self, visitor: Visitor, events: list[TrackEvent]):
        self.visitor = visitor
        self.events = events
        self.delta = EngagementDelta()
        self.sessions: dict[int, TrackSession] = {}
        self.created_session_ids: set[int] = set()
        self.current = TrackSession.objects.filter(visitor=visitor).order_by("-last_event_at").first()
        self.sites: dict = {}
        self.now = timezone.now()

    def site(self, site_id) -> TrackingSite | None:
        if site_id is None:
            return None
        if site_id not in self.sites:
            self.sites[site_id] = TrackingSite.objects.filter(pk=site_id).first()
        return self.sites[site_id]


@transaction.atomic
def _process_visitor(workspace_id, visitor_key: str) -> int:
    pending = TrackEvent.objects.filter(workspace_id=workspace_id, visitor_key=visitor_key, processed_at__isnull=True)
    first = pending.order_by("occurred_at").first()
    if first is None:
        return 0
    Visitor.objects.bulk_create(
        [
            Visitor(
                workspace_id=workspace_id,
                visitor_key=visitor_key,
                first_seen_at=first.occurred_at,
                last_seen_at=first.occurred_at,
                user_agent=first.user_agent,
            )
        ],
        ignore_conflicts=True,
    )
    # No select_related("lead") here: after waiting for the lock, PostgreSQL re-reads the visitor row
    # but joins it to leads as they were when the statement began, so a lead another worker linked
    # meanwhile would come back as None and a second identity would be linked instead of recorded
    # as a conflict. visitor.lead is read after the lock, by its id.
    visitor = Visitor.objects.select_for_update().get(workspace_id=workspace_id, visitor_key=visitor_key)
    # Read again under the lock: another worker may have finished some of them meanwhile.
    events = list(pending.order_by("occurred_at", "id")[:BATCH_SIZE])
    if not events:
        return 0
    batch = _VisitorBatch(visitor, events)
    as_read = {event.pk: (json.dumps(event.properties, sort_keys=True), event.duration_seconds, event.scroll_depth) for event in events}
    for event in events:
        _flag_bot(batch, event)
        if event.kind == EventKind.PAGE_LEAVE:
            _page_left(batch, event)
            continue
        _sessionize(batch, event)
        if not event.is_bot:
            batch.delta.count(event)
            _identify(batch, event)
        visitor.last_seen_at = max(visitor.last_seen_at, event.occurred_at)
        visitor.first_seen_at = min(visitor.first_seen_at, event.occurred_at)

    lead = visitor.lead
    for session in batch.sessions.values():
        if session.lead_id is None and lead is not None:
            session.lead = lead
        session.save()
    # One UPDATE per (session, bot flag) (usually one for the whole batch) instead of bulk_update's
    # CASE per row and field, which cost more than the rest of the processing; the rare event whose
    # own fields changed (a page left, properties rewritten) is written with those fields only.
    groups: dict[tuple, list] = defaultdict(list)
    for event in events:
        groups[(event.session_id, event.is_bot, event.bot_reason)].append(event.pk)
    for (session_id, is_bot, bot_reason), ids in groups.items():
        TrackEvent.objects.filter(pk__in=ids).update(
            visitor=visitor, lead=lead, processed_at=batch.now, session_id=session_id, is_bot=is_bot, bot_reason=bot_reason
        )
    rewritten = [
        event
        for event in events
        if as_read[event.pk] != (json.dumps(event.properties, sort_keys=True), event.duration_seconds, event.scroll_depth)
    ]
    if rewritten:
        TrackEvent.objects.bulk_update(rewritten, ["properties", "duration_seconds", "scroll_depth"])
    for event in events:
        event.visitor, event.lead, event.processed_at = visitor, lead, batch.now
    visitor.save()
    if lead is not None:
        engagement_add(workspace_id=workspace_id, lead_id=lead.pk, delta=batch.delta)
    return len(events)


def _flag_bot(batch: _VisitorBatch, event: TrackEvent) -> None:
    visitor = batch.visitor
    if not visitor.is_bot and event.is_bot:
        visitor.is_bot, visitor.bot_reason = True, event.bot_reason
    if not visitor.is_bot:
        start = visitor.rate_window_start
        if start is None or event.received_at - start >= timedelta(minutes=1):
            visitor.rate_window_start, visitor.rate_window_events, visitor.rate_window_pageviews = event.received_at, 0, 0
        visitor.rate_window_events += 1
        visitor.rate_window_pageviews += event.kind == EventKind.PAGEVIEW
        if (
            visitor.rate_window_events > settings.TRACK_BOT_EVENTS_PER_MINUTE
            or visitor.rate_window_pageviews > settings.TRACK_BOT_PAGEVIEWS_PER_MINUTE
        ):
            visitor.is_bot, visitor.bot_reason = True, "rate"
    if visitor.is_bot and not event.is_bot:
        event.is_bot, event.bot_reason = True, visitor.bot_reason


def _sessionize(batch: _VisitorBatch, event: TrackEvent) -> None:
    visitor, current, at = batch.visitor, batch.current, event.occurred_at
    timeout = session_timeout()
    if current is None or at - current.last_event_at > timeout or at < current.started_at - timeout:
        touch = touch_for(url=event.url, referrer=event.referrer, properties=event.properties, at=at)
        current = TrackSession.objects.create(
            workspace_id=visitor.workspace_id,
            visitor=visitor,
            lead=visitor.lead,
            started_at=at,
            last_event_at=at,
            ended_at=at,
            source=touch.source if touch else "",
            medium=touch.medium if touch else "",
            campaign=touch.campaign if touch else "",
            referrer=event.referrer,
            landing_url=event.url,
            is_bot=event.is_bot,
        )
        batch.current = current
        batch.created_session_ids.add(current.pk)
        if not event.is_bot:
            batch.delta.sessions += 1
            if touch:
                batch.delta.touch(touch)
        if not visitor.landing_url and event.url:
            _first_touch(visitor, event)
    batch.sessions[current.pk] = current
    current.last_event_at = max(current.last_event_at, at)
    current.started_at = min(current.started_at, at)
    current.ended_at = max(current.ended_at, at)
    current.events += 1
    current.pageviews += event.kind == EventKind.PAGEVIEW
    # A session is a bot's when it began as one; a human session already counted stays counted.
    event.session = current


def _first_touch(visitor: Visitor, event: TrackEvent) -> None:
    query = parse_qs(urlparse(event.url).query)
    for name in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"):
        setattr(visitor, name, (query.get(name) or [""])[0][:200])
    visitor.referrer, visitor.landing_url = event.referrer, event.url


def _page_left(batch: _VisitorBatch, event: TrackEvent) -> None:
    """Records time on page and scroll depth on the pageview being left, and extends its session."""
    pageview_id = event.properties.get("pageviewId")
    pageview = next((e for e in batch.events if e.message_id == pageview_id and e.kind == EventKind.PAGEVIEW), None)
    in_batch = pageview is not None
    if pageview is None:
        pageview = TrackEvent.objects.filter(
            workspace_id=batch.visitor.workspace_id, message_id=pageview_id, visitor=batch.visitor, kind=EventKind.PAGEVIEW
        ).first()
    if pageview is None:
        return
    pageview.duration_seconds, pageview.scroll_depth = event.duration_seconds, event.scroll_depth
    if not in_batch:
        pageview.save(update_fields=["duration_seconds", "scroll_depth"])
    session = batch.sessions.get(pageview.session_id) if pageview.session_id else None
    if session is None and pageview.session_id:
        session = TrackSession.objects.filter(pk=pageview.session_id).first()
        if session is not None:
            batch.sessions[session.pk] = session
    if session is not None:
        session.ended_at = max(session.ended_at, pageview.occurred_at + timedelta(seconds=event.duration_seconds or 0))
    event.session = session


def _identify(batch: _VisitorBatch, event: TrackEvent) -> None:
    """Identify calls, email-click tokens and auto-capture events tie the visitor to a lead."""
    site = batch.site(event.site_id)
    if site is None and event.lead_id is not None:
        # A server naming the lead of a visitor's event says who the visitor is.
        named = _live_lead(event.lead)
        if named is not None:
            _link(batch, named, source="server", email=named.email, verified=True)
    if event.kind == EventKind.IDENTIFY:
        traits = event.properties.get("traits") or {}
        token = traits.get("leadToken")
        if token:
            lead = _lead_from_token(batch.visitor.workspace_id, token)
            if lead is None:
                event.properties["identifyError"] = "The lead token is invalid or expired."
                return
            _link(batch, lead, source="email_click", email=lead.email, verified=True)
            return
        fields = {key: value for key, value in traits.items() if key != "leadToken"}
        _capture(batch, event, site, fields, source_type=SourceType.TRACKING, source="identify")
        return
    if site is None or event.name not in site.auto_capture_events:
        return
    fields = event.properties.get("fields") if event.kind == EventKind.FORM else event.properties
    if not isinstance(fields, dict):
        return
    source_type = SourceType.FORM if event.name == "form_submitted" else SourceType.TRACKING
    _capture(batch, event, site, fields, source_type=source_type, source=event.name, required=site.auto_capture_required_fields)


def _capture(batch: _VisitorBatch, event: TrackEvent, site, fields: dict, *, source_type: str, source: str, required=("email",)) -> None:
    from leads.capture import CONSENT_PURPOSES, CREATED, Submission, lead_capture

    try:
        mapped = map_payload(fields, site.field_mapping if site else {})
    except MappingError as error:
        event.properties["captureError"] = {error.field: str(error)}
        return
    required_core = {"jobTitle": "title", "firstName": "first_name", "lastName": "last_name"}
    missing = [name for name in required if not mapped.core.get(required_core.get(name, name))]
    if missing or not mapped.core.get("email"):
        if event.kind == EventKind.IDENTIFY:
            event.properties["captureError"] = {"email": "An identify needs an email."}
        return
    visitor = batch.visitor
    core = dict(mapped.core)
    # The visitor's first touch is how this person came: it is the new lead's source.
    for name in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"):
        if getattr(visitor, name) and not core.get(name):
            core[name] = getattr(visitor, name)
    core.setdefault("source_referrer", visitor.referrer)
    core.setdefault("source_landing_url", visitor.landing_url or event.url)
    submission = Submission(
        core=core,
        custom_fields=mapped.custom_fields,
        tags=mapped.tags,
        consents={purpose: granted for purpose, granted in mapped.consents.items() if purpose in CONSENT_PURPOSES},
        policy_version=mapped.policy_version,
        source_type=source_type,
        dedup_strategy=site.dedup_strategy if site else "merge",
        user_agent=event.user_agent,
    )
    try:
        result = lead_capture(workspace=visitor.workspace, submission=submission)
    except ValidationError as error:
        event.properties["captureError"] = {key: " ".join(messages) for key, messages in error.message_dict.items()}
        return
    event.properties["capturedLeadId"] = str(result.lead.pk)
    # A lead this submission created is this visitor's; an existing lead matched by a typed email
    # is not proof of who is at the keyboard.
    _link(batch, result.lead, source=source, email=result.lead.email, verified=result.status == CREATED)


def _link(batch: _VisitorBatch, lead: Lead, *, source: str, email: str, verified: bool = False) -> None:
    """Stitches the visitor's anonymous history onto the lead, or records a conflict when the
    visitor already belongs to someone else (two people are never merged silently). `verified`:
    the link is proven (a signed email link, a server, a lead this visitor's own submission created)."""
    visitor = batch.visitor
    current = _live_lead(visitor.lead)
    if current is not None and current.pk == lead.pk:
        visitor.identity_verified = visitor.identity_verified or verified
        return
    if current is not None:
        IdentityConflict.objects.create(
            workspace_id=visitor.workspace_id,
            visitor=visitor,
            lead=current,
            attempted_email=email[:254],
            attempted_lead=lead,
            source=source,
        )
        LeadActivity.objects.create(
            workspace_id=visitor.workspace_id,
            lead=current,
            type=ActivityType.IDENTITY_CONFLICT,
            data={"visitorId": visitor.visitor_key, "attemptedEmail": email, "attemptedLeadId": str(lead.pk), "source": source},
        )
        return
    # Sessions opened by this batch are already in the batch's delta.
    history = history_delta(
        events=TrackEvent.objects.filter(visitor=visitor, lead__isnull=True),
        sessions=TrackSession.objects.filter(visitor=visitor, lead__isnull=True).exclude(pk__in=batch.created_session_ids),
    )
    stitched = TrackEvent.objects.filter(visitor=visitor, lead__isnull=True).update(lead=lead)
    TrackSession.objects.filter(visitor=visitor, lead__isnull=True).update(lead=lead)
    visitor.lead, visitor.identified_at, visitor.identity_verified = lead, batch.now, verified
    batch.delta.add(history)
    LeadActivity.objects.create(
        workspace_id=visitor.workspace_id,
        lead=lead,
        type=ActivityType.IDENTIFIED,
        data={"visitorId": visitor.visitor_key, "source": source, "stitchedEvents": stitched},
    )


def lead_identify_token(lead: Lead) -> str:
    """A signed token naming the lead, carried on email links so the site's snippet can identify."""
    return signing.dumps({"w": str(lead.workspace_id), "l": str(lead.pk)}, salt=VISITOR_IDENTIFY_SALT, compress=True)


def _lead_from_token(workspace_id, token) -> Lead | None:
    try:
        data = signing.loads(str(token), salt=VISITOR_IDENTIFY_SALT, max_age=settings.TRACK_IDENTIFY_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    if data.get("w") != str(workspace_id):
        return None
    return _live_lead(Lead.objects.filter(workspace_id=workspace_id, pk=data.get("l")).first())


def pending_work(*, workspace_id, limit: int, exclude: set[str] = frozenset()) -> tuple[list[str], list[str]]:
    """(visitor keys, lead ids) with events still waiting in the workspace, the longest waiting
    first; at most `limit` of each (the unprocessed index keeps this small); none of `exclude`
    (visitor keys, or lead ids of events without a visitor)."""
    waiting = TrackEvent.objects.filter(workspace_id=workspace_id, processed_at__isnull=True)
    visitors = waiting.exclude(visitor_key="").exclude(visitor_key__in=list(exclude))
    leads = waiting.filter(visitor_key="", lead__isnull=False).exclude(lead_id__in=[value for value in exclude if _is_uuid(value)])
    visitor_keys = list(
        visitors.values("visitor_key").annotate(first=Min("received_at")).order_by("first").values_list("visitor_key", flat=True)[:limit]
    )
    lead_ids = list(leads.values("lead_id").annotate(first=Min("received_at")).order_by("first").values_list("lead_id", flat=True)[:limit])
    return visitor_keys, [str(pk) for pk in lead_ids]


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def unprocessed_work(*, older_than: datetime, limit: int) -> list[tuple]:
    """(workspace id, visitor key, lead id) of events still waiting, oldest first."""
    rows = (
        TrackEvent.objects.filter(processed_at__isnull=True, received_at__lte=older_than)
        .values_list("workspace_id", "visitor_key", "lead_id")
        .order_by()
        .distinct()[:limit]
    )
    return list(rows)
