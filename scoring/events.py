"""What a threshold crossing sets off, after the rescoring transaction committed: the in-process
`score_changed` signal, an outbound webhook event, and the band's actions (in a task)."""

import logging

from django.db import transaction
from django.dispatch import Signal

from scoring.models import ScoreChange

logger = logging.getLogger(__name__)

# Sent once per band crossing with event={leadId, previousScore, newScore, reason, stage,
# previousStage, thresholdCrossed, modelVersion, at} (seed 000's onScoreChange).
score_changed = Signal()


def score_change_event(change: ScoreChange) -> dict:
    return {
        "leadId": str(change.lead_id),
        "previousScore": change.previous_score,
        "newScore": change.new_score,
        "reason": change.reason,
        "stage": change.new_band or None,
        "previousStage": change.previous_band or None,
        "thresholdCrossed": change.threshold_crossed or None,
        "modelVersion": change.model_version,
        "at": change.created_at.isoformat().replace("+00:00", "Z"),
    }


def announce_crossings(changes: list[ScoreChange], *, model_version: int) -> None:
    from integrations.outbound import outbound_event_publish

    from scoring.tasks import enqueue_band_actions
    from workspaces.models import Workspace

    for change in changes:
        event = score_change_event(change)
        for receiver, error in score_changed.send_robust(sender=ScoreChange, event=event, change=change):
            if isinstance(error, Exception):
                logger.error("score_changed receiver %s failed: %s", receiver, error)
        with transaction.atomic():
            outbound_event_publish(workspace=Workspace(pk=change.workspace_id), event_type="lead.score_changed", payload=event)
        enqueue_band_actions(change.pk)
