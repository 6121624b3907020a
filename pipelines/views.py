"""The kanban board and pipeline settings: thin views over selectors and pipelines.services."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from leads.models import SourceType
from leads.selectors import BOARD_FILTER_PARAMS, board_cards, lead_board_columns, lead_board_queryset, lead_tag_names
from pipelines import services
from pipelines.models import Stage, StageType
from pipelines.selectors import pipeline_get, pipelines_with_stages
from workspaces.decorators import workspace_permission_required
from workspaces.permissions import LEADS_MANAGE, LEADS_VIEW
from workspaces.scoping import scoped_get_or_404
from workspaces.selectors import workspace_members

MAX_OFFSET = 10_000_000  # far past any real column; larger numbers would overflow the OFFSET
_ID_SLOT = "lead-id-slot"


def board_card_rows(leads) -> list[dict]:
    """What each card shows, worked out once per page in Python: the board renders hundreds of
    cards, and reversing two URLs and resolving display names per card in the template cost more
    than the rest of the page (measured at 100k leads)."""
    move_url, drawer_url = reverse("lead-move", args=[_ID_SLOT]), reverse("lead-drawer", args=[_ID_SLOT])
    sources = dict(SourceType.choices)
    tags = lead_tag_names(lead_ids=[lead.pk for lead in leads])
    owners: dict = {}
    rows = []
    for lead in leads:
        pk, owner = str(lead.pk), lead.owner
        if owner is not None and owner.pk not in owners:
            owners[owner.pk] = (owner.display_name, owner.initials)
        owner_name, owner_initials = owners[owner.pk] if owner is not None else ("", "")
        rows.append(
            {
                "pk": pk,
                "name": lead.name,
                "company": lead.company.name if lead.company else "",
                "score": lead.score,
                "source": sources.get(lead.source_type, lead.source_type),
                "owner_name": owner_name,
                "owner_initials": owner_initials,
                "tags": tags.get(lead.pk, []),
                "move_url": move_url.replace(_ID_SLOT, pk),
                "drawer_url": drawer_url.replace(_ID_SLOT, pk),
            }
        )
    return rows


def home(request):
    return redirect("board" if request.user.is_authenticated else "login")


def _active_pipeline(request):
    default, _ = services.pipeline_ensure_default(workspace=request.workspace)
    pipelines = list(pipelines_with_stages(workspace=request.workspace))
    wanted = request.GET.get("pipeline") or str(default.pk)
    pipeline = next((p for p in pipelines if str(p.pk) == wanted), None)
    if pipeline is None:
        pipeline = next(p for p in pipelines if p.pk == default.pk)
    return pipelines, pipeline


def _filters(request) -> dict[str, str]:
    return {name: request.GET.get(name, "").strip() for name in BOARD_FILTER_PARAMS}


def _open_lead(request) -> str | None:
    from leads.models import Lead

    raw = request.GET.get("lead", "")
    try:
        lead = Lead.objects.filter(workspace=request.workspace, pk=raw, deleted_at__isnull=True).only("pk").first() if raw else None
    except (ValueError, ValidationError):
        return None
    return str(lead.pk) if lead else None


@require_GET
@workspace_permission_required(LEADS_VIEW)
def board(request):
    """One column per stage, with exact counts; the first cards of each column, more on scroll.
    A request from the board itself (htmx, target board-columns) gets only the columns."""
    pipelines, pipeline = _active_pipeline(request)
    columns = lead_board_columns(workspace=request.workspace, pipeline=pipeline, params=request.GET, user=request.user)
    rows = iter(board_card_rows([lead for column in columns for lead in column["cards"]]))
    for column in columns:
        column["cards"] = [next(rows) for _ in column["cards"]]
    context = {
        "pipelines": pipelines,
        "pipeline": pipeline,
        "columns": columns,
        "total": sum(column["count"] for column in columns),
        "filters": _filters(request),
        "query": request.GET.urlencode(),
        "members": workspace_members(workspace=request.workspace),
        "sources": SourceType.choices,
        # ?lead=<id> opens that lead's drawer (links from segments, notifications, emails).
        "open_lead": _open_lead(request),
    }
    if request.htmx and request.htmx.target == "board-columns":
        return render(request, "pipelines/_columns.html", context)
    return render(request, "pipelines/board.html", context)


@require_GET
@workspace_permission_required(LEADS_VIEW)
def column_more(request, stage_id):
    stage = scoped_get_or_404(Stage.objects.select_related("pipeline"), request.workspace, pk=stage_id)
    raw_offset = request.GET.get("offset", "0")
    offset = min(int(raw_offset), MAX_OFFSET) if raw_offset.isascii() and raw_offset.isdigit() else 0
    queryset = lead_board_queryset(workspace=request.workspace, pipeline=stage.pipeline, params=request.GET, user=request.user)
    cards = list(board_cards(queryset=queryset, stage=stage, offset=offset))
    total = queryset.filter(stage=stage).count()
    next_offset = offset + len(cards)
    return render(
        request,
        "pipelines/_cards.html",
        {
            "cards": board_card_rows(cards),
            "stage": stage,
            "next_offset": next_offset,
            "has_more": next_offset < total,
            "query": _query_without_offset(request),
        },
    )


def _query_without_offset(request) -> str:
    query = request.GET.copy()
    query.pop("offset", None)
    return query.urlencode()


def _stage_specs_from_post(post) -> tuple[list[services.StageSpec], dict[str, str]]:
    """Reads the settings form: rows in their on-screen order; a row marked removed names where its
    leads go."""
    ids, names, colors, types = (
        post.getlist("stage_id"),
        post.getlist("stage_name"),
        post.getlist("stage_color"),
        post.getlist("stage_type"),
    )
    removed = set(post.getlist("remove"))
    specs, reassign = [], {}
    for stage_id, name, color, stage_type in zip(ids, names, colors, types, strict=False):
        if stage_id and stage_id in removed:
            if post.get(f"move_to_{stage_id}"):
                reassign[stage_id] = post[f"move_to_{stage_id}"]
            continue
        specs.append(services.StageSpec(id=stage_id or None, name=name, color=color, type=stage_type))
    return specs, reassign


@workspace_permission_required(LEADS_MANAGE)
def pipeline_settings(request, pipeline_id):
    pipeline = pipeline_get(workspace=request.workspace, pipeline_id=pipeline_id)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        specs, reassign = _stage_specs_from_post(request.POST)
        try:
            services.pipeline_update(
                pipeline=pipeline, actor=request.user, name=request.POST.get("name", ""), stages=specs, reassign=reassign
            )
        except ValidationError as error:
            errors = error.message_dict
        else:
            messages.success(request, "Pipeline saved.")
            return redirect(f"{reverse('pipeline-settings', args=[pipeline.pk])}")
    return render(
        request,
        "pipelines/settings.html",
        {
            "pipeline": pipeline,
            "pipelines": list(pipelines_with_stages(workspace=request.workspace)),
            "stages": list(pipeline.stages.all()),
            "stage_types": StageType.choices,
            "errors": errors,
        },
        status=400 if errors else 200,
    )


@require_POST
@workspace_permission_required(LEADS_MANAGE)
def pipeline_new(request):
    try:
        pipeline = services.pipeline_create(
            workspace=request.workspace,
            name=request.POST.get("name", ""),
            stages=[services.StageSpec(**stage) for stage in services.DEFAULT_STAGES],
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("board")
    messages.success(request, f"Created pipeline {pipeline.name}.")
    return redirect("pipeline-settings", pipeline_id=pipeline.pk)


@require_POST
@workspace_permission_required(LEADS_MANAGE)
def pipeline_delete(request, pipeline_id):
    pipeline = pipeline_get(workspace=request.workspace, pipeline_id=pipeline_id)
    try:
        moved = services.pipeline_delete(pipeline=pipeline, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("pipeline-settings", pipeline_id=pipeline.pk)
    messages.success(request, f"Deleted pipeline {pipeline.name}; {moved} lead(s) moved to the default pipeline.")
    return redirect("board")
