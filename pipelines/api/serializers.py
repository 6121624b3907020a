from rest_framework import serializers

from leadsmgr.api.serializers import StrictInputSerializer
from pipelines.models import StageType
from pipelines.services import MAX_STAGES, StageSpec


class StageInputSerializer(StrictInputSerializer):
    ignored_fields = frozenset({"position", "leadCount", "createdAt"})

    id = serializers.UUIDField(required=False)
    name = serializers.CharField(max_length=80)
    color = serializers.RegexField(r"^#[0-9A-Fa-f]{6}$", required=False, error_messages={"invalid": "Use a hex colour such as #3B82F6."})
    type = serializers.ChoiceField(choices=StageType.choices, required=False)

    def to_spec(self, data) -> StageSpec:
        return StageSpec(
            id=str(data["id"]) if data.get("id") else None,
            name=data["name"],
            color=data.get("color"),
            type=data.get("type"),
        )


class PipelineCreateSerializer(StrictInputSerializer):
    ignored_fields = frozenset({"id", "isDefault", "createdAt", "updatedAt"})

    name = serializers.CharField(max_length=120)
    stages = StageInputSerializer(many=True, required=False, max_length=MAX_STAGES)

    def validate_stages(self, value):
        if any(stage.get("id") for stage in value):
            raise serializers.ValidationError("New pipelines take stages without ids.")
        return value


class PipelineUpdateSerializer(StrictInputSerializer):
    ignored_fields = frozenset({"id", "isDefault", "createdAt", "updatedAt"})

    name = serializers.CharField(max_length=120, required=False)
    stages = StageInputSerializer(many=True, required=False, max_length=MAX_STAGES)
    reassign = serializers.DictField(
        child=serializers.UUIDField(),
        required=False,
        help_text="For each removed stage id, the id of a kept stage its leads move to (default: the first stage).",
    )


class StageSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    color = serializers.CharField()
    type = serializers.CharField()
    position = serializers.IntegerField()


class PipelineSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    isDefault = serializers.BooleanField(source="is_default")
    stages = StageSerializer(many=True)
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
