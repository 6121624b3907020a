"""Scoring writes: the versioned model, rescoring leads (one or a batch, set-based), and what a
band crossing sets off. The engine (scoring.engine) decides; this module gathers facts, stores
the result and reports crossings once."""

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from leads.models import ActivityType, Lead, LeadActivity, LifecycleStage
from leadsmgr.api.formats import iso_time
from scoring import engine
from scoring.config import ConfigError, ScoringModelConfig, Thresholds, parse_model, parse_thresholds
from scoring.facts import facts_for
from scoring.models import ScoreChange, ScoringModel
from scoring.presets import DEFAULT_THRESHOLD_PRESET, default_model_json, threshold_preset_json

LIFECYCLE_ORDER = [stage.value for stage in LifecycleStage]
MAX_REASON = 200
WRITE_BATCH = 1000


@dataclass(frozen=True)
class ActiveModel:
    pk: str
    version: int
    config: ScoringModelConfig
    thresholds: Thresholds


# A version is never changed once written (an edit is a new version), so its parse is kept by id.
_parsed_versions: dict = {}


def _active(model: ScoringModel) -> ActiveModel:
    parsed = _parsed_versions.get(model.pk)
    if parsed is None:
        parsed = _parsed_versions[model.pk] = (parse_model(model.config), parse_thresholds(model.thresholds))
    config, thresholds = parsed
    return ActiveModel(pk=str(model.pk), version=model.version, config=config, thresholds=thresholds)


def scoring_model_get_active(*, workspace_id) -> ScoringModel:
    """The active version; a workspace without one starts with seed 000's model (version 1)."""
    model = ScoringModel.objects.filter(workspace_id=workspace_id, is_active=True).first()
    if model is not None:
        return model
    try:
        with transaction.atomic():
            return ScoringModel.objects.create(
                workspace_id=workspace_id,
                version=1,
                config=default_model_json(),
                thresholds=threshold_preset_json(DEFAULT_THRESHOLD_PRESET),
            )
    except IntegrityError:  # created meanwhile by another request
        return ScoringModel.objects.get(workspace_id=workspace_id, is_active=True)


def active_model(*, workspace_id) -> ActiveModel:
    return _active(scoring_model_get_active(workspace_id=workspace_id))


def _validation_error(error: ConfigError, prefix: str) -> ValidationError:
    return ValidationError(
        {(f"{prefix}.{path}" if path and path != "non_field_errors" else prefix): message for path, message in error.errors.items()}
    )


@transaction.atomic
def scoring_model_update(*, workspace, actor=None, config: dict | None = None, thresholds: dict | None = None) -> ScoringModel:
    """An edit is a new version; the previous one is kept for the history. All leads are then
    rescored by the worker."""
    current = ScoringModel.objects.select_for_update().filter(workspace=workspace, is_active=True).first()
    if current is None:
        current = scoring_model_get_active(workspace_id=workspace.pk)
        current = ScoringModel.objects.select_for_update().get(pk=current.pk)
    new_config = current.config if config is None else config
    new_thresholds = current.thresholds if thresholds is None else thresholds
    errors: dict = {}
    try:
        parsed_config = parse_model(new_config)
    except ConfigError as error:
        errors.update(_validation_error(error, "config").message_dict)
    try:
        parsed_thresholds = parse_thresholds(new_thresholds)
    except ConfigError as error:
        errors.update(_validation_error(error, "thresholds").message_dict)
    if errors:
        raise ValidationError(errors)
    ScoringModel.objects.filter(pk=current.pk).update(is_active=False)
    model = ScoringModel.objects.create(
        workspace=workspace,
        version=current.version + 1,
        config=parsed_config.to_json(),
        thresholds=parsed_thresholds.to_json(),
        created_by=actor,
    )
    from scoring.tasks import enqueue_workspace_rescore

    transaction.on_commit(lambda: enqueue_workspace_rescore(workspace.pk, reason=f"scoring model v{model.version}"))
    return model


