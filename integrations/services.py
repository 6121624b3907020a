"""Inbound lead webhooks: their management, and ingesting one submission."""

import hashlib
import json
import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import DataError, connections, router, transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from integrations.mapping import MappingError, map_payload, validate_field_mapping
from integrations.models import DedupStrategy, LeadWebhook, ResponseMode, SubmissionOutcome, WebhookSubmission
from leads.capture import Submission, lead_capture, leads_capture_many, submission_check
from leads.locks import lock_values
from leads.models import SourceType
from leadsmgr.db import TRANSIENT_DB_ERRORS, retry_lock_conflicts
from leadsmgr.memory import ProcessMemory
from leadsmgr.queueing import enqueue_coalesced
from workspaces.models import Workspace, hash_token

IDEMPOTENCY_KEY_MAX = 200

logger = logging.getLogger(__name__)


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
    if "response_mode" in data:
        if data["response_mode"] not in ResponseMode.values:
            raise ValidationError({"responseMode": f"Choose one of: {', '.join(ResponseMode.values)}."})
        clean["response_mode"] = data["response_mode"]
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
    webhook_forget(webhook.key_hash)
    webhook.set_key(raw)
    webhook.save(update_fields=["key_hash", "key_hint"])
    return raw


def webhook_delete(*, webhook: LeadWebhook) -> None:
    """Previously received leads are not affected."""
    webhook.delete()


def webhook_for_key(raw_key: str) -> LeadWebhook | None:
    return _webhook_for_hash(hash_token(raw_key))


def _webhook_for_hash(key_hash: str) -> LeadWebhook | None:
    return LeadWebhook.objects.select_related("workspace", "pipeline", "stage").filter(key_hash=key_hash, is_active=True).first()


WEBHOOK_CACHE_SECONDS = 30
_known_webhooks = ProcessMemory(size=1000)  # key hash -> webhook


def webhook_for_key_cached(raw_key: str) -> LeadWebhook | None:
    """webhook_for_key from this process's memory: every submission asks, and the lookup costs ~1 ms
    of ORM and planning (from Redis ~0.3 ms with the round trip and unpickling, a sixth of a queued
    submission's time). Safe to serve a copy another process has changed since: storing a queued
    submission checks, in the same INSERT, that the webhook is still active under this key at this
    version (every save moves it), and when it is not the view looks the webhook up again. The
    honeypot's discard checks the same before it writes. A synchronous capture reads the webhook
    afresh anyway. What a webhook's version does not cover (its workspace's default region) is at
    most WEBHOOK_CACHE_SECONDS old. Unknown and paused keys are not remembered: they are looked up
    each time, so a webhook switched back on answers at once."""
    key_hash = hash_token(raw_key)
    webhook = _known_webhooks.get(key_hash)
    if webhook is not None:
        return webhook
    webhook = _webhook_for_hash(key_hash)
    if webhook is None:
        _known_webhooks.forget(key_hash)
        return None
    _known_webhooks.put(key_hash, webhook, seconds=WEBHOOK_CACHE_SECONDS)
    return webhook


def webhook_forget(key_hash: str) -> None:
    """Drops this process's copy (a save or delete here; the version check covers the others)."""
    _known_webhooks.forget(key_hash)


def _still_current(webhook: LeadWebhook) -> bool:
    return LeadWebhook.objects.filter(pk=webhook.pk, key_hash=webhook.key_hash, is_active=True, version=webhook.version).exists()


@dataclass
class IngestAnswer:
    status_code: int
    body: dict
    replayed: bool = False


class IngestConflict(Exception):
    """The Idempotency-Key was used before with a different body."""


