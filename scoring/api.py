"""Scoring API: a lead's breakdown (now or at another instant) and history; the workspace's
versioned scoring model."""

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from leads.selectors import lead_get
from leadsmgr.api.formats import iso_time
from leadsmgr.api.serializers import StrictInputSerializer
from scoring.models import ScoreChange, ScoringModel
from scoring.presets import THRESHOLD_PRESETS, default_model_json, threshold_preset_json
from scoring.services import score_breakdown, scoring_model_get_active, scoring_model_update
from scoring.tasks import enqueue_workspace_rescore
from workspaces.permissions import LEADS_MANAGE, LEADS_VIEW
from workspaces.scoping import scoped

HISTORY_MAX_LIMIT = 500


class LeadScoreApi(APIView):
    required_permissions = {"GET": LEADS_VIEW}

    @extend_schema(
        parameters=[OpenApiParameter("at", str, description="ISO time to evaluate the score at (default now), e.g. 30 days ahead")],
        responses=dict,
        summary="The score breakdown: demographic and behavioral factors, decay, negative, boosts, band, model version",
    )
    def get(self, request, lead_id):
        lead = lead_get(workspace=request.workspace, lead_id=lead_id)
        at = None
        if request.query_params.get("at"):
            try:
                at = parse_datetime(request.query_params["at"].replace(" ", "+"))
            except ValueError:  # well-formed but not a real time, e.g. February 30th
                at = None
            if at is None or at.tzinfo is None:
                raise ValidationError({"at": "An ISO 8601 time with a time zone, e.g. 2026-12-01T09:00:00Z."})
        return Response(score_breakdown(lead=lead, at=at))


class LeadScoreHistoryApi(APIView):
    required_permissions = {"GET": LEADS_VIEW}

    @extend_schema(parameters=[OpenApiParameter("limit", int, description=f"1 to {HISTORY_MAX_LIMIT}, default 100")], responses=dict)
    def get(self, request, lead_id):
        lead = lead_get(workspace=request.workspace, lead_id=lead_id)
        raw = request.query_params.get("limit", "100")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= HISTORY_MAX_LIMIT:
            raise ValidationError({"limit": f"A whole number from 1 to {HISTORY_MAX_LIMIT}."})
        changes = ScoreChange.objects.filter(lead=lead).order_by("-created_at", "-id")[: int(raw)]
        return Response(
            {
                "score": lead.score,
                "band": lead.score_band or None,
                "results": [
                    {
                        "previousScore": change.previous_score,
                        "newScore": change.new_score,
                        "previousBand": change.previous_band or None,
                        "band": change.new_band or None,
                        "thresholdCrossed": change.threshold_crossed or None,
                        "reason": change.reason,
                        "modelVersion": change.model_version,
                        "at": iso_time(change.created_at),
                    }
                    for change in changes
                ],
            }
        )


def _model_json(model: ScoringModel) -> dict:
    return {
        "id": str(model.pk),
        "version": model.version,
        "isActive": model.is_active,
        "config": model.config,
        "thresholds": model.thresholds,
        "createdBy": model.created_by.email if model.created_by_id else None,
        "createdAt": iso_time(model.created_at),
    }


class ScoringModelWriteSerializer(StrictInputSerializer):
    ignored_fields = frozenset({"id", "version", "isActive", "createdBy", "createdAt"})

    config = serializers.JSONField(required=False)
    thresholds = serializers.JSONField(required=False)
    thresholdPreset = serializers.ChoiceField(choices=sorted(THRESHOLD_PRESETS), required=False)

    def validate(self, attrs):
        if "thresholds" in attrs and "thresholdPreset" in attrs:
            raise serializers.ValidationError({"thresholdPreset": "Give thresholds or a preset, not both."})
        if not attrs:
            raise serializers.ValidationError({"config": "Give config, thresholds or thresholdPreset."})
        return attrs


class ScoringModelApi(APIView):
    required_permissions = {"GET": LEADS_VIEW, "PUT": LEADS_MANAGE}

    @extend_schema(responses=dict, summary="The active scoring model (seed 000's scoring.configure object) and thresholds")
    def get(self, request):
        return Response(_model_json(scoring_model_get_active(workspace_id=request.workspace.pk)))

    @extend_schema(request=ScoringModelWriteSerializer, responses=dict, summary="Saves a new version; all leads are rescored")
    def put(self, request):
        serializer = ScoringModelWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        thresholds = threshold_preset_json(data["thresholdPreset"]) if "thresholdPreset" in data else data.get("thresholds")
        model = scoring_model_update(workspace=request.workspace, actor=request.user, config=data.get("config"), thresholds=thresholds)
        return Response(_model_json(model))


class ScoringModelVersionsApi(APIView):
    required_permissions = {"GET": LEADS_VIEW}

    @extend_schema(responses=dict)
    def get(self, request):
        scoring_model_get_active(workspace_id=request.workspace.pk)
        models = list(scoped(ScoringModel, request.workspace).select_related("created_by").order_by("-version"))
        return Response({"results": [_model_json(model) for model in models], "count": len(models)})


class ScoringPresetsApi(APIView):
    required_permissions = {"GET": LEADS_VIEW}

    @extend_schema(responses=dict)
    def get(self, request):
        return Response(
            {"defaultModel": default_model_json(), "thresholdPresets": {name: threshold_preset_json(name) for name in THRESHOLD_PRESETS}}
        )


class ScoringRescoreApi(APIView):
    required_permissions = {"POST": LEADS_MANAGE}

    @extend_schema(request=None, responses={202: dict})
    def post(self, request):
        enqueue_workspace_rescore(request.workspace.pk, reason="rescore requested")
        return Response({"status": "queued"}, status=status.HTTP_202_ACCEPTED)
