"""Band actions (seed 000's threshold automation): notify by email, post to Slack, assign, create a
task, tag. They run once per crossing into a higher band: the task claims the ScoreChange first."""

import logging
import re
from datetime import timedelta

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from automations.services import lead_assign_by_rule, task_create
from leads.models import ActivityType, Lead, LeadActivity
from leads.services import lead_tags_change
from leads.tracking.personalization import render_content
from scoring.config import Action, parse_thresholds
from scoring.models import ScoreChange, ScoringModel

logger = logging.getLogger(__name__)
DURATION = re.compile(r"^(\d{1,4})([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
SLACK_TIMEOUT = (3, 10)


def _duration(text) -> timedelta | None:
    match = DURATION.match(str(text or ""))
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))}) if match else None


def _lead_url(lead: Lead) -> str:
    return f"{settings.PUBLIC_BASE_URL}/leads/?lead={lead.pk}"


def _message(lead: Lead, change: ScoreChange, template: str | None = None) -> str:
    """The action's own `message` ({{lead.name}}, {{lead.company.name}} filled in), else a summary."""
    if template:
        return f"{render_content(template, lead)} {_lead_url(lead)}"
    company = f" ({lead.company.name})" if lead.company_id else ""
    return f"{lead.name}{company} is now {change.new_band.upper()}: score {change.previous_score} → {change.new_score}. {_lead_url(lead)}"


def _run(action: Action, lead: Lead, change: ScoreChange) -> str:
    kind = action.type
    if kind == "notify":
        recipients = [str(r) for r in (action.param("recipients") or ())]
        if not recipients:
            return "skipped: no recipients"
        send_mail(f"{lead.name} is now {change.new_band.upper()}", _message(lead, change, action.param("message")), None, recipients)
        return f"emailed {', '.join(recipients)}"
    if kind == "slack":
        url = action.param("webhookUrl") or settings.SLACK_WEBHOOK_URL
        if not url:
            return "skipped: no Slack webhook configured (SLACK_WEBHOOK_URL or the action's webhookUrl)"
        body = {"text": _message(lead, change, action.param("message"))}
        if action.param("channel"):
            body["channel"] = action.param("channel")
        response = requests.post(url, json=body, timeout=SLACK_TIMEOUT, allow_redirects=False)
        response.raise_for_status()
        return f"posted to Slack {action.param('channel') or ''}".strip()
    if kind == "assign":
        owner = lead_assign_by_rule(lead=lead, rule=action.param("rule", "round_robin"))
        return f"owner {owner.email}" if owner else "skipped: no Sales Rep to assign"
    if kind == "create_task":
        assignee = lead.owner if action.param("assignee", "owner") == "owner" else None
        task = task_create(
            workspace=lead.workspace,
            lead=lead,
            title=str(action.param("task") or action.param("title") or f"Follow up {lead.name}"),
            assignee=assignee,
            due_in=_duration(action.param("dueIn")),
            source=f"band:{change.new_band}",
        )
        return f"task {task.title!r}"
    if kind == "tag":
        tags = [str(tag) for tag in (action.param("tags") or ())]
        lead_tags_change(lead=lead, actor=None, add=tags)
        return f"tagged {', '.join(tags)}"
    return f"skipped: {kind} is not available yet"


def band_actions_run(*, change_id: int) -> list[str] | None:
    """Runs the actions of the band the change crossed into; None when already claimed."""
    claimed = ScoreChange.objects.filter(pk=change_id, actions_started_at__isnull=True).update(actions_started_at=timezone.now())
    if not claimed:
        return None
    change = ScoreChange.objects.get(pk=change_id)
    if change.new_score <= change.previous_score:
        return []  # falling into a lower band notifies nobody
    model = ScoringModel.objects.filter(workspace_id=change.workspace_id, version=change.model_version).first()
    band = parse_thresholds(model.thresholds).band(change.threshold_crossed) if model else None
    lead = Lead.objects.select_related("company", "owner", "workspace").filter(pk=change.lead_id, deleted_at__isnull=True).first()
    if band is None or lead is None or not band.actions:
        return []
    results = []
    for action in band.actions:
        try:
            results.append(f"{action.type}: {_run(action, lead, change)}")
        except Exception as error:  # noqa: BLE001 - one failing action must not stop the others
            logger.warning("band action %s for lead %s failed: %s", action.type, lead.pk, error)
            results.append(f"{action.type}: failed ({error.__class__.__name__}: {error})"[:300])
        lead.refresh_from_db()
    LeadActivity.objects.create(
        workspace_id=lead.workspace_id, lead=lead, type=ActivityType.BAND_ACTIONS, data={"band": band.stage, "results": results}
    )
    return results