def _submission(webhook: LeadWebhook | None, payload: dict, *, page_url: str, ip, user_agent: str) -> Submission:
    """The capture Submission for a webhook payload; raises ValidationError naming the field.
    `webhook` is None for a queued submission whose webhook was deleted since: it is still captured."""
    honeypot = webhook.honeypot_field if webhook else ""
    try:
        # A plain HTML form posts from the page it sits on (the Referer): its landing page.
        mapped = map_payload(payload, webhook.field_mapping if webhook else {}, ignore=(honeypot,) if honeypot else (), page_url=page_url)
    except MappingError as error:
        raise ValidationError({error.field: str(error)}) from None
    workspace_id = webhook.workspace_id if webhook else None
    return Submission(
        core=mapped.core,
        custom_fields=mapped.custom_fields,
        tags=mapped.tags,
        consents=mapped.consents,
        policy_version=mapped.policy_version,
        source_type=SourceType.WEBHOOK,
        dedup_strategy=webhook.dedup_strategy if webhook else DedupStrategy.MERGE,
        webhook=webhook,
        pipeline=webhook.pipeline if webhook and webhook.pipeline and webhook.pipeline.workspace_id == workspace_id else None,
        stage=webhook.stage if webhook and webhook.stage and webhook.stage.workspace_id == workspace_id else None,
        fallback_name=webhook.name if webhook else "Webhook",
        ip=ip,
        user_agent=user_agent,
    )


def _captured_body(result) -> dict:
    body = {"ok": True, "leadId": str(result.lead.pk), "status": result.status}
    if result.warnings:
        body["warnings"] = result.warnings
    return body


def _queued_body(submission_id: int) -> dict:
    return {"ok": True, "status": SubmissionOutcome.QUEUED, "submissionId": str(submission_id)}


@retry_lock_conflicts  # a returning person's capture locks the lead, then a new company an import batch may hold
def submission_ingest(
    *,
    webhook: LeadWebhook,
    payload: dict,
    raw_body: bytes,
    idempotency_key: str = "",
    ip: str | None = None,
    user_agent: str = "",
    referer: str = "",
    queued: bool = False,
) -> IngestAnswer:
    """Stores the submission and returns the answer to give.

    Synchronous (the default): the lead is captured in the same transaction and the answer names
    it. Queued (`queued`, or the webhook's response mode): the submission is checked exactly as
    capture will check it, stored, and answered 202 with its id; `capture_queued_submissions`
    captures it in a batch right after. Raises ValidationError (bad input: nothing is written),
    IngestConflict (a reused key with a different body). A replay of a known key returns what is
    known of the first submission (its lead, once captured) and writes nothing.
    """
    body_sha = hashlib.sha256(raw_body).hexdigest()
    if queued and not idempotency_key:
        # The hot path of a high-volume source: one INSERT in autocommit, no transaction around it.
        return _enqueue_checked(webhook, payload, body_sha, "", ip=ip, user_agent=user_agent, referer=referer)
    with transaction.atomic():
        if idempotency_key:
            lock_values(f"idempotency:{webhook.pk}:{idempotency_key}")
            prior = WebhookSubmission.objects.filter(webhook=webhook, idempotency_key=idempotency_key).first()
            if prior is not None:
                if prior.body_sha256 != body_sha:
                    raise IngestConflict()
                body = _queued_body(prior.pk) if prior.outcome == SubmissionOutcome.QUEUED else prior.response
                return IngestAnswer(status_code=prior.status_code, body=body, replayed=True)
        if queued:
            return _enqueue_checked(webhook, payload, body_sha, idempotency_key, ip=ip, user_agent=user_agent, referer=referer)

        if discarded := _honeypot_answer(webhook, payload, body_sha, idempotency_key, ip=ip, user_agent=user_agent):
            return discarded
        submission = _submission(webhook, payload, page_url=referer, ip=ip, user_agent=user_agent)
        result = lead_capture(workspace=webhook.workspace, submission=submission)
        body = _captured_body(result)
        _record(webhook, payload, body_sha, idempotency_key, result.status, body, result.lead, ip, user_agent)
    return IngestAnswer(status_code=200, body=body)


