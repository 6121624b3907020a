"""Capture: the one path by which a submission (webhook, form, import) becomes a lead.

In one transaction: normalize, find an existing lead (email, then phone), apply the dedup
strategy, record consent, write the activity. Processing continues after commit in a task.
"""

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from leads.locks import lock_values
from leads.models import ActivityType, ConsentPurpose, ConsentRecord, Lead, LeadActivity, LeadTag, ProcessingState
from leads.normalization import InvalidValue, assess_phone, email_kind, normalize_country, normalize_email, normalize_tag
from leads.services import (
    DISPLAY_NAMES_KEY,
    MAX_TAGS_PER_LEAD,
    UPDATABLE_FIELDS,
    _activity,
    company_resolve,
    custom_fields_merge,
    enqueue_lead_processing,
    lead_create,
    tags_resolve,
)
from workspaces.models import User, Workspace

CREATED, MERGED, DUPLICATE = "created", "merged", "duplicate"
MERGE, REPLACE, SKIP = "merge", "replace", "skip"

# Core fields a submission may carry (model names): what people may edit, less what capture decides
# itself, plus the country. Their limits are the model's column lengths.
CORE_TEXT_FIELDS = (*(field for field in UPDATABLE_FIELDS if field not in ("status", "lifecycle_stage", "source_type")), "country")


@dataclass
class Submission:
    """What a capture path hands over: core fields in model names, custom fields by the names the
    sender used, and the context of the submission."""

    core: dict[str, Any]
    custom_fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    consents: dict[str, bool] = field(default_factory=dict)
    policy_version: str = ""
    source_type: str = "webhook"
    dedup_strategy: str = MERGE
    webhook: Any = None
    pipeline: Any = None
    stage: Any = None
    fallback_name: str = ""
    ip: str | None = None
    user_agent: str = ""


@dataclass
class CaptureResult:
    lead: Lead
    status: str
    warnings: list[str]


def _normalized(workspace: Workspace, submission: Submission) -> tuple[dict, dict, list[str]]:
    """Returns (core fields, custom fields, warnings); raises ValidationError for what cannot be kept."""
    core = {key: ("" if value is None else str(value).strip()) for key, value in submission.core.items() if key in CORE_TEXT_FIELDS}
    custom = dict(submission.custom_fields)
    warnings: list[str] = []
    try:
        core["email"] = normalize_email(core.get("email", ""))
    except InvalidValue as error:
        raise ValidationError({"email": str(error)}) from None
    core["phone"], phone_country, phone_warnings = assess_phone(core.get("phone", ""), workspace.default_region)
    warnings += phone_warnings
    if core.get("country"):
        try:
            core["country"] = normalize_country(core["country"])
        except InvalidValue:
            warnings.append(f"country {core['country']!r} is not a known country; kept as a custom field")
            custom["country"] = core.pop("country")
    if not any(core.get(key) for key in ("name", "first_name", "last_name", "email", "phone")):
        raise ValidationError({"name": "No usable identity: send at least a name, an email or a phone."})
    # Checked after normalization, so "United States" (→ "US") fits and a long unparseable phone does not.
    too_long = {
        key: f"At most {limit} characters." for key, value in core.items() if len(value) > (limit := Lead._meta.get_field(key).max_length)
    }
    if too_long:
        raise ValidationError(too_long)
    core["phone_country"] = phone_country
    core["email_kind"] = email_kind(core["email"]) if core["email"] else ""
    return {key: value for key, value in core.items() if value != ""}, custom, warnings


def _find_existing(workspace: Workspace, email: str, phone: str) -> Lead | None:
    live = Lead.objects.filter(workspace=workspace).alive().select_for_update(of=("self",)).select_related("stage", "owner", "company")
    if email:
        lead = live.filter(email=email).order_by("created_at").first()
        if lead is not None:
            return lead
    if phone:
        return live.filter(phone=phone).order_by("created_at").first()
    return None


@transaction.atomic
def lead_capture(*, workspace: Workspace, submission: Submission, actor: User | None = None) -> CaptureResult:
    core, custom, warnings = _normalized(workspace, submission)
    email, phone = core.get("email", ""), core.get("phone", "")
    tags = sorted({normalize_tag(tag) for tag in submission.tags if normalize_tag(tag)})
    if len(tags) > MAX_TAGS_PER_LEAD:
        raise ValidationError({"tags": f"At most {MAX_TAGS_PER_LEAD} tags."})
    # Two submissions of one person at once: the second waits, then finds the first's lead.
    lock_values(f"lead:{workspace.pk}:email:{email}" if email else "", f"lead:{workspace.pk}:phone:{phone}" if phone else "")

    existing = _find_existing(workspace, email, phone)
    if existing is None:
        name = core.get("name") or " ".join(p for p in (core.get("first_name"), core.get("last_name")) if p) or email or phone
        lead = lead_create(
            workspace=workspace,
            actor=actor,
            data={
                **core,
                "name": name or submission.fallback_name,
                "company": submission.core.get("company"),
                "custom_fields": custom,
                "tags": tags,
                "source_type": submission.source_type,
                "pipeline": submission.pipeline,
                "stage": submission.stage,
                "validation_warnings": warnings,
                "source_webhook": submission.webhook,
            },
        )
        status = CREATED
    else:
        lead, status = _apply_to_existing(existing, core, custom, tags, submission, warnings, actor)
    _record_consents(lead, submission, actor)
    return CaptureResult(lead=lead, status=status, warnings=warnings)


