from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations import services
from integrations.api import serializers as s
from integrations.models import LeadWebhook
from workspaces.permissions import LEADS_MANAGE
from workspaces.scoping import scoped, scoped_get_or_404


def _validated(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data, context={"workspace": request.workspace, "request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _with_key(request, webhook, raw_key: str) -> dict:
    data = s.WebhookSerializer(webhook, context={"request": request, "raw_key": raw_key}).data
    return {**data, "apiKey": raw_key}


class WebhookListCreateApi(APIView):
    required_permissions = {"GET": LEADS_MANAGE, "POST": LEADS_MANAGE}

    @extend_schema(responses=s.WebhookSerializer(many=True))
    def get(self, request):
        webhooks = list(scoped(LeadWebhook, request.workspace).order_by("name"))
        return Response({"results": s.WebhookSerializer(webhooks, many=True).data, "count": len(webhooks)})

    @extend_schema(request=s.WebhookWriteSerializer, responses={201: s.WebhookSerializer})
    def post(self, request):
        data = _validated(s.WebhookWriteSerializer, request)
        webhook, raw = services.webhook_create(workspace=request.workspace, **data)
        return Response(_with_key(request, webhook, raw), status=status.HTTP_201_CREATED)


class WebhookDetailApi(APIView):
    required_permissions = {"GET": LEADS_MANAGE, "PATCH": LEADS_MANAGE, "DELETE": LEADS_MANAGE}

    def _webhook(self, request, webhook_id) -> LeadWebhook:
        return scoped_get_or_404(LeadWebhook, request.workspace, pk=webhook_id)

    @extend_schema(responses=s.WebhookSerializer)
    def get(self, request, webhook_id):
        return Response(s.WebhookSerializer(self._webhook(request, webhook_id)).data)

    @extend_schema(request=s.WebhookUpdateSerializer, responses=s.WebhookSerializer)
    def patch(self, request, webhook_id):
        webhook = self._webhook(request, webhook_id)
        data = _validated(s.WebhookUpdateSerializer, request)
        webhook = services.webhook_update(webhook=webhook, **data)
        return Response(s.WebhookSerializer(webhook).data)

    @extend_schema(responses={204: None})
    def delete(self, request, webhook_id):
        services.webhook_delete(webhook=self._webhook(request, webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRegenerateKeyApi(APIView):
    required_permissions = {"POST": LEADS_MANAGE}

    @extend_schema(request=None, responses=s.WebhookSerializer)
    def post(self, request, webhook_id):
        webhook = scoped_get_or_404(LeadWebhook, request.workspace, pk=webhook_id)
        raw = services.webhook_regenerate_key(webhook=webhook)
        return Response(_with_key(request, webhook, raw))
