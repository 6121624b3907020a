from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from leads.models import LeadStatus, LifecycleStage, SourceType
from leads.normalization import camel_case_key, normalize_tag
from leads.services import DISPLAY_NAMES_KEY, MAX_TAGS_PER_LEAD
from leadsmgr.api.serializers import StrictInputSerializer
from pipelines.models import Pipeline, Stage
from workspaces.scoping import scoped
from workspaces.selectors import workspace_member_or_none

# Each company attribute with its column's length: longer values are refused, never cut.
COMPANY_KEYS = {"name": 200, "domain": 200, "size": 40, "industry": 120, "website": 300}
SOURCE_MAX_LENGTHS = {"source_campaign": 200, "source_medium": 120, "source_referrer": 1000, "source_landing_url": 1000}
SOURCE_KEYS = {
    "type": "source_type",
    "campaign": "source_campaign",
    "medium": "source_medium",
    "referrer": "source_referrer",
    "landingUrl": "source_landing_url",
}
UTM_KEYS = {"source": "utm_source", "medium": "utm_medium", "campaign": "utm_campaign", "term": "utm_term", "content": "utm_content"}
SERVER_OWNED = frozenset(
    {
        "id",
        "workspace",
        "workspaceId",
        "score",
        "createdAt",
        "updatedAt",
        "lastActivityAt",
        "convertedAt",
        "contactId",
        "deletedAt",
        "stage",
        "pipeline",
        "owner",
        "activities",
        "notes",
    }
)


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "object", "properties": {k: {"type": "string"} for k in COMPANY_KEYS}}]})
class CompanyField(serializers.Field):
    """A company name, or an object {name, domain, size, industry, website}."""

    def to_internal_value(self, data):
        if data is None or data == "":
            return None
        if isinstance(data, str):
            data = {"name": data}
        if not isinstance(data, dict):
            raise serializers.ValidationError("Give a company name or an object with name, domain, size, industry, website.")
        unknown = sorted(set(data) - set(COMPANY_KEYS))
        if unknown:
            raise serializers.ValidationError(f"Unknown company field: {unknown[0]}.")
        if not all(isinstance(v, str) or v is None for v in data.values()):
            raise serializers.ValidationError("Company attributes are strings.")
        cleaned = {key: (data.get(key) or "").strip() for key in COMPANY_KEYS}
        too_long = [key for key, limit in COMPANY_KEYS.items() if len(cleaned[key]) > limit]
        if too_long:
            raise serializers.ValidationError(f"company.{too_long[0]} has at most {COMPANY_KEYS[too_long[0]]} characters.")
        if not (cleaned["name"] or cleaned["domain"]):
            raise serializers.ValidationError("A company needs a name or a domain.")
        return cleaned

    def to_representation(self, value):
        return value


@extend_schema_field({"oneOf": [{"type": "string", "enum": SourceType.values}, {"type": "object"}]})
class SourceField(serializers.Field):
    """A source type (`api`, `webhook`, ...) or an object {type, campaign, medium, referrer, landingUrl}."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = {"type": data}
        if not isinstance(data, dict):
            raise serializers.ValidationError("Give a source type or an object.")
        unknown = sorted(set(data) - set(SOURCE_KEYS))
        if unknown:
            raise serializers.ValidationError(f"Unknown source field: {unknown[0]}.")
        result = {}
        for key, field in SOURCE_KEYS.items():
            if key in data:
                value = data[key]
                if value is not None and not isinstance(value, str):
                    raise serializers.ValidationError(f"source.{key} must be a string.")
                result[field] = (value or "").strip()
                if len(result[field]) > SOURCE_MAX_LENGTHS.get(field, 20):
                    raise serializers.ValidationError(f"source.{key} has at most {SOURCE_MAX_LENGTHS.get(field, 20)} characters.")
        if "source_type" in result:
            result["source_type"] = result["source_type"].lower()
            if result["source_type"] not in SourceType.values:
                raise serializers.ValidationError(f"source.type must be one of: {', '.join(SourceType.values)}.")
        return result

    def to_representation(self, value):
        return value


class UtmSerializer(StrictInputSerializer):
    source = serializers.CharField(max_length=200, required=False, allow_blank=True)
    medium = serializers.CharField(max_length=200, required=False, allow_blank=True)
    campaign = serializers.CharField(max_length=200, required=False, allow_blank=True)
    term = serializers.CharField(max_length=200, required=False, allow_blank=True)
    content = serializers.CharField(max_length=200, required=False, allow_blank=True)


@extend_schema_field({"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]})
class TagsField(serializers.Field):
    """A list of tag names, or one comma-separated string."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = data.split(",")
        if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
            raise serializers.ValidationError("Give a list of tag names.")
        tags = sorted({normalize_tag(item) for item in data if normalize_tag(item)})
        if len(tags) > MAX_TAGS_PER_LEAD:
            raise serializers.ValidationError(f"At most {MAX_TAGS_PER_LEAD} tags.")
        return tags

    def to_representation(self, value):
        return value