def score_breakdown(*, lead: Lead, at: datetime | None = None) -> dict:
    """The breakdown (seed 000's getBreakdown shape) at `at` (default now), with the model version."""
    at = at or timezone.now()
    model = active_model(workspace_id=lead.workspace_id)
    gathered = facts_for([lead.pk], model.config)
    if lead.pk not in gathered:
        raise ValidationError({"lead": "This lead is deleted."})
    breakdown = engine.score(gathered[lead.pk][1], model.config, at)
    band = engine.band_for(breakdown.total_score, model.thresholds)
    return {
        **breakdown.to_dict(),
        "band": band.stage if band else None,
        "modelVersion": model.version,
        "at": iso_time(at),
    }


def _rank(stage: str) -> int:
    return LIFECYCLE_ORDER.index(stage) if stage in LIFECYCLE_ORDER else -1


def leads_rescore(*, workspace_id, lead_ids, reason: str, at: datetime | None = None, skip_locked: bool = False) -> list[ScoreChange]:
    """Rescores the leads with a fixed number of queries per call: lock and read the rows, gather
    facts, score in memory, then one bulk UPDATE and one bulk INSERT of score changes. Leads whose
    score and band did not change are not written. A band change is reported once: the row lock
    makes concurrent rescoring of a lead wait, so the second sees the first's band."""
    return _rescore(workspace_id=workspace_id, lead_ids=lead_ids, reason=reason, at=at, skip_locked=skip_locked, every_change=True).changes


def leads_rescore_changed_ids(*, workspace_id, lead_ids, reason: str, at: datetime | None = None, skip_locked: bool = False) -> list:
    """leads_rescore for jobs that rescore whole workspaces: the same writes and the same reports of
    band crossings, but it returns only the ids of the leads whose score or band changed, so a
    decay run that changes every score builds no model object for a change that crossed nothing."""
    return _rescore(
        workspace_id=workspace_id, lead_ids=lead_ids, reason=reason, at=at, skip_locked=skip_locked, every_change=False
    ).lead_ids


@dataclass(frozen=True)
class _Rescored:
    lead_ids: list  # the leads whose score or band changed, in id order
    changes: list[ScoreChange]  # their ScoreChange rows when every change was asked for, else only the band crossings