def _honeypot_answer(webhook, payload, body_sha, idempotency_key, *, ip, user_agent: str) -> IngestAnswer | None:
    """A filled honeypot field: the submission is logged as discarded and answered as accepted."""
    honeypot = webhook.honeypot_field
    if not honeypot or payload.get(honeypot) in (None, "", [], {}):
        return None
    if not _still_current(webhook):
        raise WebhookUnavailable()  # the honeypot field may have been renamed or removed since
    body = {"ok": True, "status": "discarded"}
    with transaction.atomic():
        _record(webhook, payload, body_sha, idempotency_key, SubmissionOutcome.DISCARDED, body, None, ip, user_agent)
    return IngestAnswer(status_code=200, body=body)


def _enqueue_checked(webhook, payload, body_sha, idempotency_key, *, ip, user_agent: str, referer: str) -> IngestAnswer:
    """The queued answer: the honeypot, then the submission checked as capture will check it (a
    ValidationError writes nothing), stored in one statement, the capture sent after commit."""
    if discarded := _honeypot_answer(webhook, payload, body_sha, idempotency_key, ip=ip, user_agent=user_agent):
        return discarded
    submission = _submission(webhook, payload, page_url=referer, ip=ip, user_agent=user_agent)
    submission_check(workspace=webhook.workspace, submission=submission)
    submission_id = _insert_queued(webhook, payload, body_sha, idempotency_key, ip=ip, user_agent=user_agent[:400], page_url=referer[:1000])
    workspace_id = str(webhook.workspace_id)
    transaction.on_commit(lambda: enqueue_queued_capture(workspace_id))  # at once in autocommit
    return IngestAnswer(status_code=202, body=_queued_body(submission_id))


_QUEUED_INSERT_SQL = """
INSERT INTO integrations_webhooksubmission
    (workspace_id, webhook_id, idempotency_key, body_sha256, payload, outcome, response, status_code, ip, user_agent, page_url,
     received_at)
SELECT w.workspace_id, w.id, %s, %s, %s::jsonb, 'queued', '{"ok": true, "status": "queued"}'::jsonb, 202, %s, %s, %s, now()
FROM lead_webhooks w
WHERE w.id = %s AND w.key_hash = %s AND w.is_active AND w.version = %s
RETURNING id
"""


class WebhookUnavailable(Exception):
    """The (cached) webhook was paused, re-keyed, deleted or changed since it was read: the view
    looks it up again (a changed one is used as it is now; a gone one answers 404)."""


def _insert_queued(webhook, payload, body_sha, idempotency_key, *, ip, user_agent: str, page_url: str) -> int:
    """One INSERT, stored only while the webhook is still active under this key at the version read
    (the lookup came from memory): on PostgreSQL a fixed statement (the ORM's create costs ~0.3 ms of compiling
    on a path that should take about a millisecond in all); the ORM elsewhere. Raises
    WebhookUnavailable."""
    connection = connections[router.db_for_write(WebhookSubmission)]
    if connection.vendor != "postgresql":
        if not _still_current(webhook):
            raise WebhookUnavailable()
        return WebhookSubmission.objects.create(
            workspace_id=webhook.workspace_id,
            webhook=webhook,
            idempotency_key=idempotency_key,
            body_sha256=body_sha,
            payload=payload,
            outcome=SubmissionOutcome.QUEUED,
            response={"ok": True, "status": SubmissionOutcome.QUEUED},
            status_code=202,
            ip=ip,
            user_agent=user_agent,
            page_url=page_url,
        ).pk
    with connection.cursor() as cursor:
        cursor.execute(
            _QUEUED_INSERT_SQL,
            [idempotency_key, body_sha, json.dumps(payload), ip, user_agent, page_url, webhook.pk, webhook.key_hash, webhook.version],
        )
        row = cursor.fetchone()
    if row is None:
        raise WebhookUnavailable()
    return row[0]


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
    discarded = int(outcome == SubmissionOutcome.DISCARDED)
    _count(webhook.pk, total=1, duplicates=int(outcome in DUPLICATE_OUTCOMES), discarded=discarded, at=now)


