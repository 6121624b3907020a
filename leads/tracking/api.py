"""Bearer-token API: the unified profile and timeline of a lead, the company roll-up, tracking
sites and personalization rules. The public endpoints (Track API, snippet) are in views.py."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.models import DedupStrategy
from leads.models import Company
from leads.selectors import lead_get
from leads.tracking import selectors, services
from leads.tracking.models import PersonalizationRule, TrackingSite
from leadsmgr.api.serializers import StrictInputSerializer
from workspaces.permissions import LEADS_MANAGE, LEADS_VIEW
from workspaces.scoping import scoped, scoped_get_or_404


class LeadProfileApi(APIView):
    required_permissions = {"GET": LEADS_VIEW}

    @extend_schema(responses=dict, summary="The unified profile: contact, company, score, engagement, attribution, lifecycle")
    def get(self, request, lead_id):
        lead = lead_get(workspace=request.workspace, lead_id=lead_id)
        return Response(selectors.lead_profile(lead=lead))


class LeadTimelineApi(APIView):
    required_permissions = {"GET": LEADS_VIEW}

    @extend_schema(
        parameters=[
            OpenApiParameter("types", str, description=f"Comma-separated; any of {', '.join(selectors.TIMELINE_TYPES)} (default: all)"),
            OpenApiParameter("limit", int, description=f"1 to {selectors.TIMELINE_MAX_LIMIT}, default 50"),
            OpenApiParameter("before", str, description="The previous page's `next`, or an ISO time: entries older than it"),
        ],
        responses=dict,
    )
    def get(self, request, lead_id):
        lead = lead_get(workspace=request.workspace, lead_id=lead_id)
        errors = {}
        types = {t.strip() for t in request.query_params.get("types", "").split(",") if t.strip()} or set(selectors.TIMELINE_TYPES)
        unknown = sorted(types - set(selectors.TIMELINE_TYPES))
        if unknown:
            errors["types"] = f"Unknown type {unknown[0]!r}; choose from {', '.join(selectors.TIMELINE_TYPES)}."
        raw_limit = request.query_params.get("limit", "50")
        limit = int(raw_limit) if raw_limit.isascii() and raw_limit.isdigit() else 0
        if not 1 <= limit <= selectors.TIMELINE_MAX_LIMIT:
            errors["limit"] = f"A whole number from 1 to {selectors.TIMELINE_MAX_LIMIT}."
        before = None
        if request.query_params.get("before"):
            before = selectors.timeline_cursor(request.query_params["before"])
            if before is None:
                errors["before"] = "The previous page's next, or an ISO 8601 time."
        if errors:
            raise ValidationError(errors)
        entries = selectors.lead_timeline(lead=lead, types=types, limit=limit, before=before)
        next_cursor = selectors.timeline_next(entries[-1]) if len(entries) == limit else None
        return Response({"items": [{k: v for k, v in entry.items() if not k.startswith("_")} for entry in entries], "next": next_cursor})


class CompanyProfileApi(APIView):
    required_permissions = {"GET": LEADS_VIEW}

    @extend_schema(responses=dict, summary="The account view: the company's leads and their combined engagement")
    def get(self, request, company_id):
        company = scoped_get_or_404(Company, request.workspace, pk=company_id)
        return Response(selectors.company_rollup(company=company))


SITE_SERVER_OWNED = frozenset({"id", "siteKey", "snippet", "createdAt"})


class TrackingSiteWriteSerializer(StrictInputSerializer):
    ignored_fields = SITE_SERVER_OWNED

    name = serializers.CharField(max_length=120)
    allowedOrigins = serializers.JSONField(required=False, source="allowed_origins")
    formInclude = serializers.JSONField(required=False, source="form_include")
    formExclude = serializers.JSONField(required=False, source="form_exclude")
    fieldMapping = serializers.JSONField(required=False, source="field_mapping")
    formEvents = serializers.JSONField(required=False, source="form_events")
    autoCaptureEvents = serializers.JSONField(required=False, source="auto_capture_events")
    autoCaptureRequiredFields = serializers.JSONField(required=False, source="auto_capture_required_fields")
    dedupStrategy = serializers.ChoiceField(choices=DedupStrategy.choices, required=False, source="dedup_strategy")
    rateLimitPerMinute = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, source="rate_limit_per_minute")
    isActive = serializers.BooleanField(required=False, source="is_active")


class TrackingSiteUpdateSerializer(TrackingSiteWriteSerializer):
    name = serializers.CharField(max_length=120, required=False)


class TrackingSiteSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    siteKey = serializers.CharField(source="site_key")
    snippet = serializers.SerializerMethodField()
    allowedOrigins = serializers.JSONField(source="allowed_origins")
    formInclude = serializers.JSONField(source="form_include")
    formExclude = serializers.JSONField(source="form_exclude")
    fieldMapping = serializers.JSONField(source="field_mapping")
    formEvents = serializers.JSONField(source="form_events")
    autoCaptureEvents = serializers.JSONField(source="auto_capture_events")
    autoCaptureRequiredFields = serializers.JSONField(source="auto_capture_required_fields")
    dedupStrategy = serializers.CharField(source="dedup_strategy")
    rateLimitPerMinute = serializers.IntegerField(source="rate_limit_per_minute")
    isActive = serializers.BooleanField(source="is_active")
    createdAt = serializers.DateTimeField(source="created_at")

    def get_snippet(self, site) -> str:
        from leads.tracking.snippet import snippet_tag

        return snippet_tag(site)


def _validated(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data, context={"workspace": request.workspace})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class TrackingSiteListCreateApi(APIView):
    required_permissions = {"GET": LEADS_MANAGE, "POST": LEADS_MANAGE}

    @extend_schema(responses=TrackingSiteSerializer(many=True))
    def get(self, request):
        sites = list(scoped(TrackingSite, request.workspace).order_by("name"))
        return Response({"results": TrackingSiteSerializer(sites, many=True).data, "count": len(sites)})

    @extend_schema(request=TrackingSiteWriteSerializer, responses={201: TrackingSiteSerializer})
    def post(self, request):
        site = services.tracking_site_create(workspace=request.workspace, **_validated(TrackingSiteWriteSerializer, request))
        return Response(TrackingSiteSerializer(site).data, status=status.HTTP_201_CREATED)


class TrackingSiteDetailApi(APIView):
    required_permissions = {"GET": LEADS_MANAGE, "PATCH": LEADS_MANAGE, "DELETE": LEADS_MANAGE}

    @extend_schema(responses=TrackingSiteSerializer)
    def get(self, request, site_id):
        return Response(TrackingSiteSerializer(scoped_get_or_404(TrackingSite, request.workspace, pk=site_id)).data)

    @extend_schema(request=TrackingSiteUpdateSerializer, responses=TrackingSiteSerializer)
    def patch(self, request, site_id):
        site = scoped_get_or_404(TrackingSite, request.workspace, pk=site_id)
        site = services.tracking_site_update(site=site, **_validated(TrackingSiteUpdateSerializer, request))
        return Response(TrackingSiteSerializer(site).data)

    @extend_schema(responses={204: None})
    def delete(self, request, site_id):
        services.tracking_site_delete(site=scoped_get_or_404(TrackingSite, request.workspace, pk=site_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TrackingSiteRegenerateKeyApi(APIView):
    required_permissions = {"POST": LEADS_MANAGE}

    @extend_schema(request=None, responses=TrackingSiteSerializer)
    def post(self, request, site_id):
        site = services.tracking_site_regenerate_key(site=scoped_get_or_404(TrackingSite, request.workspace, pk=site_id))
        return Response(TrackingSiteSerializer(site).data)


RULE_SERVER_OWNED = frozenset({"id", "createdAt", "updatedAt"})


class RuleWriteSerializer(StrictInputSerializer):
    ignored_fields = RULE_SERVER_OWNED

    name = serializers.CharField(max_length=120)
    position = serializers.IntegerField(min_value=0, required=False)
    isActive = serializers.BooleanField(required=False, source="is_active")
    conditions = serializers.JSONField(required=False)
    changes = serializers.JSONField()


class RuleUpdateSerializer(RuleWriteSerializer):
    name = serializers.CharField(max_length=120, required=False)
    changes = serializers.JSONField(required=False)


class RuleSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    position = serializers.IntegerField()
    isActive = serializers.BooleanField(source="is_active")
    conditions = serializers.JSONField()
    changes = serializers.JSONField()
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")


class RuleListCreateApi(APIView):
    required_permissions = {"GET": LEADS_MANAGE, "POST": LEADS_MANAGE}

    @extend_schema(responses=RuleSerializer(many=True))
    def get(self, request):
        rules = list(scoped(PersonalizationRule, request.workspace))
        return Response({"results": RuleSerializer(rules, many=True).data, "count": len(rules)})

    @extend_schema(request=RuleWriteSerializer, responses={201: RuleSerializer})
    def post(self, request):
        rule = services.personalization_rule_create(workspace=request.workspace, **_validated(RuleWriteSerializer, request))
        return Response(RuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class RuleDetailApi(APIView):
    required_permissions = {"GET": LEADS_MANAGE, "PATCH": LEADS_MANAGE, "DELETE": LEADS_MANAGE}

    @extend_schema(responses=RuleSerializer)
    def get(self, request, rule_id):
        return Response(RuleSerializer(scoped_get_or_404(PersonalizationRule, request.workspace, pk=rule_id)).data)

    @extend_schema(request=RuleUpdateSerializer, responses=RuleSerializer)
    def patch(self, request, rule_id):
        rule = scoped_get_or_404(PersonalizationRule, request.workspace, pk=rule_id)
        rule = services.personalization_rule_update(rule=rule, **_validated(RuleUpdateSerializer, request))
        return Response(RuleSerializer(rule).data)

    @extend_schema(responses={204: None})
    def delete(self, request, rule_id):
        services.personalization_rule_delete(rule=scoped_get_or_404(PersonalizationRule, request.workspace, pk=rule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
