"""The segment pages: list, builder (nested groups of field/operator/value rows with a live
count), members and automation. Writes go through the same services as the API."""

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from leads.segments import services
from leads.segments.criteria import FIELDS
from leads.segments.models import RefreshInterval, Segment, SegmentMembership
from workspaces.decorators import workspace_permission_required
from workspaces.permissions import LEADS_MANAGE, LEADS_VIEW
from workspaces.scoping import scoped, scoped_get_or_404

PAGE_MEMBERS = 50
EXAMPLE_CRITERIA = {"all": [{"field": "score", "operator": "gte", "value": 50}]}


def _fields() -> dict:
    return {name: {**spec, "operators": dict(spec["operators"])} for name, spec in FIELDS.items()}


def _errors(error: ValidationError) -> dict:
    return {key: " ".join(value) for key, value in error.message_dict.items()}


def _parse_json(text: str, key: str):
    try:
        return json.loads(text or "null")
    except ValueError as error:
        raise ValidationError({key: f"Not valid JSON: {error}"}) from None


@workspace_permission_required(LEADS_VIEW)
def segment_list(request):
    segments = scoped(Segment, request.workspace).order_by("name")
    return render(request, "leads/segments.html", {"segments": segments})


def _builder(request, segment: Segment | None, *, errors=None, posted=None, status=200):
    members = []
    if segment is not None:
        members = list(
            SegmentMembership.objects.filter(segment=segment, lead__deleted_at__isnull=True)
            .select_related("lead__company")
            .order_by("-entered_at")[:PAGE_MEMBERS]
        )
    criteria = (posted or {}).get("criteria") or json.dumps(segment.criteria if segment else EXAMPLE_CRITERIA)
    automation = (posted or {}).get("automation") or json.dumps(segment.automation if segment else {"onEnter": [], "onExit": []}, indent=2)
    return render(
        request,
        "leads/segment_builder.html",
        {
            "segment": segment,
            "members": members,
            "criteria_json": criteria,
            "automation_json": automation,
            "fields": _fields(),
            "intervals": RefreshInterval.choices,
            "errors": errors or {},
            "posted": posted,
        },
        status=status,
    )


def _save(request, segment: Segment | None):
    post = request.POST
    try:
        data = {
            "name": post.get("name", ""),
            "description": post.get("description", ""),
            "criteria": _parse_json(post.get("criteria", ""), "criteria"),
            "refresh_interval": post.get("refresh_interval", RefreshInterval.HOURLY),
            "automation": _parse_json(post.get("automation", ""), "automation") or {},
        }
        if segment is None:
            segment = services.segment_create(workspace=request.workspace, **data)
        else:
            segment = services.segment_update(segment=segment, **data)
    except ValidationError as error:
        return _builder(request, segment, errors=_errors(error), posted=post, status=400)
    messages.success(request, f"Saved {segment.name}: {segment.member_count} lead{'s' if segment.member_count != 1 else ''}.")
    return redirect("segment-detail", segment_id=segment.pk)


@workspace_permission_required(LEADS_MANAGE)
def segment_new(request):
    if request.method == "POST":
        return _save(request, None)
    return _builder(request, None)


@workspace_permission_required(LEADS_VIEW)
def segment_detail(request, segment_id):
    segment = scoped_get_or_404(Segment, request.workspace, pk=segment_id)
    if request.method == "POST":
        if not request.membership.has_perm(LEADS_MANAGE):
            return render(
                request, "leads/segment_builder.html", {"segment": segment, "errors": {"": "Your role cannot change segments."}}, status=403
            )
        return _save(request, segment)
    return _builder(request, segment)


@require_POST
@workspace_permission_required(LEADS_VIEW)
def segment_preview(request):
    """The live count under the builder: renders the count and the first members."""
    try:
        preview = services.segment_preview(workspace=request.workspace, criteria=_parse_json(request.POST.get("criteria", ""), "criteria"))
    except ValidationError as error:
        return render(request, "leads/_segment_preview.html", {"errors": _errors(error)})
    return render(request, "leads/_segment_preview.html", preview)


@require_POST
@workspace_permission_required(LEADS_MANAGE)
def segment_delete(request, segment_id):
    segment = scoped_get_or_404(Segment, request.workspace, pk=segment_id)
    services.segment_delete(segment=segment)
    messages.success(request, f"Deleted {segment.name}. Its leads are untouched.")
    return redirect("segments")
