"""Segment automations (seed 000's setAutomation): onEnter / onExit actions, run once per
enter/exit event by a task that claims the event first."""

import logging

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from leads.models import ActivityType, Lead, LeadActivity
from leads.services import lead_tags_change
from leads.tracking.personalization import render_content

logger = logging.getLogger(__name__)
ACTIONS = {"tag", "untag", "notify", "enroll_sequence", "remove_from_sequence"}
MAX_ACTIONS = 20
SLACK_TIMEOUT = (3, 10)


def _tags(action: dict, path: str) -> list[str]:
    tags = action.get("tags")
    if not isinstance(tags, list) or not tags or not all(isinstance(tag, str) and tag.strip() for tag in tags):
        raise ValueError(f"{path}.tags: A non-empty list of tag names.")
    return tags


def _emails(value) -> bool:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        return False
    try:
        for item in value:
            validate_email(item)
    except ValidationError:
        return False
    return True


def _http_url(value) -> bool:
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator

    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError:
        return False
    return True


def validate_automation(value) -> dict:
    """Raises django ValidationError naming the bad spot, e.g. automation.onEnter[1].action."""
    from django.core.exceptions import ValidationError

    if value in (None, {}):
        return {"onEnter": [], "onExit": []}
    if not isinstance(value, dict) or set(value) - {"onEnter", "onExit"}:
        raise ValidationError({"automation": "An object with onEnter and/or onExit lists."})
    clean = {}
    for key in ("onEnter", "onExit"):
        actions = value.get(key, [])
        path = f"automation.{key}"
        if not isinstance(actions, list) or len(actions) > MAX_ACTIONS:
            raise ValidationError({path: f"A list of at most {MAX_ACTIONS} actions."})
        for index, action in enumerate(actions):
            at = f"{path}[{index}]"
            try:
                if not isinstance(action, dict) or action.get("action") not in ACTIONS:
                    raise ValueError(f"{at}.action: One of {', '.join(sorted(ACTIONS))}.")
                if action["action"] in ("tag", "untag"):
                    _tags(action, at)
                elif action["action"] == "notify":
                    channel = action.get("channel", "slack")
                    if channel not in ("slack", "email"):
                        raise ValueError(f"{at}.channel: slack or email.")
                    if not isinstance(action.get("message"), str) or not action["message"].strip():
                        raise ValueError(f"{at}.message: The text to send; {{{{lead.name}}}} and {{{{lead.company.name}}}} are filled in.")
                    if channel == "email" and not _emails(action.get("recipients")):
                        raise ValueError(f"{at}.recipients: A list of email addresses.")
                    if action.get("webhookUrl") is not None and not _http_url(action["webhookUrl"]):
                        raise ValueError(f"{at}.webhookUrl: An http(s) URL, such as a Slack incoming webhook's.")
                elif not isinstance(action.get("sequence"), str) or not action["sequence"].strip():
                    raise ValueError(f"{at}.sequence: The sequence's name or id.")
            except ValueError as error:
                where, _, message = str(error).partition(": ")
                raise ValidationError({where: message}) from None
        clean[key] = actions
    return clean


def _run(action: dict, lead: Lead, segment) -> str:
    kind = action["action"]
    if kind == "tag":
        lead_tags_change(lead=lead, actor=None, add=action["tags"])
        return f"tagged {', '.join(action['tags'])}"
    if kind == "untag":
        lead_tags_change(lead=lead, actor=None, remove=action["tags"])
        return f"removed {', '.join(action['tags'])}"
    if kind == "notify":
        text = render_content(action["message"], lead)
        if action.get("channel", "slack") == "email":
            send_mail(f"Segment {segment.name}: {lead.name}", text, None, action["recipients"])
            return f"emailed {', '.join(action['recipients'])}"
        url = action.get("webhookUrl") or settings.SLACK_WEBHOOK_URL
        if not url:
            return "skipped: no Slack webhook configured (SLACK_WEBHOOK_URL or the action's webhookUrl)"
        requests.post(url, json={"text": text}, timeout=SLACK_TIMEOUT, allow_redirects=False).raise_for_status()
        return "posted to Slack"
    # Sequences arrive with the automations issue; the request is recorded for it to pick up.
    return f"{kind.replace('_', ' ')} {action['sequence']!r} requested"


def segment_event_automations_run(*, event_id: int) -> list[str] | None:
    from leads.segments.models import SegmentEvent, SegmentEventKind

    claimed = SegmentEvent.objects.filter(pk=event_id, automations_started_at__isnull=True).update(automations_started_at=timezone.now())
    if not claimed:
        return None
    event = SegmentEvent.objects.select_related("segment").get(pk=event_id)
    lead = Lead.objects.select_related("company", "workspace").filter(pk=event.lead_id, deleted_at__isnull=True).first()
    actions = (event.segment.automation or {}).get("onEnter" if event.kind == SegmentEventKind.ENTERED else "onExit", [])
    if lead is None or not actions:
        return []
    results = []
    for action in actions:
        try:
            results.append(f"{action['action']}: {_run(action, lead, event.segment)}")
        except Exception as error:  # noqa: BLE001 - one failing action must not stop the others
            logger.warning("segment action %s for lead %s failed: %s", action.get("action"), lead.pk, error)
            results.append(f"{action.get('action')}: failed ({error.__class__.__name__}: {error})"[:300])
    LeadActivity.objects.create(
        workspace_id=lead.workspace_id,
        lead=lead,
        type=ActivityType.SEGMENT_ACTIONS,
        data={"segment": event.segment.name, "segmentId": str(event.segment_id), "event": event.kind, "results": results},
    )
    return results
