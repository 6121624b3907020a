"""Segment writes: create/update/delete, the set-based refresh (whole segment or a few leads), and
the enter/exit events it records. Membership changes are computed in SQL: an INSERT … SELECT for
the leads that entered and a DELETE for those that left, each returning the lead ids; on
PostgreSQL both are one statement evaluating the criteria once."""

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone

from leads.models import Lead
from leads.segments.actions import validate_automation
from leads.segments.criteria import CriteriaError, compile_criteria, validate_criteria
from leads.segments.models import REFRESH_MINUTES, RefreshInterval, Segment, SegmentEvent, SegmentEventKind, SegmentMembership

PREVIEW_MEMBERS = 20
EDITABLE = ("name", "description", "criteria", "refresh_interval", "automation")


def _clean_criteria(criteria) -> dict:
    try:
        return validate_criteria(criteria)
    except CriteriaError as error:
        raise ValidationError(error.errors) from None


def _clean(data: dict) -> dict:
    clean = dict(data)
    if "name" in clean:
        clean["name"] = (clean["name"] or "").strip()
        if not clean["name"]:
            raise ValidationError({"name": "A segment needs a name."})
        if len(clean["name"]) > Segment._meta.get_field("name").max_length:
            raise ValidationError({"name": f"At most {Segment._meta.get_field('name').max_length} characters."})
    if "criteria" in clean:
        clean["criteria"] = _clean_criteria(clean["criteria"])
    if "refresh_interval" in clean and clean["refresh_interval"] not in RefreshInterval.values:
        raise ValidationError({"refreshInterval": f"One of: {', '.join(RefreshInterval.values)}."})
    if "automation" in clean:
        clean["automation"] = validate_automation(clean["automation"])
    return clean


def matching_leads(*, workspace_id, criteria: dict, now: datetime) -> models.QuerySet:
    """The live leads of the workspace matching the criteria: one query."""
    return Lead.objects.filter(workspace_id=workspace_id).filter(compile_criteria(criteria, now=now))


def segment_preview(*, workspace, criteria, now: datetime | None = None, limit: int = PREVIEW_MEMBERS) -> dict:
    """Count and first members without saving anything."""
    now = now or timezone.now()
    leads = matching_leads(workspace_id=workspace.pk, criteria=_clean_criteria(criteria), now=now)
    return {"count": leads.count(), "members": list(leads.select_related("company").order_by("-score", "-created_at")[:limit])}


@transaction.atomic
def segment_create(
    *, workspace, name: str, criteria, description: str = "", refresh_interval: str = RefreshInterval.HOURLY, automation=None
):
    data = _clean({"name": name, "criteria": criteria, "refresh_interval": refresh_interval, "automation": automation or {}})
    segment = Segment.objects.create(workspace=workspace, description=description or "", **data)
    # The first refresh fills the segment: a baseline, so existing members fire no automations.
    segment_refresh(segment_id=segment.pk, baseline=True, reason="created")
    return Segment.objects.get(pk=segment.pk)


@transaction.atomic
def segment_update(*, segment: Segment, **data) -> Segment:
    data = _clean({key: value for key, value in data.items() if key in EDITABLE})
    criteria_changed = "criteria" in data and data["criteria"] != segment.criteria
    interval_changed = "refresh_interval" in data and data["refresh_interval"] != segment.refresh_interval
    for key, value in data.items():
        setattr(segment, key, value)
    segment.updated_at = timezone.now()
    if interval_changed:
        # The next run follows the new interval, not the one it was scheduled by.
        interval = timedelta(minutes=REFRESH_MINUTES[segment.refresh_interval])
        segment.next_refresh_at = (segment.last_refreshed_at or segment.updated_at) + interval
    segment.save()
    if criteria_changed:
        segment_refresh(segment_id=segment.pk, baseline=True, reason="criteria changed")
    return Segment.objects.get(pk=segment.pk)


def segment_automation_set(*, segment: Segment, automation) -> Segment:
    return segment_update(segment=segment, automation=automation)


def segment_delete(*, segment: Segment) -> None:
    segment.delete()


def _db(value):
    return models.UUIDField().get_db_prep_value(value, connection)