def _apply_to_existing(lead: Lead, core: dict, custom: dict, tags: list[str], submission: Submission, warnings, actor):
    """Applies the dedup strategy to a returning lead. Its owner and stage never change here."""
    strategy = submission.dedup_strategy
    changes: dict[str, dict] = {}
    now = timezone.now()
    if strategy != SKIP:
        for key, value in core.items():
            old = getattr(lead, key)
            if value != old and (strategy == REPLACE or not old):
                changes[key] = {"from": old, "to": value}
                setattr(lead, key, value)
        company = submission.core.get("company")
        if company and (strategy == REPLACE or lead.company is None):
            resolved = company_resolve(workspace=lead.workspace, data=company)
            if resolved != lead.company:
                changes["company"] = {"from": lead.company.name if lead.company else None, "to": resolved.name}
                lead.company = resolved
        merged_custom = _merge_custom(lead.custom_fields, custom, overwrite=strategy == REPLACE)
        if merged_custom != lead.custom_fields:
            before = {k: v for k, v in lead.custom_fields.items() if k != DISPLAY_NAMES_KEY}
            after = {k: v for k, v in merged_custom.items() if k != DISPLAY_NAMES_KEY}
            keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            changes["custom_fields"] = {"from": {k: before.get(k) for k in keys}, "to": {k: after.get(k) for k in keys}}
            lead.custom_fields = merged_custom
        added_tags = _union_tags(lead, tags)
        if added_tags:
            changes["tags"] = {"from": None, "to": added_tags}
        if warnings:
            lead.validation_warnings = [*lead.validation_warnings, *[w for w in warnings if w not in lead.validation_warnings]]
    status = MERGED if changes else DUPLICATE
    activity_data = {"strategy": strategy, "source": submission.source_type, "changes": changes}
    if submission.webhook is not None:
        activity_data["webhookId"] = str(submission.webhook.pk)
    lead.updated_at = lead.last_activity_at = now
    if changes:
        lead.processing_state, lead.processing_state_at = ProcessingState.RECEIVED, now
    lead.save()
    LeadActivity.objects.create(
        workspace_id=lead.workspace_id,
        lead=lead,
        type=ActivityType.MERGED if changes else ActivityType.CAPTURED_AGAIN,
        actor=actor,
        data=activity_data,
        created_at=now,
    )
    if changes:
        enqueue_lead_processing(lead_id=lead.pk)
    return lead, status


def _merge_custom(existing: dict, incoming: dict, *, overwrite: bool) -> dict:
    if overwrite:
        return custom_fields_merge(existing, incoming)
    present = set(existing) - {DISPLAY_NAMES_KEY}
    from leads.normalization import camel_case_key

    new_only = {key: value for key, value in incoming.items() if (camel_case_key(key) or key) not in present and value is not None}
    return custom_fields_merge(existing, new_only) if new_only else existing


def _union_tags(lead: Lead, names: list[str]) -> list[str]:
    if not names:
        return []
    current = set(lead.tags.values_list("name", flat=True))
    wanted = [name for name in names if name not in current]
    if len(current) + len(wanted) > MAX_TAGS_PER_LEAD:
        raise ValidationError({"tags": f"A lead has at most {MAX_TAGS_PER_LEAD} tags."})
    resolved = tags_resolve(workspace=lead.workspace, names=wanted)
    LeadTag.objects.bulk_create([LeadTag(lead=lead, tag=tag) for tag in resolved], ignore_conflicts=True)
    return sorted(tag.name for tag in resolved)


def _record_consents(lead: Lead, submission: Submission, actor) -> None:
    """Appends one ConsentRecord per purpose the submission speaks of; history is never rewritten."""
    if not submission.consents:
        return
    now = timezone.now()
    ConsentRecord.objects.bulk_create(
        ConsentRecord(
            workspace_id=lead.workspace_id,
            lead=lead,
            purpose=purpose,
            granted=granted,
            source=submission.source_type,
            policy_version=submission.policy_version[:100],
            ip=submission.ip,
            user_agent=submission.user_agent[:400],
            created_at=now,
        )
        for purpose, granted in sorted(submission.consents.items())
    )
    _activity(
        lead=lead,
        type=ActivityType.CONSENT,
        actor=actor,
        data={"consents": dict(sorted(submission.consents.items())), "policyVersion": submission.policy_version},
        at=now,
    ).save()


CONSENT_PURPOSES = frozenset(ConsentPurpose.values)