DUPLICATE_OUTCOMES = (SubmissionOutcome.MERGED, SubmissionOutcome.DUPLICATE)


def _count(webhook_id, *, total: int, duplicates: int, discarded: int, at) -> None:
    LeadWebhook.objects.filter(pk=webhook_id).update(
        total_received=F("total_received") + total,
        duplicates_received=F("duplicates_received") + duplicates,
        discarded_received=F("discarded_received") + discarded,
        last_received_at=Greatest(Coalesce("last_received_at", at), at),
    )


# ---------------------------------------------------------------------------------------------
# Queued submissions: captured by the worker in batches.

QUEUED_CAPTURE_BATCH = 500


def queued_capture_flag(workspace_id) -> str:
    return f"webhook-capture:{workspace_id}"


def enqueue_queued_capture(workspace_id) -> bool:
    from integrations.tasks import capture_queued_submissions

    return enqueue_coalesced(capture_queued_submissions, flag=queued_capture_flag(workspace_id), args=(str(workspace_id),))


def queued_submissions_capture(*, workspace_id, batch_size: int = QUEUED_CAPTURE_BATCH, webhook_id=None) -> int:
    """Captures the workspace's queued submissions (or one webhook's), oldest first, one
    transaction per batch, and returns how many were captured or rejected. Batches run through
    leads_capture_many: new people in a few statements, a person already known (or named twice)
    merged in order, as one by one. Batches of a workspace run one at a time (an advisory lock),
    so two workers draining at once still capture in the order received. Each row then carries
    its outcome, lead and the answer a replay gets; the webhooks' counters move once per batch."""
    from workspaces.models import Workspace

    workspace = Workspace.objects.get(pk=workspace_id)
    done = 0
    while True:
        with transaction.atomic():
            lock_values(queued_capture_flag(workspace_id))
            queued = WebhookSubmission.objects.filter(workspace_id=workspace_id, outcome=SubmissionOutcome.QUEUED)
            if webhook_id is not None:
                queued = queued.filter(webhook_id=webhook_id)
            rows = list(
                queued.select_related("webhook__pipeline", "webhook__stage")
                .select_for_update(of=("self",), skip_locked=True)
                .order_by("id")[:batch_size]
            )
            if not rows:
                return done
            _capture_rows(workspace, rows)
            done += len(rows)
        if len(rows) < batch_size:
            return done


def _capture_rows(workspace, rows: list[WebhookSubmission]) -> None:
    try:
        with transaction.atomic():
            _capture_batch(workspace, rows)
    except TRANSIENT_DB_ERRORS:
        raise  # the database is unwell, not the rows: the task retries the batch
    except Exception:
        # One bad row must not hold the queue: the rows are captured one by one, and only the
        # culprit leaves the queue as rejected.
        logger.exception("capturing a batch of %d queued submissions failed; capturing them one by one", len(rows))
        for row in rows:
            try:
                with transaction.atomic():
                    _capture_batch(workspace, [row])
            except TRANSIENT_DB_ERRORS:
                raise
            except Exception:
                logger.exception("queued submission %s could not be captured", row.pk)
                _reject_row(row, None)
                _write_outcomes([row])