def _entering_sql(source: str) -> str:
    """Inserts the leads of `source` not yet members. Parameters: workspace, segment, now, those of
    `source`, segment."""
    return (
        "INSERT INTO segment_memberships (workspace_id, segment_id, lead_id, entered_at) "
        f"SELECT %s, %s, m.lead_pk, %s FROM {source} m "
        "WHERE NOT EXISTS (SELECT 1 FROM segment_memberships s WHERE s.segment_id = %s AND s.lead_id = m.lead_pk) "
        "RETURNING lead_id"
    )


def _leaving_sql(source: str, scope_sql: str) -> str:
    """Deletes the members not in `source`. Parameters: segment, the scope's, those of `source`."""
    return (
        f"DELETE FROM segment_memberships WHERE segment_id = %s{scope_sql} "
        f"AND NOT EXISTS (SELECT 1 FROM {source} m WHERE m.lead_pk = segment_memberships.lead_id) "
        "RETURNING lead_id"
    )


def _apply(segment: Segment, now: datetime, lead_ids: list | None) -> tuple[list, list]:
    """Inserts memberships for matching leads not yet in, deletes those no longer matching; both in
    SQL, restricted to `lead_ids` when given. Returns (entered ids, exited ids)."""
    # No ORDER BY: the leads' default ordering would sort every match for nothing.
    matching = matching_leads(workspace_id=segment.workspace_id, criteria=segment.criteria, now=now).order_by()
    if lead_ids is not None:
        matching = matching.filter(pk__in=lead_ids)
    # An explicit alias: SQLite does not name a subquery's "leads"."id" column `id`.
    match_sql, match_params = matching.annotate(lead_pk=models.F("pk")).values("lead_pk").query.sql_with_params()
    segment_id, workspace_id = _db(segment.pk), _db(segment.workspace_id)
    scope_sql, scope_params = "", []
    if lead_ids is not None:
        scope_sql = f" AND lead_id IN ({', '.join(['%s'] * len(lead_ids))})"
        scope_params = [_db(lead_id) for lead_id in lead_ids]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement, so the criteria (the costly part) are evaluated once for both changes.
            # Both parts see the memberships as they were before it; the segment row lock keeps
            # any other refresh of this segment out until commit.
            cursor.execute(
                f"WITH matching AS MATERIALIZED ({match_sql}), "
                f"entered AS ({_entering_sql('matching')}), exited AS ({_leaving_sql('matching', scope_sql)}) "
                "SELECT TRUE, lead_id FROM entered UNION ALL SELECT FALSE, lead_id FROM exited",
                [*match_params, workspace_id, segment_id, now, segment_id, segment_id, *scope_params],
            )
            rows = cursor.fetchall()
            return [lead_id for entry, lead_id in rows if entry], [lead_id for entry, lead_id in rows if not entry]
        # SQLite has no INSERT or DELETE inside WITH: the criteria run once per statement.
        cursor.execute(_entering_sql(f"({match_sql})"), [workspace_id, segment_id, now, *match_params, segment_id])
        entered = [row[0] for row in cursor.fetchall()]
        cursor.execute(_leaving_sql(f"({match_sql})", scope_sql), [segment_id, *scope_params, *match_params])
        exited = [row[0] for row in cursor.fetchall()]
    return entered, exited


