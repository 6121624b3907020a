"""Inbound lead webhooks: their management, and ingesting one submission."""

import hashlib
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from integrations.mapping import MappingError, map_payload, validate_field_mapping
from integrations.models import DedupStrategy, LeadWebhook, SubmissionOutcome, WebhookSubmission
from leads.capture import Submission, lead_capture
from leads.locks import lock_values
from leads.models import SourceType
from workspaces.models import Workspace, hash_token

IDEMPOTENCY_KEY_MAX = 200


def _validated_settings(workspace: Workspace, data: dict) -> dict:
    clean = {}
    if "name" in data:
        name = (data["name"] or "").strip()
        if not name or len(name) > 120:
            raise ValidationError({"name": "A webhook needs a name of 1 to 120 characters."})
        clean["name"] = name
    if "field_mapping" in data:
        try:
            clean["field_mapping"] = validate_field_mapping(data["field_mapping"] or {})
        except ValueError as error:
            raise ValidationError({"fieldMapping": str(error)}) from None
    if "dedup_strategy" in data:
        if data["dedup_strategy"] not in DedupStrategy.values:
            raise ValidationError({"dedupStrategy": f"Choose one of: {', '.join(DedupStrategy.values)}."})
        clean["dedup_strategy"] = data["dedup_strategy"]
    if "honeypot_field" in data:
        clean["honeypot_field"] = (data["honeypot_field"] or "").strip()[:60]
    if "is_active" in data:
        clean["is_active"] = bool(data["is_active"])
    stage, pipeline = data.get("stage"), data.get("pipeline")
    if stage is not None and stage.workspace_id != workspace.pk:
        raise ValidationError({"stageId": "Unknown stage."})
    if pipeline is not None and pipeline.workspace_id != workspace.pk:
        raise ValidationError({"pipelineId": "Unknown pipeline."})
    if stage is not None and pipeline is not None and stage.pipeline_id != pipeline.pk:
        raise ValidationError({"stageId": "This stage belongs to another pipeline."})
    if "stage" in data:
        clean["stage"] = stage
        if stage is not None:
            clean["pipeline"] = stage.pipeline
    if "pipeline" in data and "stage" not in data:
        clean["pipeline"] = pipeline
        clean["stage"] = None
    return clean


def webhook_create(*, workspace: Workspace, name: str, **settings_data) -> tuple[LeadWebhook, str]:
    """Returns the webhook and its raw key; only the key's hash is stored."""
    clean = _validated_settings(workspace, {"name": name, **settings_data})
    raw = LeadWebhook.generate_key()
    webhook = LeadWebhook(workspace=workspace, **clean)
    webhook.set_key(raw)
    webhook.save()
    return webhook, raw


def webhook_update(*, webhook: LeadWebhook, **settings_data) -> LeadWebhook:
    clean = _validated_settings(webhook.workspace, settings_data)
    for key, value in clean.items():
        setattr(webhook, key, value)
    webhook.save(update_fields=list(clean) or None)
    return webhook


def webhook_regenerate_key(*, webhook: LeadWebhook) -> str:
    """A new key; the old URL stops working at once."""
    raw = LeadWebhook.generate_key()
    webhook.set_key(raw)
    webhook.save(update_fields=["key_hash", "key_hint"])
    return raw


def webhook_delete(*, webhook: LeadWebhook) -> None:
    """Previously received leads are not affected."""
    webhook.delete()


def webhook_for_key(raw_key: str) -> LeadWebhook | None:
    return LeadWebhook.objects.select_related("workspace", "pipeline", "stage").filter(key_hash=hash_token(raw_key), is_active=True).first()


@dataclass
class IngestAnswer:
    status_code: int
    body: dict
    replayed: bool = False


class IngestConflict(Exception):
    """The Idempotency-Key was used before with a different body."""


def submission_ingest(
    *,
    webhook: LeadWebhook,
    payload: dict,
    raw_body: bytes,
    idempotency_key: str = "",
    ip: str | None = None,
    user_agent: str = "",
    referer: str = "",
) -> IngestAnswer:
    """Stores the submission and its lead in one transaction and returns the answer to give.

    Raises ValidationError (bad input: nothing is written), IngestConflict (a reused key with a
    different body). A replay of a known key returns the first answer and writes nothing.
    """
    body_sha = hashlib.sha256(raw_body).hexdigest()
    with transaction.atomic():
        if idempotency_key:
            lock_values(f"idempotency:{webhook.pk}:{idempotency_key}")
            prior = WebhookSubmission.objects.filter(webhook=webhook, idempotency_key=idempotency_key).first()
            if prior is not None:
                if prior.body_sha256 != body_sha:
                    raise IngestConflict()
                return IngestAnswer(status_code=prior.status_code, body=prior.response, replayed=True)

        honeypot = webhook.honeypot_field
        if honeypot and payload.get(honeypot) not in (None, "", [], {}):
            body = {"ok": True, "status": "discarded"}
            _record(webhook, payload, body_sha, idempotency_key, SubmissionOutcome.DISCARDED, body, None, ip, user_agent)
            return IngestAnswer(status_code=200, body=body)

        try:
            # A plain HTML form posts from the page it sits on (the Referer): its landing page.
            mapped = map_payload(payload, webhook.field_mapping, ignore=(honeypot,) if honeypot else (), page_url=referer)
        except MappingError as error:
            raise ValidationError({error.field: str(error)}) from None
        result = lead_capture(
            workspace=webhook.workspace,
            submission=Submission(
                core=mapped.core,
                custom_fields=mapped.custom_fields,
                tags=mapped.tags,
                consents=mapped.consents,
                policy_version=mapped.policy_version,
                source_type=SourceType.WEBHOOK,
                dedup_strategy=webhook.dedup_strategy,
                webhook=webhook,
                pipeline=webhook.pipeline if webhook.pipeline and webhook.pipeline.workspace_id == webhook.workspace_id else None,
                stage=webhook.stage if webhook.stage and webhook.stage.workspace_id == webhook.workspace_id else None,
                fallback_name=webhook.name,
                ip=ip,
                user_agent=user_agent,
            ),
        )
        body = {"ok": True, "leadId": str(result.lead.pk), "status": result.status}
        if result.warnings:
            body["warnings"] = result.warnings
        _record(webhook, payload, body_sha, idempotency_key, result.status, body, result.lead, ip, user_agent)
    return IngestAnswer(status_code=200, body=body)


def _record(webhook, payload, body_sha, idempotency_key, outcome, body, lead, ip, user_agent) -> None:
    now = timezone.now()
    WebhookSubmission.objects.create(
        workspace_id=webhook.workspace_id,
        webhook=webhook,
        idempotency_key=idempotency_key,
        body_sha256=body_sha,
        payload=payload,
        outcome=outcome,
        response=body,
        status_code=200,
        lead=lead,
        ip=ip,
        user_agent=user_agent[:400],
        received_at=now,
    )
    LeadWebhook.objects.filter(pk=webhook.pk).update(
        total_received=F("total_received") + 1,
        duplicates_received=F("duplicates_received") + (1 if outcome in (SubmissionOutcome.MERGED, SubmissionOutcome.DUPLICATE) else 0),
        discarded_received=F("discarded_received") + (1 if outcome == SubmissionOutcome.DISCARDED else 0),
        last_received_at=now,
    )