def _capture_batch(workspace, rows: list[WebhookSubmission]) -> None:
    checked: list[tuple[WebhookSubmission, Submission]] = []
    for row in rows:
        try:
            checked.append((row, _submission(row.webhook, row.payload, page_url=row.page_url, ip=row.ip, user_agent=row.user_agent)))
        except ValidationError as error:
            _reject_row(row, error)
    results = leads_capture_many(workspace=workspace, submissions=[submission for _, submission in checked])
    for (row, _), result in zip(checked, results, strict=True):
        if isinstance(result, ValidationError):
            _reject_row(row, result)
        elif isinstance(result, DataError):
            _reject_row(row, ValidationError({"body": "A value does not fit its field (too long, or not a valid value)."}))
        else:
            row.outcome, row.lead, row.status_code = result.status, result.lead, 200
            row.response = {**_captured_body(result), "submissionId": str(row.pk)}
    _write_outcomes(rows)
    by_webhook: dict = {}
    for row in rows:
        if row.webhook_id and row.outcome != SubmissionOutcome.REJECTED:
            counts = by_webhook.setdefault(row.webhook_id, [0, 0, row.received_at])
            counts[0] += 1
            counts[1] += row.outcome in DUPLICATE_OUTCOMES
            counts[2] = max(counts[2], row.received_at)
    for webhook_id, (total, duplicates, last) in sorted(by_webhook.items()):
        _count(webhook_id, total=total, duplicates=duplicates, discarded=0, at=last)


_OUTCOMES_UPDATE_SQL = f"""
UPDATE {WebhookSubmission._meta.db_table} AS s
SET outcome = v.outcome, lead_id = v.lead_id, status_code = v.status_code, response = v.response::jsonb
FROM unnest(%s::bigint[], %s::varchar[], %s::uuid[], %s::integer[], %s::text[]) AS v(id, outcome, lead_id, status_code, response)
WHERE s.id = v.id
"""


def _write_outcomes(rows: list[WebhookSubmission]) -> None:
    """Each row's outcome, lead, status code and answer. One UPDATE … FROM unnest(arrays) on
    PostgreSQL: Django's bulk_update builds a CASE per row and field, which cost more CPU than
    capturing the batch (~0.5 ms a row of the worker's ~1 ms)."""
    connection = connections[router.db_for_write(WebhookSubmission)]
    if connection.vendor != "postgresql":
        WebhookSubmission.objects.bulk_update(rows, ["outcome", "lead", "status_code", "response"])
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _OUTCOMES_UPDATE_SQL,
            [
                [row.pk for row in rows],
                [row.outcome for row in rows],
                [str(row.lead_id) if row.lead_id else None for row in rows],
                [row.status_code for row in rows],
                [json.dumps(row.response) for row in rows],
            ],
        )


def _reject_row(row: WebhookSubmission, error: ValidationError | None) -> None:
    """Checked before the 202, so only what the database alone refuses lands here — or, with no
    error, a failure of ours (logged), which takes the row out of the queue rather than hold it."""
    row.outcome, row.lead, row.status_code = SubmissionOutcome.REJECTED, None, 400 if error is not None else 500
    if error is None:
        detail = {"code": "server_error", "message": "This submission could not be captured; the operators were told.", "fields": {}}
    else:
        fields = {key: " ".join(messages) for key, messages in error.message_dict.items()}
        first = next(iter(fields.items()))
        detail = {"code": "validation_error", "message": f"{first[0]}: {first[1]}", "fields": fields}
    row.response = {"ok": False, "status": SubmissionOutcome.REJECTED, "submissionId": str(row.pk), "error": detail}


def queued_workspaces(*, older_than) -> list[str]:
    """Workspaces with submissions still queued since before `older_than` (a lost message)."""
    return [
        str(pk)
        for pk in WebhookSubmission.objects.filter(outcome=SubmissionOutcome.QUEUED, received_at__lt=older_than)
        .values_list("workspace_id", flat=True)
        .distinct()
    ]


def submission_status(*, webhook: LeadWebhook, submission_id: str) -> dict | None:
    """What the sender of a submission may learn of it with the webhook's key (None: not this
    webhook's, or past retention)."""
    if not submission_id.isascii() or not submission_id.isdigit() or len(submission_id) > 18:
        return None
    row = WebhookSubmission.objects.filter(webhook=webhook, pk=int(submission_id)).only("pk", "response", "outcome").first()
    if row is None:
        return None
    if row.outcome == SubmissionOutcome.QUEUED:
        return _queued_body(row.pk)
    return {**row.response, "submissionId": str(row.pk)}
