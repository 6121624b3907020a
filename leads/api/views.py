"""The partner API for leads: thin adapters from HTTP to leads.selectors and leads.services."""

from functools import partial

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from leads import services
from leads.api import serializers as s
from leads.models import Lead
from leads.selectors import has_search, lead_get, lead_get_api_detail, lead_list, lead_page_counted
from leadsmgr.api.pagination import PageLimitPagination
from workspaces.permissions import LEADS_MANAGE, LEADS_VIEW, LEADS_WORK
from workspaces.scoping import scoped


def _validated(serializer_class, request, **extra_context):
    serializer = serializer_class(data=request.data, context={"workspace": request.workspace, "request": request, **extra_context})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def filtered_leads(request):
    """The workspace's leads for the list's query parameters (search, filters, sort); 400 on a bad one."""
    queryset, errors = lead_list(
        workspace=request.workspace,
        params=request.query_params,
        user=request.user,
        sort_by=request.query_params.get("sortBy") or "createdAt",
        sort_order=(request.query_params.get("sortOrder") or "desc").lower(),
    )
    if errors:
        raise ValidationError(errors)
    return queryset


# A DRF serializer deep-copies its declared fields for each instance, which took longer than
# rendering a lead (~0.5 ms for the detail's nested ones). These output serializers keep no state
# between calls (no context, no validation), so one instance of each renders every response.
LEAD_DETAIL = s.LeadDetailSerializer()
LEAD_LIST = s.LeadSerializer(many=True)


def _detail(request, lead_id) -> dict:
    return LEAD_DETAIL.to_representation(lead_get_api_detail(workspace=request.workspace, lead_id=lead_id))


class LeadListCreateApi(APIView):
    required_permissions = {"GET": LEADS_VIEW, "POST": LEADS_MANAGE}

    @extend_schema(
        parameters=[
            OpenApiParameter("search", str, description="Matches name, email, phone or company."),
            OpenApiParameter("stageId", str),
            OpenApiParameter("pipelineId", str),
            OpenApiParameter("source", str, enum=["manual", "webhook", "import", "api", "form", "tracking"]),
            OpenApiParameter("assignedTo", str, description="A user id, `me` or `unassigned`."),
            OpenApiParameter("tag", str),
            OpenApiParameter("page", int),
            OpenApiParameter("limit", int, description="At most 100."),
            OpenApiParameter("sortBy", str, enum=["createdAt", "updatedAt", "lastActivityAt", "name", "email", "score"]),
            OpenApiParameter("sortOrder", str, enum=["asc", "desc"]),
        ],
        responses=s.LeadSerializer(many=True),
    )
    def get(self, request):
        paginator = PageLimitPagination()
        queryset = filtered_leads(request)
        counted_page = None
        if has_search(request.query_params):
            counted_page = partial(lead_page_counted, workspace=request.workspace, queryset=queryset)
        leads, meta = paginator.paginate(request, queryset, counted_page=counted_page)
        return paginator.response(LEAD_LIST.to_representation(leads), meta)

    @extend_schema(request=s.LeadCreateSerializer, responses={201: s.LeadDetailSerializer})
    def post(self, request):
        data = _validated(s.LeadCreateSerializer, request)
        data.setdefault("source_type", "api")
        lead = services.lead_create(workspace=request.workspace, actor=request.user, data=data)
        return Response(_detail(request, lead.pk), status=status.HTTP_201_CREATED)


