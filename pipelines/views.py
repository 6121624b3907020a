from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpResponseForbidden
from django.shortcuts import redirect, render

from leads.selectors import leads_base
from pipelines.selectors import pipelines_with_stages
from pipelines.services import pipeline_ensure_default

CARDS_PER_COLUMN = 50


def home(request):
    return redirect("board" if request.user.is_authenticated else "login")


@login_required
def board(request):
    """The pipeline board: one column per stage with its exact count and its newest cards."""
    workspace = request.workspace
    if workspace is None:
        return HttpResponseForbidden("You are not a member of any workspace yet. Ask an admin to invite you.")
    default, _ = pipeline_ensure_default(workspace=workspace)
    pipelines = list(pipelines_with_stages(workspace=workspace))
    pipeline = next((p for p in pipelines if str(p.pk) == request.GET.get("pipeline")), default)
    if pipeline is default:
        pipeline = next(p for p in pipelines if p.pk == default.pk)
    stages = list(pipeline.stages.all())
    leads = leads_base(workspace=workspace).filter(pipeline=pipeline)
    counts = leads.values("stage_id").annotate(n=Count("id")).order_by()
    count_by_stage = {row["stage_id"]: row["n"] for row in counts}
    columns = []
    for stage in stages:
        cards = list(leads.filter(stage=stage).order_by("-created_at", "-id")[:CARDS_PER_COLUMN])
        columns.append({"stage": stage, "count": count_by_stage.get(stage.pk, 0), "cards": cards})
    return render(
        request,
        "pipelines/board.html",
        {"pipelines": pipelines, "pipeline": pipeline, "columns": columns, "total": sum(count_by_stage.values())},
    )
