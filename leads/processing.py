"""What happens to a lead after capture, step by step: received → validated → deduplicated → ready.

Each step claims its transition with a conditional UPDATE, so a step runs once even when the task
is delivered twice. Hooks named in settings.LEAD_PROCESSING_HOOKS (enrichment providers, later
scoring) run between validation and deduplication; a hook raises TransientError for a failure
worth retrying.
"""

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from leads.models import ActivityType, Lead, LeadActivity, ProcessingState
from leads.normalization import assess_phone, email_kind

PENDING_STATES = (ProcessingState.RECEIVED, ProcessingState.VALIDATED, ProcessingState.DEDUPLICATED)


class TransientError(Exception):
    """A failure that may pass (a provider timing out, a 5xx): the task retries with backoff."""


def _advance(lead_id, from_state: str, to_state: str, **changes) -> bool:
    return bool(
        Lead.objects.filter(pk=lead_id, processing_state=from_state).update(
            processing_state=to_state, processing_state_at=timezone.now(), **changes
        )
    )


def _validate(lead: Lead) -> bool:
    """Re-derives what capture checks for every lead, whatever its path (the API skips capture)."""
    warnings = list(lead.validation_warnings)
    _, phone_country, phone_warnings = assess_phone(lead.phone, lead.workspace.default_region)
    warnings += [w for w in phone_warnings if w not in warnings]
    return _advance(
        lead.pk,
        ProcessingState.RECEIVED,
        ProcessingState.VALIDATED,
        email_kind=email_kind(lead.email) if lead.email else "",
        phone_country=phone_country,
        validation_warnings=warnings,
    )


def _run_hooks(lead: Lead) -> None:
    for path in getattr(settings, "LEAD_PROCESSING_HOOKS", ()):
        import_string(path)(lead)


def process(lead_id) -> str | None:
    """Runs the steps the lead has not done yet; returns its final state (None if it is gone)."""
    lead = Lead.objects.select_related("workspace").filter(pk=lead_id).first()
    if lead is None or lead.deleted_at is not None:
        return None
    trail = []
    if lead.processing_state == ProcessingState.RECEIVED and _validate(lead):
        trail.append(ProcessingState.VALIDATED)
        lead.refresh_from_db()
    if lead.processing_state == ProcessingState.VALIDATED:
        _run_hooks(lead)
        if _advance(lead.pk, ProcessingState.VALIDATED, ProcessingState.DEDUPLICATED):
            trail.append(ProcessingState.DEDUPLICATED)
        lead.refresh_from_db()
    if lead.processing_state == ProcessingState.DEDUPLICATED:
        from leads.segments.services import lead_segments_refresh
        from scoring.services import leads_rescore

        if leads_rescore(workspace_id=lead.workspace_id, lead_ids=[lead.pk], reason="captured"):
            trail.append("scored")
        lead_segments_refresh(workspace_id=lead.workspace_id, lead_ids=[lead.pk], reason="captured")
        with transaction.atomic():
            if _advance(lead.pk, ProcessingState.DEDUPLICATED, ProcessingState.READY):
                trail.append(ProcessingState.READY)
                LeadActivity.objects.create(
                    workspace_id=lead.workspace_id,
                    lead_id=lead.pk,
                    type=ActivityType.PROCESSED,
                    data={"states": trail, "warnings": lead.validation_warnings},
                )
        lead.refresh_from_db()
    return lead.processing_state


def mark_failed(lead_id) -> None:
    Lead.objects.filter(pk=lead_id, processing_state__in=PENDING_STATES).update(
        processing_state=ProcessingState.FAILED, processing_state_at=timezone.now()
    )
