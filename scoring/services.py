"""Scoring writes: the versioned model, rescoring leads (one or a batch, set-based), and what a
band crossing sets off. The engine (scoring.engine) decides; this module gathers facts, stores
the result and reports crossings once."""

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
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
    """Rescores the leads with a fixed number of queries per call: lock the rows, gather facts,
    score in memory, then one bulk UPDATE and one bulk INSERT of score changes. Leads whose score
    and band did not change are not written. A band change is reported once: the row lock makes
    concurrent rescoring of a lead wait, so the second sees the first's band."""
    at = at or timezone.now()
    model = active_model(workspace_id=workspace_id)
    with transaction.atomic():
        locked = list(
            Lead.objects.filter(workspace_id=workspace_id, pk__in=list(lead_ids), deleted_at__isnull=True)
            .select_for_update(skip_locked=skip_locked)
            .values_list("pk", flat=True)
        )
        if not locked:
            return []
        changed_leads, changes, activities = [], [], []
        for lead_id, (row, facts) in facts_for(locked, model.config).items():
            total = engine.score(facts, model.config, at).total_score
            band = engine.band_for(total, model.thresholds)
            band_name = band.stage if band else ""
            if total == row["score"] and band_name == row["score_band"]:
                continue
            previous_band = model.thresholds.band(row["score_band"]) if row["score_band"] else None
            crossed = engine.crossed(previous_band, band) if band_name != row["score_band"] else None
            if crossed is not None and previous_band is None and crossed == model.thresholds.bands[0]:
                crossed = None  # a first score in the lowest band crosses nothing
            lead = Lead(
                pk=lead_id, score=total, score_band=band_name, lifecycle_stage=row["lifecycle_stage"], qualified_at=row["qualified_at"]
            )
            upward = crossed is not None and (previous_band is None or crossed.min_score > previous_band.min_score)
            if upward and crossed.lifecycle_stage and _rank(crossed.lifecycle_stage) > _rank(row["lifecycle_stage"]):
                lead.lifecycle_stage = crossed.lifecycle_stage
                if crossed.lifecycle_stage in (LifecycleStage.MQL, LifecycleStage.SQL) and lead.qualified_at is None:
                    lead.qualified_at = at
            changed_leads.append(lead)
            change = ScoreChange(
                workspace_id=workspace_id,
                lead_id=lead_id,
                previous_score=row["score"],
                new_score=total,
                previous_band=row["score_band"],
                new_band=band_name,
                threshold_crossed=crossed.stage if crossed else "",
                reason=reason[:MAX_REASON],
                model_version=model.version,
                created_at=at if at <= timezone.now() else timezone.now(),
            )
            changes.append(change)
            if crossed is not None:
                activities.append(
                    LeadActivity(
                        workspace_id=workspace_id,
                        lead_id=lead_id,
                        type=ActivityType.SCORE_BAND_CHANGED,
                        data={
                            "fromBand": row["score_band"] or None,
                            "toBand": band_name,
                            "fromScore": row["score"],
                            "toScore": total,
                            "reason": reason[:MAX_REASON],
                            "lifecycleStage": lead.lifecycle_stage if lead.lifecycle_stage != row["lifecycle_stage"] else None,
                        },
                        created_at=change.created_at,
                    )
                )
        if not changes:
            return []
        _write_scores(changed_leads)
        ScoreChange.objects.bulk_create(changes, batch_size=1000)
        LeadActivity.objects.bulk_create(activities)
        crossings = [change for change in changes if change.threshold_crossed]
        if crossings:
            from scoring.events import announce_crossings

            transaction.on_commit(lambda: announce_crossings(crossings, model_version=model.version, thresholds=model.thresholds))
    return changes


def _write_scores(leads: list[Lead]) -> None:
    """One UPDATE … FROM (VALUES …) per 1,000 leads on PostgreSQL. Django's bulk_update builds a
    CASE expression per row and field, which cost more than the scoring itself at this size."""
    if connection.vendor != "postgresql":
        Lead.objects.bulk_update(leads, ["score", "score_band", "lifecycle_stage", "qualified_at"], batch_size=500)
        return
    with connection.cursor() as cursor:
        for start in range(0, len(leads), WRITE_BATCH):
            chunk = leads[start : start + WRITE_BATCH]
            rows = ", ".join(["(%s::uuid, %s::integer, %s::varchar, %s::varchar, %s::timestamptz)"] * len(chunk))
            params = [value for lead in chunk for value in (lead.pk, lead.score, lead.score_band, lead.lifecycle_stage, lead.qualified_at)]
            cursor.execute(
                "UPDATE leads SET score = v.score, score_band = v.band, lifecycle_stage = v.stage, qualified_at = v.qualified "
                f"FROM (VALUES {rows}) AS v(id, score, band, stage, qualified) WHERE leads.id = v.id",
                params,
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
