from django.db.models import Prefetch, QuerySet

from pipelines.models import Pipeline, Stage
from workspaces.models import Workspace
from workspaces.scoping import scoped, scoped_get_or_404


def pipelines_with_stages(*, workspace: Workspace) -> QuerySet[Pipeline]:
    return scoped(Pipeline, workspace).prefetch_related(Prefetch("stages", queryset=Stage.objects.order_by("position")))


def pipeline_get(*, workspace: Workspace, pipeline_id) -> Pipeline:
    return scoped_get_or_404(pipelines_with_stages(workspace=workspace), workspace, pk=pipeline_id)
