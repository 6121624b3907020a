"""The board's lead actions: thin HTMX views over leads.services (the same services as the API)."""

import json

from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from leads import services
from leads.forms import LeadCreateForm, LeadEditForm, NoteForm
from leads.models import Lead
from leads.segments.models import SegmentMembership
from leads.selectors import lead_get_detail, lead_possible_duplicates
from leads.tracking.models import LeadEngagement
from leads.tracking.selectors import company_rollup, lead_profile, lead_timeline
from pipelines.models import Stage
from pipelines.selectors import pipelines_with_stages
from scoring.models import ScoreChange
from scoring.services import score_breakdown
from workspaces.decorators import workspace_permission_required
from workspaces.permissions import LEADS_MANAGE, LEADS_VIEW, LEADS_WORK
from workspaces.scoping import scoped, scoped_get_or_404
from workspaces.selectors import workspace_member_or_none, workspace_members

LEADS_CHANGED_EVENT = "leadsChanged"
TIMELINE_TYPES = [
    ("activity", "Activity"),
    ("note", "Notes"),
    ("pageview", "Page views"),
    ("event", "Events"),
    ("form", "Forms"),
    ("email", "Emails"),
]
DRAWER_TIMELINE_LIMIT = 50


def _changed(response: HttpResponse, **detail) -> HttpResponse:
    """Tells the board (listening for leadsChanged) to refresh its columns."""
    response["HX-Trigger"] = json.dumps({LEADS_CHANGED_EVENT: detail or True})
    return response


def _drawer(request, lead_id, *, form=None, note_form=None, error: str = "", status: int = 200) -> HttpResponse:
    lead = lead_get_detail(workspace=request.workspace, lead_id=lead_id)
    custom_fields = [
        (lead.custom_fields.get("_displayNames", {}).get(key, key), value)
        for key, value in lead.custom_fields.items()
        if key != "_displayNames"
    ]
    engagement = LeadEngagement.objects.filter(lead=lead).first()
    context = {
        "lead": lead,
        "custom_fields": custom_fields,
        "form": form
        or LeadEditForm(
            initial={
                "name": lead.name,
                "email": lead.email,
                "phone": lead.phone,
                "company": lead.company.name if lead.company else "",
                "title": lead.title,
                "department": lead.department,
                "status": lead.status,
                "lifecycle_stage": lead.lifecycle_stage,
            }
        ),
        "note_form": note_form or NoteForm(),
        "members": workspace_members(workspace=request.workspace),
        "stages": Stage.objects.filter(pipeline_id=lead.pipeline_id).order_by("position"),
        "duplicates": lead_possible_duplicates(lead=lead),
        "error": error,
        "profile": lead_profile(lead=lead, engagement=engagement),
        "engagement": engagement,
        "account": company_rollup(company=lead.company) if lead.company_id else None,
        "timeline": _timeline_entries(lead, {value for value, _ in TIMELINE_TYPES}),
        "timeline_types": TIMELINE_TYPES,
        "breakdown": score_breakdown(lead=lead),
        "score_chart": _score_chart(lead),
        "segments": list(SegmentMembership.objects.filter(lead=lead).select_related("segment").order_by("segment__name")),
    }
    return render(request, "leads/_drawer.html", context, status=status)


SCORE_CHART_POINTS = 30
CHART_WIDTH, CHART_HEIGHT = 280, 60


def _score_chart(lead) -> dict | None:
    """The last score changes as SVG polyline points (oldest left); None with fewer than two."""
    changes = list(ScoreChange.objects.filter(lead=lead).order_by("-created_at", "-id")[:SCORE_CHART_POINTS])[::-1]
    if not changes:
        return None
    values = [changes[0].previous_score, *(change.new_score for change in changes)]
    top = max(max(values), 1)
    step = CHART_WIDTH / (len(values) - 1)
    points = " ".join(f"{index * step:.1f},{CHART_HEIGHT - value / top * CHART_HEIGHT:.1f}" for index, value in enumerate(values))
    return {
        "points": points,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "first": changes[0].created_at,
        "max": top,
        "count": len(changes),
    }


