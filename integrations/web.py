"""The Webhooks settings page: create, copy the URL, edit mapping and dedup, regenerate, delete."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from integrations import services
from integrations.mapping import MAPPING_TARGETS
from integrations.models import DedupStrategy, LeadWebhook, ResponseMode
from pipelines.models import Stage
from workspaces.decorators import workspace_permission_required
from workspaces.permissions import LEADS_MANAGE
from workspaces.scoping import scoped, scoped_get_or_404


def _list_context(request, **extra) -> dict:
    return {"webhooks": scoped(LeadWebhook, request.workspace).select_related("stage", "pipeline").order_by("name"), **extra}


def _ingest_url(request, raw_key: str) -> str:
    return request.build_absolute_uri(reverse("webhook-ingest", args=[raw_key]))


@workspace_permission_required(LEADS_MANAGE)
def webhook_list(request):
    if request.method == "POST":
        try:
            webhook, raw = services.webhook_create(workspace=request.workspace, name=request.POST.get("name", ""))
        except ValidationError as error:
            return render(request, "integrations/webhooks.html", _list_context(request, error=" ".join(error.messages)), status=400)
        # The key is shown now and never again: only its hash is stored.
        return render(request, "integrations/webhooks.html", _list_context(request, new_url=_ingest_url(request, raw), new_webhook=webhook))
    return render(request, "integrations/webhooks.html", _list_context(request))


def _mapping_from_text(text: str) -> dict[str, str]:
    """One `incoming field = core field` per line."""
    mapping = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        incoming, separator, target = line.partition("=")
        if not separator:
            raise ValidationError({"field_mapping": f"Line {number}: write `incoming_field = core_field`."})
        mapping[incoming.strip()] = target.strip()
    return mapping


@workspace_permission_required(LEADS_MANAGE)
def webhook_edit(request, webhook_id):
    webhook = scoped_get_or_404(LeadWebhook, request.workspace, pk=webhook_id)
    stages = Stage.objects.filter(workspace=request.workspace).select_related("pipeline").order_by("pipeline__created_at", "position")
    error = ""
    if request.method == "POST":
        try:
            stage_id = request.POST.get("stage") or None
            stage = scoped(Stage, request.workspace).get(pk=stage_id) if stage_id else None
            services.webhook_update(
                webhook=webhook,
                name=request.POST.get("name", ""),
                field_mapping=_mapping_from_text(request.POST.get("field_mapping", "")),
                dedup_strategy=request.POST.get("dedup_strategy", ""),
                honeypot_field=request.POST.get("honeypot_field", ""),
                response_mode=request.POST.get("response_mode", webhook.response_mode),
                is_active=request.POST.get("is_active") == "on",
                stage=stage,
            )
        except (ValidationError, Stage.DoesNotExist) as err:
            error = " ".join(err.messages) if isinstance(err, ValidationError) else "Choose a stage of this workspace."
        else:
            messages.success(request, f"Saved {webhook.name}.")
            return redirect("webhooks")
    mapping_text = "\n".join(f"{incoming} = {target}" for incoming, target in webhook.field_mapping.items())
    return render(
        request,
        "integrations/webhook_edit.html",
        {
            "webhook": webhook,
            "stages": stages,
            "strategies": DedupStrategy.choices,
            "response_modes": ResponseMode.choices,
            "targets": [target for target in MAPPING_TARGETS if target != "ignore"],
            "mapping_text": request.POST.get("field_mapping", mapping_text) if error else mapping_text,
            "error": error,
        },
        status=400 if error else 200,
    )


@require_POST
@workspace_permission_required(LEADS_MANAGE)
def webhook_regenerate(request, webhook_id):
    webhook = scoped_get_or_404(LeadWebhook, request.workspace, pk=webhook_id)
    raw = services.webhook_regenerate_key(webhook=webhook)
    return render(request, "integrations/webhooks.html", _list_context(request, new_url=_ingest_url(request, raw), new_webhook=webhook))


@require_POST
@workspace_permission_required(LEADS_MANAGE)
def webhook_delete(request, webhook_id):
    webhook = scoped_get_or_404(LeadWebhook, request.workspace, pk=webhook_id)
    services.webhook_delete(webhook=webhook)
    messages.success(request, f"Deleted {webhook.name}. Leads it received are kept.")
    return redirect("webhooks")
