from rest_framework import serializers

from integrations.models import DedupStrategy, ResponseMode
from leads.api.serializers import WorkspaceContextMixin
from leadsmgr.api.serializers import StrictInputSerializer

SERVER_OWNED = frozenset({"id", "url", "keyHint", "apiKey", "stats", "createdAt"})


class WebhookWriteSerializer(WorkspaceContextMixin, StrictInputSerializer):
    ignored_fields = SERVER_OWNED

    name = serializers.CharField(max_length=120)
    fieldMapping = serializers.DictField(child=serializers.CharField(), required=False, source="field_mapping")
    pipelineId = serializers.UUIDField(required=False, allow_null=True)
    stageId = serializers.UUIDField(required=False, allow_null=True)
    dedupStrategy = serializers.ChoiceField(choices=DedupStrategy.choices, required=False, source="dedup_strategy")
    honeypotField = serializers.CharField(max_length=60, required=False, allow_blank=True, source="honeypot_field")
    responseMode = serializers.ChoiceField(choices=ResponseMode.choices, required=False, source="response_mode")
    isActive = serializers.BooleanField(required=False, source="is_active")

    def validate_pipelineId(self, value):
        return self.resolve_pipeline(value)

    def validate_stageId(self, value):
        return None if value is None else self.resolve_stage(value)

    def validate(self, attrs):
        data = dict(attrs)
        if "pipelineId" in data:
            data["pipeline"] = data.pop("pipelineId")
        if "stageId" in data:
            data["stage"] = data.pop("stageId")
        return data


class WebhookUpdateSerializer(WebhookWriteSerializer):
    name = serializers.CharField(max_length=120, required=False)


class WebhookSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    url = serializers.SerializerMethodField()
    keyHint = serializers.CharField(source="key_hint")
    fieldMapping = serializers.JSONField(source="field_mapping")
    pipelineId = serializers.UUIDField(source="pipeline_id", allow_null=True)
    stageId = serializers.UUIDField(source="stage_id", allow_null=True)
    dedupStrategy = serializers.CharField(source="dedup_strategy")
    honeypotField = serializers.CharField(source="honeypot_field")
    responseMode = serializers.CharField(source="response_mode")
    isActive = serializers.BooleanField(source="is_active")
    stats = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")

    def get_url(self, webhook) -> str:
        """Shown in full only with a freshly issued key (`context["raw_key"]`); else with the hint."""
        key = self.context.get("raw_key") or f"{webhook.key_hint}…"
        request = self.context.get("request")
        path = f"/webhooks/leads/{key}"
        return request.build_absolute_uri(path) if request is not None and self.context.get("raw_key") else path

    def get_stats(self, webhook) -> dict:
        return {
            "totalReceived": webhook.total_received,
            "duplicates": webhook.duplicates_received,
            "discarded": webhook.discarded_received,
            "duplicateRate": round(webhook.duplicate_rate, 4),
            "lastReceivedAt": webhook.last_received_at.isoformat().replace("+00:00", "Z") if webhook.last_received_at else None,
        }


OUTBOUND_SERVER_OWNED = frozenset({"id", "secret", "secretHint", "stats", "createdAt"})


class OutboundWebhookWriteSerializer(StrictInputSerializer):
    """Shapes only; the service validates values (URL scheme, known event types) naming the field."""

    ignored_fields = OUTBOUND_SERVER_OWNED

    name = serializers.CharField(max_length=120)
    url = serializers.CharField(max_length=2000)
    eventTypes = serializers.ListField(child=serializers.CharField(max_length=80), required=False, source="event_types")
    isActive = serializers.BooleanField(required=False, source="is_active")


class OutboundWebhookUpdateSerializer(OutboundWebhookWriteSerializer):
    name = serializers.CharField(max_length=120, required=False)
    url = serializers.CharField(max_length=2000, required=False)


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


class OutboundWebhookSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    url = serializers.CharField()
    eventTypes = serializers.ListField(child=serializers.CharField(), source="event_types")
    isActive = serializers.BooleanField(source="is_active")
    secretHint = serializers.CharField(source="secret_hint")
    stats = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")

    def get_stats(self, webhook) -> dict:
        return {"lastDeliveryAt": _iso(webhook.last_delivery_at), "lastStatus": webhook.last_status or None}


class OutboundWebhookCreatedSerializer(OutboundWebhookSerializer):
    """The create answer: the only one that carries the signing secret."""

    secret = serializers.CharField()


class OutboundDeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    eventType = serializers.CharField(source="event_type")
    eventId = serializers.UUIDField(source="event_id")
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    nextAttemptAt = serializers.DateTimeField(source="next_attempt_at", allow_null=True)
    lastResponseCode = serializers.IntegerField(source="last_response_code", allow_null=True)
    lastError = serializers.CharField(source="last_error")
    payload = serializers.JSONField()
    createdAt = serializers.DateTimeField(source="created_at")
    deliveredAt = serializers.DateTimeField(source="delivered_at", allow_null=True)