def _timeline_entries(lead, types: set[str]) -> list[dict]:
    return [{**entry, "obj": entry["_obj"]} for entry in lead_timeline(lead=lead, types=types, limit=DRAWER_TIMELINE_LIMIT)]


@require_GET
@workspace_permission_required(LEADS_VIEW)
def lead_timeline_partial(request, lead_id):
    """The drawer's timeline, filtered by the checked types."""
    lead = lead_get_detail(workspace=request.workspace, lead_id=lead_id)
    known = {value for value, _ in TIMELINE_TYPES}
    types = {value for value in request.GET.getlist("types") if value in known}
    return render(request, "leads/_timeline.html", {"timeline": _timeline_entries(lead, types) if types else []})


def _posted_stage(request) -> Stage | None:
    """The workspace's stage named by the form field `stage`, or None."""
    try:
        return scoped(Stage, request.workspace).get(pk=request.POST.get("stage"))
    except (Stage.DoesNotExist, ValidationError):
        return None


def _lead(request, lead_id) -> Lead:
    return scoped_get_or_404(scoped(Lead, request.workspace).alive(), request.workspace, pk=lead_id)


@require_GET
@workspace_permission_required(LEADS_VIEW)
def lead_drawer(request, lead_id):
    return _drawer(request, lead_id)


@workspace_permission_required(LEADS_MANAGE)
def lead_new(request):
    pipelines = list(pipelines_with_stages(workspace=request.workspace))
    pipeline = next((p for p in pipelines if str(p.pk) == request.POST.get("pipeline", request.GET.get("pipeline"))), None)
    if request.method == "POST":
        form = LeadCreateForm(request.POST)
        if form.is_valid():
            try:
                lead = services.lead_create(
                    workspace=request.workspace,
                    actor=request.user,
                    data={**form.service_data(), "source_type": "manual", "pipeline": pipeline},
                )
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                response = render(request, "leads/_lead_form.html", {"form": LeadCreateForm(), "pipeline": pipeline, "created": lead})
                return _changed(response, created=str(lead.pk))
    else:
        form = LeadCreateForm()
    return render(request, "leads/_lead_form.html", {"form": form, "pipeline": pipeline})


@require_POST
@workspace_permission_required(LEADS_WORK)
def lead_move(request, lead_id):
    """The board's drag and drop. Answers JSON; any non-2xx makes the board put the card back."""
    lead = _lead(request, lead_id)
    stage = _posted_stage(request)
    if stage is None:
        return JsonResponse({"ok": False, "error": "That stage does not exist any more. Reload the board."}, status=400)
    try:
        lead = services.lead_stage_move(lead=lead, stage=stage, actor=request.user)
    except ValidationError as error:
        return JsonResponse({"ok": False, "error": " ".join(error.messages)}, status=400)
    return JsonResponse({"ok": True, "leadId": str(lead.pk), "stageId": str(lead.stage_id)})


@require_POST
@workspace_permission_required(LEADS_MANAGE)
def lead_edit(request, lead_id):
    lead = _lead(request, lead_id)
    form = LeadEditForm(request.POST)
    if form.is_valid():
        try:
            services.lead_update(lead=lead, actor=request.user, data=form.service_data())
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            return _changed(_drawer(request, lead_id))
    return _drawer(request, lead_id, form=form)


@require_POST
@workspace_permission_required(LEADS_WORK)
def lead_stage(request, lead_id):
    lead = _lead(request, lead_id)
    stage = _posted_stage(request)
    try:
        if stage is None:
            raise ValidationError({"stage": "Unknown stage."})
        services.lead_stage_move(lead=lead, stage=stage, actor=request.user)
    except ValidationError:
        return _drawer(request, lead_id, error="Choose a stage of this workspace.")
    return _changed(_drawer(request, lead_id))