class WorkspaceContextMixin:
    @property
    def workspace(self):
        return self.context["workspace"]

    def resolve_stage(self, value):
        stage = scoped(Stage.objects.select_related("pipeline"), self.workspace).filter(pk=value).first()
        if stage is None:
            raise serializers.ValidationError("Unknown stage.")
        return stage

    def resolve_pipeline(self, value):
        if value is None:
            return None
        pipeline = scoped(Pipeline, self.workspace).filter(pk=value).first()
        if pipeline is None:
            raise serializers.ValidationError("Unknown pipeline.")
        return pipeline

    def resolve_member(self, value):
        if value is None:
            return None
        member = workspace_member_or_none(workspace=self.workspace, user_id=value)
        if member is None:
            raise serializers.ValidationError("Not a member of this workspace.")
        return member


class LeadWriteSerializer(WorkspaceContextMixin, StrictInputSerializer):
    ignored_fields = SERVER_OWNED

    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    firstName = serializers.CharField(source="first_name", max_length=100, required=False, allow_blank=True)
    lastName = serializers.CharField(source="last_name", max_length=100, required=False, allow_blank=True)
    email = serializers.CharField(max_length=254, required=False, allow_blank=True, allow_null=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True)
    company = CompanyField(required=False, allow_null=True)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    jobTitle = serializers.CharField(max_length=200, required=False, allow_blank=True, write_only=True, help_text="Alias of title.")
    department = serializers.CharField(max_length=120, required=False, allow_blank=True)
    source = SourceField(required=False)
    utm = UtmSerializer(required=False)
    customFields = serializers.DictField(source="custom_fields", required=False)
    tags = TagsField(required=False)
    status = serializers.ChoiceField(choices=LeadStatus.choices, required=False)
    lifecycleStage = serializers.ChoiceField(source="lifecycle_stage", choices=LifecycleStage.choices, required=False)
    pipelineId = serializers.UUIDField(required=False, write_only=True)
    stageId = serializers.UUIDField(required=False, write_only=True)
    assignedTo = serializers.IntegerField(required=False, allow_null=True, write_only=True)

    def validate_customFields(self, value):
        display_names = value.get(DISPLAY_NAMES_KEY)
        if display_names is not None and not (
            isinstance(display_names, dict) and all(isinstance(name, str) for name in display_names.values())
        ):
            raise serializers.ValidationError(f"{DISPLAY_NAMES_KEY} maps each key to a display name (a string).")
        keys_by_camel: dict[str, str] = {}
        for key in value:
            if key == DISPLAY_NAMES_KEY:
                continue
            camel = camel_case_key(key) or key
            if camel in keys_by_camel:
                raise serializers.ValidationError(f"{keys_by_camel[camel]!r} and {key!r} are the same field ({camel}); send one.")
            keys_by_camel[camel] = key
        return value

    def validate_pipelineId(self, value):
        return self.resolve_pipeline(value)

    def validate_stageId(self, value):
        return self.resolve_stage(value)

    def validate_assignedTo(self, value):
        return self.resolve_member(value)

    def validate(self, attrs):
        data = dict(attrs)
        job_title = data.pop("jobTitle", None)
        if job_title is not None:
            data.setdefault("title", job_title)
        data.update(data.pop("source", {}) or {})
        data.update({UTM_KEYS[key]: value for key, value in (data.pop("utm", {}) or {}).items()})
        if "pipelineId" in data:
            data["pipeline"] = data.pop("pipelineId")
        if "stageId" in data:
            data["stage"] = data.pop("stageId")
        if "assignedTo" in data:
            data["owner"] = data.pop("assignedTo")
        pipeline, stage = data.get("pipeline"), data.get("stage")
        if pipeline is not None and stage is not None and stage.pipeline_id != pipeline.pk:
            raise serializers.ValidationError({"stageId": "This stage belongs to another pipeline."})
        for key in ("email", "phone"):
            if key in data and data[key] is None:
                data[key] = ""
        return data