def _events_insert(segment: Segment, kind: str, lead_ids: list, *, reason: str, at: datetime, started_at: datetime | None) -> list:
    """One `kind` event per lead, in one statement on PostgreSQL; returns the events' ids."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO segment_events (workspace_id, segment_id, lead_id, kind, reason, at, automations_started_at) "
                "SELECT %s, %s, lead_id, %s, %s, %s, %s FROM unnest(%s::uuid[]) AS lead_id RETURNING id",
                [_db(segment.workspace_id), _db(segment.pk), kind, reason, at, started_at, list(lead_ids)],
            )
            return [row[0] for row in cursor.fetchall()]
    field = SegmentEvent._meta.get_field("lead")
    events = SegmentEvent.objects.bulk_create(
        [
            SegmentEvent(
                workspace_id=segment.workspace_id,
                segment=segment,
                lead_id=field.to_python(lead_id),
                kind=kind,
                reason=reason,
                at=at,
                automations_started_at=started_at,
            )
            for lead_id in lead_ids
        ],
        batch_size=1000,
    )
    # SQLite before 3.35 returns no ids from a bulk insert.
    return [event.pk for event in events if event.pk is not None] or list(
        SegmentEvent.objects.filter(segment=segment, kind=kind, at=at, automations_started_at=started_at).values_list("pk", flat=True)
    )


def _record(segment: Segment, entered: list, exited: list, *, reason: str, now: datetime, baseline: bool) -> None:
    """Enter/exit events, and their automations after commit. A baseline (a new segment, new
    criteria) only sets membership: its entered_at says when, and nobody is notified about
    hundreds of leads that did nothing new."""
    if baseline:
        return
    automation = segment.automation or {}
    actions = {SegmentEventKind.ENTERED: automation.get("onEnter"), SegmentEventKind.EXITED: automation.get("onExit")}
    event_ids = []
    for kind, lead_ids in ((SegmentEventKind.ENTERED, entered), (SegmentEventKind.EXITED, exited)):
        if not lead_ids:
            continue
        # An event with nothing to run is done already; the sweeper looks only at the others.
        ids = _events_insert(segment, kind, lead_ids, reason=reason[:120], at=now, started_at=None if actions[kind] else now)
        if actions[kind]:
            event_ids.extend(ids)
    if not event_ids:
        return
    from leads.segments.tasks import enqueue_segment_automations

    transaction.on_commit(lambda: enqueue_segment_automations(event_ids))


def segment_refresh(*, segment_id, now: datetime | None = None, baseline: bool = False, reason: str = "refresh") -> tuple[int, int]:
    """Recomputes the whole segment; returns (entered, exited). The segment row is locked, so two
    refreshes of one segment never interleave."""
    now = now or timezone.now()
    with transaction.atomic():
        segment = Segment.objects.select_for_update().filter(pk=segment_id).first()
        if segment is None:
            return 0, 0
        entered, exited = _apply(segment, now, None)
        _record(segment, entered, exited, reason=reason, now=now, baseline=baseline)
        Segment.objects.filter(pk=segment.pk).update(
            member_count=SegmentMembership.objects.filter(segment=segment).count(),
            last_refreshed_at=now,
            next_refresh_at=now + timedelta(minutes=REFRESH_MINUTES[segment.refresh_interval]),
        )
    return len(entered), len(exited)


def lead_segments_refresh(*, workspace_id, lead_ids, reason: str, now: datetime | None = None) -> dict:
    """Re-evaluates every segment of the workspace for these leads only (a changed field, a new
    event, a new score): a lead enters or leaves within the request or task that changed it."""
    now = now or timezone.now()
    ids = list(dict.fromkeys(lead_ids))
    changes: dict = {}
    if not ids:
        return changes
    for segment_id in Segment.objects.filter(workspace_id=workspace_id).values_list("pk", flat=True):
        with transaction.atomic():
            segment = Segment.objects.select_for_update().filter(pk=segment_id).first()
            if segment is None:
                continue
            entered, exited = _apply(segment, now, ids)
            if entered or exited:
                _record(segment, entered, exited, reason=reason, now=now, baseline=False)
                Segment.objects.filter(pk=segment.pk).update(member_count=models.F("member_count") + len(entered) - len(exited))
                changes[segment.pk] = (len(entered), len(exited))
    return changes


def leads_reevaluate(*, workspace_id, lead_ids, reason: str) -> None:
    """After leads changed: rescore them, then re-evaluate their segments (score included)."""
    from scoring.services import leads_rescore

    leads_rescore(workspace_id=workspace_id, lead_ids=lead_ids, reason=reason)
    lead_segments_refresh(workspace_id=workspace_id, lead_ids=lead_ids, reason=reason)


def refresh_due_segments(*, now: datetime | None = None, limit: int = 50) -> int:
    """Beat: refreshes the segments whose interval has passed, each claimed by moving its next run."""
    now = now or timezone.now()
    done = 0
    for segment in Segment.objects.filter(next_refresh_at__lte=now).order_by("next_refresh_at")[:limit]:
        claimed = Segment.objects.filter(pk=segment.pk, next_refresh_at=segment.next_refresh_at).update(
            next_refresh_at=now + timedelta(minutes=REFRESH_MINUTES[segment.refresh_interval])
        )
        if claimed:
            segment_refresh(segment_id=segment.pk, now=now, reason="scheduled refresh")
            done += 1
    return done