def _rescore(*, workspace_id, lead_ids, reason: str, at: datetime | None, skip_locked: bool, every_change: bool) -> _Rescored:
    at = at or timezone.now()
    model = active_model(workspace_id=workspace_id)
    thresholds = model.thresholds
    reason = reason[:MAX_REASON]
    with transaction.atomic():
        gathered = facts_for(lead_ids, model.config, workspace_id=workspace_id, lock=True, skip_locked=skip_locked)
        # A future instant (a decay preview, the benchmark) is recorded as the time of writing.
        recorded_at = min(at, timezone.now())
        bands_by_stage = {band.stage: band for band in reversed(thresholds.bands)}  # the first band of a stage, as Thresholds.band
        scores: list[tuple] = []  # (lead id, score, band, lifecycle stage, qualified_at to set or None) to write
        history: list[tuple] = []  # (lead id, previous score, new score, previous band, new band, band crossed)
        crossings: list[tuple] = []  # (lead id, from band, to band, from score, to score, lifecycle stage set) per band crossed
        for lead_id, (state, facts) in gathered.items():
            total = engine.score(facts, model.config, at).total_score
            band = engine.band_for(total, thresholds)
            band_name = band.stage if band else ""
            if total == state.score and band_name == state.score_band:
                continue
            stage, qualified_at, crossed = state.lifecycle_stage, None, None
            if band_name != state.score_band:
                previous_band = bands_by_stage.get(state.score_band) if state.score_band else None
                crossed = engine.crossed(previous_band, band)
                if crossed is not None and previous_band is None and crossed == thresholds.bands[0]:
                    crossed = None  # a first score in the lowest band crosses nothing
                upward = crossed is not None and (previous_band is None or crossed.min_score > previous_band.min_score)
                if upward and crossed.lifecycle_stage and _rank(crossed.lifecycle_stage) > _rank(stage):
                    stage = crossed.lifecycle_stage
                    if stage in (LifecycleStage.MQL, LifecycleStage.SQL) and not state.is_qualified:
                        qualified_at = at
            scores.append((lead_id, total, band_name, stage, qualified_at))
            history.append((lead_id, state.score, total, state.score_band, band_name, crossed.stage if crossed else ""))
            if crossed is not None:
                crossings.append(
                    (lead_id, state.score_band, band_name, state.score, total, stage if stage != state.lifecycle_stage else None)
                )
        if not scores:
            return _Rescored(lead_ids=[], changes=[])
        _write_scores(scores)
        change_ids = _insert_history(workspace_id, history, reason=reason, model_version=model.version, created_at=recorded_at)
        _insert_band_activities(workspace_id, crossings, reason=reason, created_at=recorded_at)
        changes = [
            _saved_change(
                id=change_id,
                workspace_id=workspace_id,
                lead_id=lead_id,
                previous_score=previous_score,
                new_score=new_score,
                previous_band=previous_band,
                new_band=new_band,
                threshold_crossed=crossed,
                reason=reason,
                model_version=model.version,
                created_at=recorded_at,
            )
            for change_id, (lead_id, previous_score, new_score, previous_band, new_band, crossed) in zip(change_ids, history, strict=True)
            if every_change or crossed
        ]
        crossed_changes = changes if not every_change else [change for change in changes if change.threshold_crossed]
        if crossed_changes:
            from scoring.events import announce_crossings

            transaction.on_commit(lambda: announce_crossings(crossed_changes, model_version=model.version, thresholds=thresholds))
    return _Rescored(lead_ids=[row[0] for row in scores], changes=changes)


def _saved_change(**values) -> ScoreChange:
    """A ScoreChange for a row _insert_history wrote, marked as saved (as bulk_create leaves its objects)."""
    change = ScoreChange(**values)
    change._state.adding, change._state.db = False, connection.alias
    return change


def _write_scores(scores: list[tuple]) -> None:
    """(lead id, score, band, lifecycle stage, qualified_at) rows; qualified_at is set only where it
    is still empty (a lead is qualified once), so the rows never need to read it. One UPDATE … FROM
    unnest(arrays) on PostgreSQL, five parameters whatever the batch size: Django's bulk_update
    builds a CASE expression per row and field, which cost more than the scoring itself."""
    if connection.vendor != "postgresql":
        leads = [
            Lead(
                pk=pk,
                score=score,
                score_band=band,
                lifecycle_stage=stage,
                qualified_at=F("qualified_at") if qualified is None else Coalesce(F("qualified_at"), Value(qualified)),
            )
            for pk, score, band, stage, qualified in scores
        ]
        Lead.objects.bulk_update(leads, ["score", "score_band", "lifecycle_stage", "qualified_at"], batch_size=500)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE leads SET score = v.score, score_band = v.band, lifecycle_stage = v.stage, "
            "qualified_at = COALESCE(leads.qualified_at, v.qualified) "
            "FROM unnest(%s::uuid[], %s::integer[], %s::varchar[], %s::varchar[], %s::timestamptz[]) "
            "AS v(id, score, band, stage, qualified) WHERE leads.id = v.id",
            [list(column) for column in zip(*scores, strict=True)],
        )


