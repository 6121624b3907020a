"""What happens to a lead after capture, step by step: received → validated → deduplicated → ready.

Each step claims its transition with a conditional UPDATE, so a step runs once even when the task
is delivered twice. Hooks named in settings.LEAD_PROCESSING_HOOKS (enrichment providers, later
scoring) run between validation and deduplication; a hook raises TransientError for a failure
worth retrying. process() is process_many() for one lead (and those it takes along): one code path.
"""

import json
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Subquery
from django.utils import timezone
from django.utils.module_loading import import_string

from leads.models import ActivityType, Lead, LeadActivity, ProcessingState
from leads.normalization import assess_phone, email_kind

PENDING_STATES = (ProcessingState.RECEIVED, ProcessingState.VALIDATED, ProcessingState.DEDUPLICATED)


class TransientError(Exception):
    """A failure that may pass (a provider timing out, a 5xx): the task retries with backoff."""


def _run_hooks(lead: Lead) -> None:
    for path in getattr(settings, "LEAD_PROCESSING_HOOKS", ()):
        import_string(path)(lead)


def process(lead_id, *, along=()) -> str | None:
    """Runs the steps the lead has not done yet (with the leads `along` it, as one batch); returns its
    final state (None if it is gone). Its hook's failure is raised, for the task to retry; a failure
    of a lead along it is left to that lead's own message."""
    outcome = process_many([lead_id, *along])
    failed = {str(failed_id): error for failed_id, error in outcome.failed.items()}
    if str(lead_id) in failed:
        raise failed[str(lead_id)]
    return Lead.objects.filter(pk=lead_id, deleted_at__isnull=True).values_list("processing_state", flat=True).first()


@dataclass
class BatchOutcome:
    ready: list = field(default_factory=list)  # the leads this call moved to ready
    failed: dict = field(default_factory=dict)  # lead id → the error its hook raised; the lead stays validated


_CLAIM_SQL = """
UPDATE leads SET processing_state = %s, processing_state_at = %s{derived_set}
{derived_from}WHERE leads.id IN (
    SELECT id FROM leads WHERE id = ANY(%s::uuid[]) AND processing_state = %s ORDER BY id FOR UPDATE
){derived_where}
RETURNING leads.id
"""
_DERIVED_FIELDS = ("email_kind", "phone_country", "validation_warnings")


def _claim(lead_ids, from_state: str, to_state: str, *, derived: dict | None = None) -> list:
    """Moves the leads still in `from_state` to `to_state`, writing `derived` (for each of
    `lead_ids`, its email_kind, phone_country and validation_warnings) in the same row write; returns the ids it
    moved. The rows are locked in id order, so claims of overlapping batches cannot deadlock each
    other; a concurrent claim of the same step waits, then sees the new state and skips them.

    On PostgreSQL one statement: a lead is rewritten with all its index entries on every write
    (processing_state is indexed), so the derived fields ride along with the state instead of
    costing a write of their own, and Django does not compile a SELECT and an UPDATE of an IN
    list per step (~40% of a batch's claims). Elsewhere the ORM, in a transaction."""
    if not lead_ids:
        return []
    connection = connections[router.db_for_write(Lead)]
    now = timezone.now()
    if connection.vendor != "postgresql":
        return _claim_orm(lead_ids, from_state, to_state, derived=derived, now=now)
    if derived:
        ids = list(lead_ids)
        statement = _CLAIM_SQL.format(
            derived_set=", email_kind = v.email_kind, phone_country = v.phone_country, validation_warnings = v.warnings",
            derived_from="FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::jsonb[]) AS v(id, email_kind, phone_country, warnings)\n",
            derived_where=" AND leads.id = v.id",
        )
        kinds, countries, warnings = zip(*(derived[lead_id] for lead_id in ids), strict=True)
        params = [to_state, now, ids, list(kinds), list(countries), [json.dumps(value) for value in warnings], ids, from_state]
    else:
        statement = _CLAIM_SQL.format(derived_set="", derived_from="", derived_where="")
        params = [to_state, now, list(lead_ids), from_state]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return [row[0] for row in cursor.fetchall()]


