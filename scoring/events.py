"""What a threshold crossing sets off, after the rescoring transaction committed: the in-process
`score_changed` signal, an outbound webhook event, and the band's actions (in a task)."""

import logging

from django.db import transaction
from django.dispatch import Signal

from leadsmgr.api.formats import iso_time
from scoring.models import ScoreChange

logger = logging.getLogger(__name__)
EVENT_TYPE = "lead.score_changed"

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
        "at": iso_time(change.created_at),
    }


def announce_crossings(changes: list[ScoreChange], *, model_version: int, thresholds=None) -> None:
    """Per batch of crossings: the signal for each, outbound events only when a webhook wants them,
    and one task for the crossings whose band has actions (a decay run can cross thousands)."""
    from integrations.models import OutboundWebhook
    from integrations.outbound import outbound_event_publish
    from scoring.tasks import enqueue_band_actions_many
    from workspaces.models import Workspace

    if not changes:
        return
    workspace_id = changes[0].workspace_id
    wants_events = any(webhook.wants(EVENT_TYPE) for webhook in OutboundWebhook.objects.filter(workspace_id=workspace_id, is_active=True))
    for change in changes:
        event = score_change_event(change)
        for receiver, error in score_changed.send_robust(sender=ScoreChange, event=event, change=change):
            if isinstance(error, Exception):
                logger.error("score_changed receiver %s failed: %s", receiver, error)
        if wants_events:
            with transaction.atomic():
                outbound_event_publish(workspace=Workspace(pk=workspace_id), event_type=EVENT_TYPE, payload=event)
    # Only a move up into a band with actions runs them (see scoring.actions).
    with_actions = [
        change.pk
        for change in changes
        if thresholds is None
        or (change.new_score > change.previous_score and (band := thresholds.band(change.threshold_crossed)) is not None and band.actions)
    ]
    enqueue_band_actions_many(with_actions)