def _insert_history(workspace_id, history: list[tuple], *, reason: str, model_version: int, created_at: datetime) -> list[int]:
    """One ScoreChange row per (lead id, previous score, new score, previous band, new band, band
    crossed); returns their ids in the same order. One INSERT … SELECT FROM unnest(arrays) on
    PostgreSQL: model objects and a 10-parameter row each cost more than the insert itself."""
    if connection.vendor != "postgresql":
        rows = [
            ScoreChange(
                workspace_id=workspace_id,
                lead_id=lead_id,
                previous_score=previous_score,
                new_score=new_score,
                previous_band=previous_band,
                new_band=new_band,
                threshold_crossed=crossed,
                reason=reason,
                model_version=model_version,
                created_at=created_at,
            )
            for lead_id, previous_score, new_score, previous_band, new_band, crossed in history
        ]
        return [row.pk for row in ScoreChange.objects.bulk_create(rows, batch_size=WRITE_BATCH)]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO score_changes (workspace_id, lead_id, previous_score, new_score, previous_band, new_band, threshold_crossed, "
            "reason, model_version, created_at) "
            "SELECT %s, v.lead_id, v.previous_score, v.new_score, v.previous_band, v.new_band, v.crossed, %s, %s, %s "
            "FROM unnest(%s::uuid[], %s::integer[], %s::integer[], %s::varchar[], %s::varchar[], %s::varchar[]) "
            "AS v(lead_id, previous_score, new_score, previous_band, new_band, crossed) "
            "RETURNING id, lead_id",
            [workspace_id, reason, model_version, created_at, *(list(column) for column in zip(*history, strict=True))],
        )
        # Matched by lead (each lead has one change per call) rather than trusting RETURNING's row order.
        ids = {lead_id: change_id for change_id, lead_id in cursor.fetchall()}
    return [ids[row[0]] for row in history]


def _insert_band_activities(workspace_id, crossings: list[tuple], *, reason: str, created_at: datetime) -> None:
    """A SCORE_BAND_CHANGED activity per (lead id, from band, to band, from score, to score, lifecycle
    stage set or None). On PostgreSQL one INSERT … SELECT FROM unnest(arrays) that builds each
    activity's JSON itself: a decay run crosses a band for about half of the leads it rescores."""
    if not crossings:
        return
    if connection.vendor != "postgresql":
        LeadActivity.objects.bulk_create(
            LeadActivity(
                workspace_id=workspace_id,
                lead_id=lead_id,
                type=ActivityType.SCORE_BAND_CHANGED,
                data={
                    "fromBand": from_band or None,
                    "toBand": to_band,
                    "fromScore": from_score,
                    "toScore": to_score,
                    "reason": reason,
                    "lifecycleStage": lifecycle_stage,
                },
                created_at=created_at,
            )
            for lead_id, from_band, to_band, from_score, to_score, lifecycle_stage in crossings
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO lead_activities (workspace_id, lead_id, type, data, created_at) "
            "SELECT %s, v.lead_id, %s, jsonb_build_object('fromBand', NULLIF(v.from_band, ''), 'toBand', v.to_band, "
            "'fromScore', v.from_score, 'toScore', v.to_score, 'reason', %s::text, 'lifecycleStage', v.lifecycle_stage), %s "
            "FROM unnest(%s::uuid[], %s::varchar[], %s::varchar[], %s::integer[], %s::integer[], %s::varchar[]) "
            "AS v(lead_id, from_band, to_band, from_score, to_score, lifecycle_stage)",
            [
                workspace_id,
                ActivityType.SCORE_BAND_CHANGED.value,
                reason,
                created_at,
                *(list(column) for column in zip(*crossings, strict=True)),
            ],
        )


def lead_rescore(*, lead: Lead, reason: str) -> ScoreChange | None:
    changes = leads_rescore(workspace_id=lead.workspace_id, lead_ids=[lead.pk], reason=reason)
    return changes[0] if changes else None


def lead_rescore_after_commit(*, lead: Lead, reason: str) -> None:
    """For services changing a lead's fields: rescore and re-evaluate its segments once their
    transaction has committed, still within the same request."""
    from leads.segments.services import leads_reevaluate

    # robust: the change is saved; a failed rescoring must not turn it into an error (the hourly job catches up).
    transaction.on_commit(lambda: leads_reevaluate(workspace_id=lead.workspace_id, lead_ids=[lead.pk], reason=reason), robust=True)