def _claim_orm(lead_ids, from_state: str, to_state: str, *, derived: dict | None, now) -> list:
    with transaction.atomic():
        claimed = list(
            Lead.objects.filter(pk__in=lead_ids, processing_state=from_state)
            .select_for_update()
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if claimed:
            Lead.objects.filter(pk__in=claimed).update(processing_state=to_state, processing_state_at=now)
        if derived:
            rows = [Lead(pk=lead_id, **dict(zip(_DERIVED_FIELDS, derived[lead_id], strict=True))) for lead_id in claimed]
            Lead.objects.bulk_update(rows, _DERIVED_FIELDS)
    return claimed


def _derived(rows) -> dict:
    """What validation re-derives for each received lead (capture checks it for every lead, whatever
    its path; the API skips capture): lead id → (email_kind, phone_country, validation_warnings).
    `rows` are (id, email, phone, warnings, the workspace's default region)."""
    derived = {}
    for lead_id, email, phone, warnings, region in rows:
        _, phone_country, phone_warnings = assess_phone(phone, region)
        warnings = warnings + [warning for warning in phone_warnings if warning not in warnings]
        derived[lead_id] = (email_kind(email) if email else "", phone_country, warnings)
    return derived


def _run_hooks_many(lead_ids, outcome: BatchOutcome) -> list:
    """Runs the hooks per lead (they are per lead by nature) on the leads re-read after validation,
    as process() shows them; returns the ids whose hooks passed and records the others as failed."""
    if not getattr(settings, "LEAD_PROCESSING_HOOKS", ()):
        return lead_ids
    for lead in Lead.objects.select_related("workspace").filter(pk__in=lead_ids, processing_state=ProcessingState.VALIDATED):
        try:
            _run_hooks(lead)
        except Exception as error:  # noqa: BLE001 - one lead's hook must not stop the batch
            outcome.failed[lead.pk] = error
    return [lead_id for lead_id in lead_ids if lead_id not in outcome.failed]


def leads_waiting_with(lead_id, *, limit: int) -> list:
    """Other leads of `lead_id`'s workspace still waiting to be processed (received), oldest first."""
    if limit <= 0:
        return []
    workspace = Lead.objects.filter(pk=lead_id).values("workspace_id")[:1]
    return list(
        Lead.objects.filter(workspace_id=Subquery(workspace), processing_state=ProcessingState.RECEIVED, deleted_at__isnull=True)
        .exclude(pk=lead_id)
        .order_by("processing_state_at")
        .values_list("pk", flat=True)[:limit]
    )


def process_many(lead_ids) -> BatchOutcome:
    """Takes a batch through the steps in a number of statements that does not grow with it:
    each step is claimed for all its leads at once, and scoring and segments run once per
    workspace. Every lead ends as if processed alone, with its own `processed` activity;
    deleted leads and leads past these steps are left alone. A lead whose hook raises stays
    validated and is returned in `failed`, for the caller to retry alone; the others go on."""
    from leads.segments.services import lead_segments_refresh
    from scoring.services import leads_rescore

    outcome = BatchOutcome()
    rows = list(
        Lead.objects.filter(pk__in=list(dict.fromkeys(lead_ids)), deleted_at__isnull=True).values_list(
            "pk", "processing_state", "email", "phone", "validation_warnings", "workspace__default_region"
        )
    )
    trails: dict = {row[0]: [] for row in rows}
    initially = defaultdict(list)
    for lead_id, state, *_ in rows:
        initially[state].append(lead_id)

    # Without hooks nothing runs between validation and deduplication: one claim takes a lead
    # through both (one row write instead of two), and its trail still names both steps.
    # As in process(), a lead that a concurrent call validated first is left to that call.
    has_hooks = bool(getattr(settings, "LEAD_PROCESSING_HOOKS", ()))
    received = _derived(
        (lead_id, email, phone, warnings, region)
        for lead_id, state, email, phone, warnings, region in rows
        if state == ProcessingState.RECEIVED
    )
    validated = _claim(
        list(received), ProcessingState.RECEIVED, ProcessingState.VALIDATED if has_hooks else ProcessingState.DEDUPLICATED, derived=received
    )
    for lead_id in validated:
        trails[lead_id] += [ProcessingState.VALIDATED] if has_hooks else [ProcessingState.VALIDATED, ProcessingState.DEDUPLICATED]
    hooked = _run_hooks_many((validated if has_hooks else []) + initially[ProcessingState.VALIDATED], outcome)
    for lead_id in _claim(hooked, ProcessingState.VALIDATED, ProcessingState.DEDUPLICATED):
        trails[lead_id].append(ProcessingState.DEDUPLICATED)

    # Re-read after the hooks (which may change a lead) as process() does: the activity shows the
    # warnings as they are now, and a lead a concurrent call took further is not scored here.
    workspace_of, warnings_of, by_workspace = {}, {}, defaultdict(list)
    candidates = hooked + (validated if not has_hooks else []) + initially[ProcessingState.DEDUPLICATED]
    if candidates:
        for lead_id, workspace_id, warnings in Lead.objects.filter(
            pk__in=candidates, processing_state=ProcessingState.DEDUPLICATED
        ).values_list("pk", "workspace_id", "validation_warnings"):
            workspace_of[lead_id], warnings_of[lead_id] = workspace_id, warnings
            by_workspace[workspace_id].append(lead_id)
    for workspace_id, ids in by_workspace.items():
        # leads_rescore returns a change for each lead whose score or band it changed: process()
        # marks exactly those "scored".
        for change in leads_rescore(workspace_id=workspace_id, lead_ids=ids, reason="captured"):
            trails[change.lead_id].append("scored")
        lead_segments_refresh(workspace_id=workspace_id, lead_ids=ids, reason="captured")
    if workspace_of:
        with transaction.atomic():
            outcome.ready = _claim(list(workspace_of), ProcessingState.DEDUPLICATED, ProcessingState.READY)
            LeadActivity.objects.bulk_create(
                [
                    LeadActivity(
                        workspace_id=workspace_of[lead_id],
                        lead_id=lead_id,
                        type=ActivityType.PROCESSED,
                        data={"states": [*trails[lead_id], ProcessingState.READY], "warnings": warnings_of[lead_id]},
                    )
                    for lead_id in outcome.ready
                ]
            )
    return outcome


def mark_failed(lead_id) -> None:
    Lead.objects.filter(pk=lead_id, processing_state__in=PENDING_STATES).update(
        processing_state=ProcessingState.FAILED, processing_state_at=timezone.now()
    )