class LeadDetailApi(APIView):
    required_permissions = {"GET": LEADS_VIEW, "PATCH": LEADS_MANAGE, "DELETE": LEADS_MANAGE}

    @extend_schema(responses=s.LeadDetailSerializer)
    def get(self, request, lead_id):
        return Response(_detail(request, lead_id))

    @extend_schema(request=s.LeadUpdateSerializer, responses=s.LeadDetailSerializer)
    def patch(self, request, lead_id):
        lead = lead_get(workspace=request.workspace, lead_id=lead_id)
        data = _validated(s.LeadUpdateSerializer, request)
        services.lead_update(lead=lead, actor=request.user, data=data)
        return Response(_detail(request, lead_id))

    @extend_schema(responses={204: None})
    def delete(self, request, lead_id):
        lead = lead_get(workspace=request.workspace, lead_id=lead_id)
        services.lead_delete(lead=lead, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LeadStageApi(APIView):
    required_permissions = {"PATCH": LEADS_WORK}

    @extend_schema(request=s.StageMoveSerializer, responses=s.LeadDetailSerializer)
    def patch(self, request, lead_id):
        lead = lead_get(workspace=request.workspace, lead_id=lead_id)
        data = _validated(s.StageMoveSerializer, request)
        services.lead_stage_move(lead=lead, stage=data["stageId"], actor=request.user)
        return Response(_detail(request, lead_id))


class LeadAssignApi(APIView):
    required_permissions = {"PATCH": LEADS_WORK}

    @extend_schema(request=s.AssignSerializer, responses=s.LeadDetailSerializer)
    def patch(self, request, lead_id):
        lead = lead_get(workspace=request.workspace, lead_id=lead_id)
        owner = _validated(s.AssignSerializer, request)["assignedTo"]
        if not request.membership.has_perm(LEADS_MANAGE) and (owner is None or owner.pk != request.user.pk):
            raise PermissionDenied("Your role may only assign leads to yourself.")
        services.lead_assign(lead=lead, owner=owner, actor=request.user)
        return Response(_detail(request, lead_id))


class LeadConvertApi(APIView):
    required_permissions = {"POST": LEADS_WORK}

    @extend_schema(request=s.ConvertSerializer, responses={200: s.ContactSerializer, 201: s.ContactSerializer})
    def post(self, request, lead_id):
        lead = lead_get(workspace=request.workspace, lead_id=lead_id)
        data = _validated(s.ConvertSerializer, request)
        contact, created = services.lead_convert(lead=lead, actor=request.user, name=data.get("name"), platform=data.get("platform", ""))
        body = {"contact": s.ContactSerializer(contact).data, "created": created, "leadId": str(lead.pk)}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class LeadNotesApi(APIView):
    required_permissions = {"GET": LEADS_VIEW, "POST": LEADS_WORK}

    @extend_schema(responses=s.NoteSerializer(many=True))
    def get(self, request, lead_id):
        lead = lead_get_api_detail(workspace=request.workspace, lead_id=lead_id)
        return Response({"results": s.NoteSerializer(lead.recent_notes, many=True).data})

    @extend_schema(request=s.NoteCreateSerializer, responses={201: s.NoteSerializer})
    def post(self, request, lead_id):
        lead = lead_get(workspace=request.workspace, lead_id=lead_id)
        data = _validated(s.NoteCreateSerializer, request)
        note = services.lead_note_add(lead=lead, author=request.user, text=data["value"])
        return Response(s.NoteSerializer(note).data, status=status.HTTP_201_CREATED)


class LeadBulkActionApi(APIView):
    required_permissions = {"POST": LEADS_MANAGE}

    @extend_schema(request=s.BulkActionSerializer, responses=s.BulkResultSerializer)
    def post(self, request):
        data = _validated(s.BulkActionSerializer, request)
        result = services.leads_bulk_action(
            workspace=request.workspace,
            actor=request.user,
            action=data["action"],
            lead_ids=[str(lead_id) for lead_id in data["leadIds"]],
            stage=data.get("stageId"),
            owner=data.get("assignedTo"),
            tags=data.get("tags"),
        )
        return Response(result)


class LeadMergeApi(APIView):
    required_permissions = {"POST": LEADS_MANAGE}

    @extend_schema(request=s.MergeSerializer, responses=s.LeadDetailSerializer)
    def post(self, request, lead_id):
        survivor = lead_get(workspace=request.workspace, lead_id=lead_id)
        other_id = _validated(s.MergeSerializer, request)["otherLeadId"]
        other = scoped(Lead, request.workspace).alive().filter(pk=other_id).first()
        if other is None:
            raise ValidationError({"otherLeadId": "Unknown lead."})
        services.lead_merge(survivor=survivor, other=other, actor=request.user)
        return Response(_detail(request, lead_id))