@require_POST
@workspace_permission_required(LEADS_WORK)
def lead_note(request, lead_id):
    lead = _lead(request, lead_id)
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _drawer(request, lead_id, note_form=form)
    services.lead_note_add(lead=lead, author=request.user, text=form.cleaned_data["text"])
    return _drawer(request, lead_id)


@require_POST
@workspace_permission_required(LEADS_MANAGE)
def lead_tags(request, lead_id):
    lead = _lead(request, lead_id)
    add = [tag for tag in request.POST.get("add", "").split(",") if tag.strip()]
    remove = request.POST.getlist("remove")
    try:
        services.lead_tags_change(lead=lead, actor=request.user, add=add, remove=remove)
    except ValidationError as error:
        return _drawer(request, lead_id, error=" ".join(error.messages))
    return _changed(_drawer(request, lead_id))


@require_POST
@workspace_permission_required(LEADS_WORK)
def lead_assign(request, lead_id):
    lead = _lead(request, lead_id)
    raw_owner = request.POST.get("owner", "")
    owner = workspace_member_or_none(workspace=request.workspace, user_id=raw_owner) if raw_owner else None
    if raw_owner and owner is None:
        return _drawer(request, lead_id, error="Choose a member of this workspace.")
    if not request.membership.has_perm(LEADS_MANAGE) and (owner is None or owner.pk != request.user.pk):
        return _drawer(request, lead_id, error="Your role may only assign leads to yourself.", status=403)
    services.lead_assign(lead=lead, owner=owner, actor=request.user)
    return _changed(_drawer(request, lead_id))


@require_POST
@workspace_permission_required(LEADS_WORK)
def lead_convert(request, lead_id):
    lead = _lead(request, lead_id)
    services.lead_convert(lead=lead, actor=request.user, name=request.POST.get("name") or None)
    return _changed(_drawer(request, lead_id))


@require_POST
@workspace_permission_required(LEADS_MANAGE)
def lead_delete(request, lead_id):
    lead = _lead(request, lead_id)
    services.lead_delete(lead=lead, actor=request.user)
    return _changed(render(request, "leads/_drawer_closed.html", {"message": f"{lead.name} was deleted."}), deleted=str(lead.pk))


@require_POST
@workspace_permission_required(LEADS_MANAGE)
def leads_bulk(request):
    action = request.POST.get("action", "")
    lead_ids = request.POST.getlist("lead")
    stage = owner = None
    try:
        if action == "move_stage":
            stage = _posted_stage(request)
            if stage is None:
                raise ValidationError({"stage": "Choose a stage."})
        if action == "assign" and request.POST.get("owner"):
            owner = workspace_member_or_none(workspace=request.workspace, user_id=request.POST["owner"])
            if owner is None:
                raise ValidationError({"owner": "Choose a member of this workspace."})
        if not lead_ids:
            raise ValidationError({"lead": "Select at least one lead."})
        result = services.leads_bulk_action(
            workspace=request.workspace,
            actor=request.user,
            action=action,
            lead_ids=lead_ids,
            stage=stage,
            owner=owner,
            tags=[tag for tag in request.POST.get("tags", "").split(",") if tag.strip()],
        )
    except ValidationError as error:
        return render(request, "leads/_bulk_result.html", {"error": " ".join(error.messages)}, status=200)
    return _changed(render(request, "leads/_bulk_result.html", {"result": result}))


@require_POST
@workspace_permission_required(LEADS_MANAGE)
def lead_merge(request, lead_id):
    """Merges the chosen duplicate into this lead (the one whose drawer is open)."""
    survivor = _lead(request, lead_id)
    try:
        other = scoped(Lead, request.workspace).alive().get(pk=request.POST.get("other"))
        services.lead_merge(survivor=survivor, other=other, actor=request.user)
    except (Lead.DoesNotExist, ValidationError):
        return _drawer(request, lead_id, error="That lead cannot be merged (it may have been deleted or merged already).")
    return _changed(_drawer(request, lead_id))
