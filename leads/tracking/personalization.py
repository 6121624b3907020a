"""Website personalization (seed 000): rules name who they are for and what changes on the page.

Rules target segments (seed 000's `segment: 'enterprise_leads'`), lifecycle stage, tags, score
range, returning visitors and whether the visitor is known. Content is text: the snippet sets textContent,
never HTML, so lead data cannot inject markup.
"""

import re
import uuid

from leads.models import Lead, LifecycleStage
from leads.segments.models import SegmentMembership
from leads.tracking.models import PersonalizationRule, TrackSession, Visitor

CONDITION_KEYS = {"lifecycleStages", "tags", "scoreMin", "scoreMax", "returningVisitor", "identified", "segments"}
CHANGE_KEYS = {"selector", "content", "show", "hide"}
TEMPLATE_FIELD = re.compile(r"\{\{\s*([a-zA-Z_.]+)\s*\}\}")
MAX_CHANGES = 50


def validate_conditions(value) -> dict:
    """Raises ValueError naming the offending key."""
    if not isinstance(value, dict):
        raise ValueError("conditions: Must be an object.")
    unknown = sorted(set(value) - CONDITION_KEYS)
    if unknown:
        raise ValueError(f"conditions.{unknown[0]}: Unknown condition; known: {', '.join(sorted(CONDITION_KEYS))}.")
    stages = value.get("lifecycleStages", [])
    if not isinstance(stages, list) or any(stage not in LifecycleStage.values for stage in stages):
        raise ValueError(f"conditions.lifecycleStages: A list of: {', '.join(LifecycleStage.values)}.")
    tags = value.get("tags", [])
    if not isinstance(tags, list) or any(not isinstance(tag, str) for tag in tags):
        raise ValueError("conditions.tags: A list of tag names.")
    for key in ("scoreMin", "scoreMax"):
        if key in value and (not isinstance(value[key], int) or isinstance(value[key], bool)):
            raise ValueError(f"conditions.{key}: Must be a whole number.")
    for key in ("returningVisitor", "identified"):
        if key in value and not isinstance(value[key], bool):
            raise ValueError(f"conditions.{key}: Must be true or false.")
    segments = value.get("segments", [])
    if not isinstance(segments, list) or any(not _is_uuid(item) for item in segments):
        raise ValueError("conditions.segments: A list of segment ids.")
    return value


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def validate_changes(value) -> list:
    if not isinstance(value, list) or not value or len(value) > MAX_CHANGES:
        raise ValueError(f"changes: A list of 1 to {MAX_CHANGES} changes.")
    for index, change in enumerate(value):
        if not isinstance(change, dict):
            raise ValueError(f"changes[{index}]: Must be an object.")
        unknown = sorted(set(change) - CHANGE_KEYS)
        if unknown:
            raise ValueError(f"changes[{index}].{unknown[0]}: Unknown key; use selector with content, show or hide.")
        if not isinstance(change.get("selector"), str) or not change["selector"].strip() or len(change["selector"]) > 200:
            raise ValueError(f"changes[{index}].selector: A CSS selector, 1 to 200 characters.")
        actions = [key for key in ("content", "show", "hide") if key in change]
        if len(actions) != 1:
            raise ValueError(f"changes[{index}]: Give exactly one of content, show, hide.")
        if "content" in change and (not isinstance(change["content"], str) or len(change["content"]) > 2000):
            raise ValueError(f"changes[{index}].content: Text of at most 2000 characters.")
        if any(key in change and change[key] is not True for key in ("show", "hide")):
            raise ValueError(f"changes[{index}]: show and hide take true.")
    return value


def _matches(rule: PersonalizationRule, lead: Lead | None, tags: set[str], returning: bool, segments: set[str]) -> bool:
    conditions = rule.conditions or {}
    if conditions.get("segments") and not {str(segment) for segment in conditions["segments"]} & segments:
        return False
    if "identified" in conditions and conditions["identified"] != (lead is not None):
        return False
    if "returningVisitor" in conditions and conditions["returningVisitor"] != returning:
        return False
    stages = conditions.get("lifecycleStages")
    if stages and (lead.lifecycle_stage if lead else LifecycleStage.VISITOR) not in stages:
        return False
    if conditions.get("tags") and not set(conditions["tags"]) & tags:
        return False
    score = lead.score if lead else 0
    if "scoreMin" in conditions and score < conditions["scoreMin"]:
        return False
    return not ("scoreMax" in conditions and score > conditions["scoreMax"])


def render_content(template: str, lead: Lead | None) -> str:
    """Fills {{firstName}}, {{lead.name}}, {{lead.company.name}} ...; unknown or empty fields become ''."""
    values = {}
    if lead is not None:
        first = lead.first_name or (lead.name.split(" ")[0] if lead.name else "")
        company = lead.company.name if lead.company_id else ""
        values = {
            "firstName": first,
            "lastName": lead.last_name,
            "name": lead.name,
            "lead.name": lead.name,
            "lead.firstName": first,
            "lead.company.name": company,
            "company.name": company,
        }
    return TEMPLATE_FIELD.sub(lambda match: values.get(match.group(1), ""), template)


def changes_for_visitor(*, workspace, visitor_key: str) -> list[dict]:
    """The changes of every active rule matching the visitor, in rule order; a later rule's change
    to the same selector wins."""
    rules = list(PersonalizationRule.objects.filter(workspace=workspace, is_active=True))
    if not rules:
        return []
    visitor = Visitor.objects.filter(workspace=workspace, visitor_key=visitor_key).select_related("lead__company").first()
    lead = visitor.lead if visitor and visitor.lead and visitor.lead.deleted_at is None else None
    tags = set(lead.tags.values_list("name", flat=True)) if lead else set()
    returning = bool(visitor) and TrackSession.objects.filter(visitor=visitor, is_bot=False).count() > 1
    segments = {str(pk) for pk in SegmentMembership.objects.filter(lead=lead).values_list("segment_id", flat=True)} if lead else set()
    by_selector: dict[str, dict] = {}
    # An unproven identity still gets the lead's rules, never the lead's name in the page.
    greeted = lead if visitor is not None and visitor.identity_verified else None
    for rule in rules:
        if not _matches(rule, lead, tags, returning, segments):
            continue
        for change in rule.changes:
            rendered = dict(change)
            if "content" in rendered:
                rendered["content"] = render_content(rendered["content"], greeted)
            by_selector[change["selector"]] = rendered
    return list(by_selector.values())
