"""Segments API (seed 000): CRUD, members, a preview that saves nothing, and automations."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from leads.segments import services
from leads.segments.criteria import FIELDS
from leads.segments.models import RefreshInterval, Segment, SegmentMembership
from leadsmgr.api.formats import iso_time
from leadsmgr.api.serializers import StrictInputSerializer
from workspaces.permissions import LEADS_MANAGE, LEADS_VIEW
from workspaces.scoping import scoped, scoped_get_or_404

MEMBERS_MAX_LIMIT = 500
SERVER_OWNED = frozenset({"id", "memberCount", "lastRefreshedAt", "createdAt", "updatedAt"})


def segment_json(segment: Segment) -> dict:
    return {
        "id": str(segment.pk),
        "name": segment.name,
        "description": segment.description,
        "criteria": segment.criteria,
        "refreshInterval": segment.refresh_interval,
        "automation": segment.automation,
        "memberCount": segment.member_count,
        "lastRefreshedAt": iso_time(segment.last_refreshed_at),
        "createdAt": iso_time(segment.created_at),
        "updatedAt": iso_time(segment.updated_at),
    }


def member_json(lead, entered_at=None) -> dict:
    data = {
        "id": str(lead.pk),
        "name": lead.name,
        "email": lead.email or None,
        "company": lead.company.name if lead.company_id else None,
        "score": lead.score,
        "band": lead.score_band or None,
        "lifecycleStage": lead.lifecycle_stage,
    }
    if entered_at is not None:
        data["enteredAt"] = iso_time(entered_at)
    return data


class SegmentWriteSerializer(StrictInputSerializer):
    ignored_fields = SERVER_OWNED

    name = serializers.CharField(max_length=160)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    criteria = serializers.JSONField()
    refreshInterval = serializers.ChoiceField(choices=RefreshInterval.values, required=False, source="refresh_interval")
    automation = serializers.JSONField(required=False)


class SegmentUpdateSerializer(SegmentWriteSerializer):
    name = serializers.CharField(max_length=160, required=False)
    criteria = serializers.JSONField(required=False)


class PreviewSerializer(StrictInputSerializer):
    criteria = serializers.JSONField()


class AutomationSerializer(StrictInputSerializer):
    onEnter = serializers.JSONField(required=False)
    onExit = serializers.JSONField(required=False)


def _validated(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _bounded(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name, str(default))
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ValidationError({name: f"A whole number from {low} to {high}."})
    return int(raw)


class SegmentListCreateApi(APIView):
    required_permissions = {"GET": LEADS_VIEW, "POST": LEADS_MANAGE}

    @extend_schema(responses=dict, operation_id="segments_list")
    def get(self, request):
        segments = list(scoped(Segment, request.workspace).order_by("name"))
        return Response({"results": [segment_json(segment) for segment in segments], "count": len(segments)})

    @extend_schema(request=SegmentWriteSerializer, responses={201: dict})
    def post(self, request):
        segment = services.segment_create(workspace=request.workspace, **_validated(SegmentWriteSerializer, request))
        return Response(segment_json(segment), status=status.HTTP_201_CREATED)


class SegmentDetailApi(APIView):
    required_permissions = {"GET": LEADS_VIEW, "PATCH": LEADS_MANAGE, "DELETE": LEADS_MANAGE}

    @extend_schema(responses=dict)
    def get(self, request, segment_id):
        return Response(segment_json(scoped_get_or_404(Segment, request.workspace, pk=segment_id)))

    @extend_schema(request=SegmentUpdateSerializer, responses=dict)
    def patch(self, request, segment_id):
        segment = scoped_get_or_404(Segment, request.workspace, pk=segment_id)
        segment = services.segment_update(segment=segment, **_validated(SegmentUpdateSerializer, request))
        return Response(segment_json(segment))

    @extend_schema(responses={204: None})
    def delete(self, request, segment_id):
        services.segment_delete(segment=scoped_get_or_404(Segment, request.workspace, pk=segment_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentMembersApi(APIView):
    required_permissions = {"GET": LEADS_VIEW}

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description=f"1 to {MEMBERS_MAX_LIMIT}, default 100"), OpenApiParameter("offset", int)],
        responses=dict,
    )
    def get(self, request, segment_id):
        segment = scoped_get_or_404(Segment, request.workspace, pk=segment_id)
        limit = _bounded(request, "limit", 100, 1, MEMBERS_MAX_LIMIT)
        offset = _bounded(request, "offset", 0, 0, 10_000_000)
        memberships = (
            SegmentMembership.objects.filter(segment=segment, lead__deleted_at__isnull=True)
            .select_related("lead__company")
            .order_by("-entered_at", "lead_id")[offset : offset + limit]
        )
        return Response(
            {
                "results": [member_json(m.lead, m.entered_at) for m in memberships],
                "count": segment.member_count,
                "limit": limit,
                "offset": offset,
            }
        )


class SegmentPreviewApi(APIView):
    required_permissions = {"POST": LEADS_VIEW}

    @extend_schema(request=PreviewSerializer, responses=dict, summary="Count and first members of criteria, without saving")
    def post(self, request):
        criteria = _validated(PreviewSerializer, request)["criteria"]
        preview = services.segment_preview(workspace=request.workspace, criteria=criteria)
        return Response({"count": preview["count"], "members": [member_json(lead) for lead in preview["members"]]})


class SegmentAutomationApi(APIView):
    required_permissions = {"PUT": LEADS_MANAGE}

    @extend_schema(request=AutomationSerializer, responses=dict)
    def put(self, request, segment_id):
        segment = scoped_get_or_404(Segment, request.workspace, pk=segment_id)
        automation = _validated(AutomationSerializer, request)
        segment = services.segment_automation_set(segment=segment, automation={"onEnter": [], "onExit": [], **automation})
        return Response(segment_json(segment))


class SegmentRefreshApi(APIView):
    required_permissions = {"POST": LEADS_MANAGE}

    @extend_schema(request=None, responses=dict)
    def post(self, request, segment_id):
        segment = scoped_get_or_404(Segment, request.workspace, pk=segment_id)
        entered, exited = services.segment_refresh(segment_id=segment.pk, now=timezone.now(), reason="refresh requested")
        return Response({"entered": entered, "exited": exited, "segment": segment_json(Segment.objects.get(pk=segment.pk))})


class SegmentFieldsApi(APIView):
    required_permissions = {"GET": LEADS_VIEW}

    @extend_schema(responses=dict, summary="The fields and operators segment criteria may use")
    def get(self, request):
        return Response({"fields": {name: dict(spec) for name, spec in FIELDS.items()}})
