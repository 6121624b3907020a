"""The partner API for pipelines: stages are edited with their pipeline."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from pipelines import services
from pipelines.api import serializers as s
from pipelines.models import Stage
from pipelines.selectors import pipeline_get, pipelines_with_stages
from workspaces.permissions import LEADS_MANAGE, LEADS_VIEW
from workspaces.scoping import scoped


def _pipeline_data(request, pipeline_id) -> dict:
    return s.PipelineSerializer(pipeline_get(workspace=request.workspace, pipeline_id=pipeline_id)).data


def _validated(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class PipelineListCreateApi(APIView):
    required_permissions = {"GET": LEADS_VIEW, "POST": LEADS_MANAGE}

    @extend_schema(responses=s.PipelineSerializer(many=True))
    def get(self, request):
        pipelines = list(pipelines_with_stages(workspace=request.workspace))
        return Response({"results": s.PipelineSerializer(pipelines, many=True).data, "count": len(pipelines)})

    @extend_schema(request=s.PipelineCreateSerializer, responses={201: s.PipelineSerializer})
    def post(self, request):
        data = _validated(s.PipelineCreateSerializer, request)
        if "stages" in data:
            stages = [s.StageInputSerializer().to_spec(stage) for stage in data["stages"]]
        else:
            stages = [services.StageSpec(**stage) for stage in services.DEFAULT_STAGES]
        pipeline = services.pipeline_create(workspace=request.workspace, name=data["name"], stages=stages)
        return Response(_pipeline_data(request, pipeline.pk), status=status.HTTP_201_CREATED)


class PipelineDetailApi(APIView):
    required_permissions = {"GET": LEADS_VIEW, "PATCH": LEADS_MANAGE, "DELETE": LEADS_MANAGE}

    @extend_schema(responses=s.PipelineSerializer)
    def get(self, request, pipeline_id):
        return Response(_pipeline_data(request, pipeline_id))

    @extend_schema(request=s.PipelineUpdateSerializer, responses=s.PipelineSerializer)
    def patch(self, request, pipeline_id):
        pipeline = pipeline_get(workspace=request.workspace, pipeline_id=pipeline_id)
        data = _validated(s.PipelineUpdateSerializer, request)
        stages = [s.StageInputSerializer().to_spec(stage) for stage in data["stages"]] if "stages" in data else None
        services.pipeline_update(
            pipeline=pipeline,
            actor=request.user,
            name=data.get("name"),
            stages=stages,
            reassign={str(k): str(v) for k, v in data.get("reassign", {}).items()},
        )
        return Response(_pipeline_data(request, pipeline_id))

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "moveToStageId", str, description="Where this pipeline's leads go (default: the default pipeline's first stage)."
            )
        ],
        responses={200: None},
    )
    def delete(self, request, pipeline_id):
        pipeline = pipeline_get(workspace=request.workspace, pipeline_id=pipeline_id)
        move_to = None
        raw_stage_id = request.query_params.get("moveToStageId")
        if raw_stage_id:
            try:
                move_to = scoped(Stage, request.workspace).get(pk=raw_stage_id)
            except (Stage.DoesNotExist, DjangoValidationError):
                raise ValidationError({"moveToStageId": "Unknown stage."}) from None
        moved = services.pipeline_delete(pipeline=pipeline, actor=request.user, move_to_stage=move_to)
        return Response({"deleted": True, "movedLeads": moved})


class PipelineEnsureDefaultApi(APIView):
    required_permissions = {"POST": LEADS_VIEW}

    @extend_schema(request=None, responses={200: s.PipelineSerializer, 201: s.PipelineSerializer})
    def post(self, request):
        pipeline, created = services.pipeline_ensure_default(workspace=request.workspace)
        return Response(_pipeline_data(request, pipeline.pk), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