class LeadCreateSerializer(LeadWriteSerializer):
    def validate(self, attrs):
        data = super().validate(attrs)
        if not any((data.get(key) or "").strip() for key in ("name", "first_name", "last_name", "email", "phone")):
            raise serializers.ValidationError({"name": "A lead needs a name (or at least an email or phone)."})
        return data


class LeadUpdateSerializer(LeadWriteSerializer):
    def validate(self, attrs):
        data = super().validate(attrs)
        if "pipeline" in data and "stage" not in data:
            raise serializers.ValidationError({"pipelineId": "Move a lead between pipelines by giving a stageId."})
        data.pop("pipeline", None)
        return data


class StageMoveSerializer(WorkspaceContextMixin, StrictInputSerializer):
    stageId = serializers.UUIDField()

    def validate_stageId(self, value):
        return self.resolve_stage(value)


class AssignSerializer(WorkspaceContextMixin, StrictInputSerializer):
    assignedTo = serializers.IntegerField(allow_null=True)

    def validate_assignedTo(self, value):
        return self.resolve_member(value)


class NoteCreateSerializer(StrictInputSerializer):
    value = serializers.CharField(max_length=10000, allow_blank=False, trim_whitespace=True)


class ConvertSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    platform = serializers.CharField(max_length=40, required=False, allow_blank=True)


class BulkActionSerializer(WorkspaceContextMixin, StrictInputSerializer):
    action = serializers.ChoiceField(choices=["move_stage", "assign", "delete", "tag"])
    leadIds = serializers.ListField(child=serializers.UUIDField(), allow_empty=False, max_length=5000)
    stageId = serializers.UUIDField(required=False)
    assignedTo = serializers.IntegerField(required=False, allow_null=True)
    tags = TagsField(required=False)

    def validate_stageId(self, value):
        return self.resolve_stage(value)

    def validate_assignedTo(self, value):
        return self.resolve_member(value)

    def validate(self, attrs):
        action = attrs["action"]
        if action == "move_stage" and "stageId" not in attrs:
            raise serializers.ValidationError({"stageId": "move_stage needs a stageId."})
        if action == "assign" and "assignedTo" not in attrs:
            raise serializers.ValidationError({"assignedTo": "assign needs assignedTo (a user id, or null to unassign)."})
        if action == "tag" and not attrs.get("tags"):
            raise serializers.ValidationError({"tags": "tag needs at least one tag."})
        return attrs


# Output


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="display_name")
    email = serializers.EmailField()


class StageRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    color = serializers.CharField()
    type = serializers.CharField()


class LeadSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    firstName = serializers.CharField(source="first_name")
    lastName = serializers.CharField(source="last_name")
    email = serializers.CharField()
    phone = serializers.CharField()
    company = serializers.SerializerMethodField()
    title = serializers.CharField()
    department = serializers.CharField()
    source = serializers.SerializerMethodField()
    utm = serializers.SerializerMethodField()
    customFields = serializers.JSONField(source="custom_fields")
    tags = serializers.SerializerMethodField()
    status = serializers.CharField()
    lifecycleStage = serializers.CharField(source="lifecycle_stage")
    pipelineId = serializers.UUIDField(source="pipeline_id")
    stageId = serializers.UUIDField(source="stage_id")
    stage = StageRefSerializer()
    score = serializers.IntegerField()
    assignedTo = serializers.IntegerField(source="owner_id", allow_null=True)
    owner = UserRefSerializer(allow_null=True)
    contactId = serializers.UUIDField(source="contact_id", allow_null=True)
    convertedAt = serializers.DateTimeField(source="converted_at", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    lastActivityAt = serializers.DateTimeField(source="last_activity_at")
    country = serializers.CharField()
    emailKind = serializers.CharField(source="email_kind")
    phoneCountry = serializers.CharField(source="phone_country")
    validationWarnings = serializers.ListField(child=serializers.CharField(), source="validation_warnings")
    processingState = serializers.CharField(source="processing_state")
    sourceWebhookId = serializers.UUIDField(source="source_webhook_id", allow_null=True)

    @extend_schema_field({"type": "object", "nullable": True, "properties": {k: {"type": "string"} for k in ("id", *COMPANY_KEYS)}})
    def get_company(self, lead):
        if lead.company is None:
            return None
        company = lead.company
        return {
            "id": str(company.pk),
            "name": company.name,
            "domain": company.domain,
            "size": company.size,
            "industry": company.industry,
            "website": company.website,
        }

    @extend_schema_field({"type": "object", "properties": {k: {"type": "string"} for k in SOURCE_KEYS}})
    def get_source(self, lead):
        return {key: getattr(lead, field) for key, field in SOURCE_KEYS.items()}

    @extend_schema_field({"type": "object", "properties": {k: {"type": "string"} for k in UTM_KEYS}})
    def get_utm(self, lead):
        return {key: getattr(lead, field) for key, field in UTM_KEYS.items()}

    @extend_schema_field({"type": "array", "items": {"type": "string"}})
    def get_tags(self, lead):
        names = getattr(lead, "tag_names", None)  # read without Tag instances by lead_get_api_detail
        return sorted(names if names is not None else (tag.name for tag in lead.tags.all()))


class ActivitySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    actor = UserRefSerializer(allow_null=True)
    data = serializers.JSONField()
    createdAt = serializers.DateTimeField(source="created_at")


class NoteSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    value = serializers.CharField(source="text")
    author = UserRefSerializer(allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")


class ConsentSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    granted = serializers.BooleanField()
    source = serializers.CharField()
    policyVersion = serializers.CharField(source="policy_version")
    recordedAt = serializers.DateTimeField(source="created_at")


class LeadDetailSerializer(LeadSerializer):
    activities = ActivitySerializer(many=True, source="recent_activities")
    notes = NoteSerializer(many=True, source="recent_notes")
    consent = ConsentSerializer(many=True, source="current_consent", help_text="The latest grant or withdrawal per purpose.")
    consentHistory = ConsentSerializer(many=True, source="consent_history", help_text="Every record, newest first.")


class ContactSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()
    customFields = serializers.JSONField(source="custom_fields")
    platform = serializers.CharField()
    createdAt = serializers.DateTimeField(source="created_at")


@extend_schema_field(OpenApiTypes.OBJECT)
class BulkResultSerializer(serializers.Serializer):
    action = serializers.CharField()
    requested = serializers.IntegerField()
    matched = serializers.IntegerField()
    updated = serializers.IntegerField()
    notFound = serializers.ListField(child=serializers.CharField())


class MergeSerializer(StrictInputSerializer):
    otherLeadId = serializers.UUIDField()
