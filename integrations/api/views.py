from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations import outbound, services
from integrations.api import serializers as s
from integrations.models import LeadWebhook, OutboundWebhook
from leadsmgr.api.pagination import MAX_LIMIT, PageLimitPagination
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


class OutboundWebhookListCreateApi(APIView):
    required_permissions = {"GET": LEADS_MANAGE, "POST": LEADS_MANAGE}

    @extend_schema(responses=s.OutboundWebhookSerializer(many=True))
    def get(self, request):
        webhooks = list(scoped(OutboundWebhook, request.workspace).order_by("name", "created_at"))
        return Response({"results": s.OutboundWebhookSerializer(webhooks, many=True).data, "count": len(webhooks)})

    @extend_schema(
        request=s.OutboundWebhookWriteSerializer,
        responses={201: s.OutboundWebhookCreatedSerializer},
        description="The answer carries `secret`, the signing secret, this once.",
    )
    def post(self, request):
        data = _validated(s.OutboundWebhookWriteSerializer, request)
        webhook, _ = outbound.outbound_webhook_create(workspace=request.workspace, **data)
        return Response(s.OutboundWebhookCreatedSerializer(webhook).data, status=status.HTTP_201_CREATED)


class OutboundWebhookDetailApi(APIView):
    required_permissions = {"GET": LEADS_MANAGE, "PATCH": LEADS_MANAGE, "DELETE": LEADS_MANAGE}

    @extend_schema(responses=s.OutboundWebhookSerializer)
    def get(self, request, webhook_id):
        return Response(s.OutboundWebhookSerializer(_outbound_webhook(request, webhook_id)).data)

    @extend_schema(request=s.OutboundWebhookUpdateSerializer, responses=s.OutboundWebhookSerializer)
    def patch(self, request, webhook_id):
        webhook = _outbound_webhook(request, webhook_id)
        data = _validated(s.OutboundWebhookUpdateSerializer, request)
        webhook = outbound.outbound_webhook_update(webhook=webhook, **data)
        return Response(s.OutboundWebhookSerializer(webhook).data)

    @extend_schema(responses={204: None})
    def delete(self, request, webhook_id):
        outbound.outbound_webhook_delete(webhook=_outbound_webhook(request, webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class OutboundWebhookDeliveriesApi(APIView):
    required_permissions = {"GET": LEADS_MANAGE}

    @extend_schema(
        parameters=[
            OpenApiParameter("limit", int, description=f"1 to {MAX_LIMIT}, default 25"),
            OpenApiParameter("page", int, description="1-based, default 1"),
        ],
        responses=s.OutboundDeliverySerializer(many=True),
        summary="The webhook's deliveries, newest first",
    )
    def get(self, request, webhook_id):
        webhook = _outbound_webhook(request, webhook_id)
        pagination = PageLimitPagination()
        deliveries, meta = pagination.paginate(request, webhook.deliveries.order_by("-created_at", "-id"))
        return pagination.response(s.OutboundDeliverySerializer(deliveries, many=True).data, meta)


class OutboundWebhookTestApi(APIView):
    required_permissions = {"POST": LEADS_MANAGE}

    @extend_schema(request=None, responses={202: s.OutboundDeliverySerializer}, summary="Sends a webhook.test event to this webhook only")
    def post(self, request, webhook_id):
        delivery = outbound.outbound_webhook_test(webhook=_outbound_webhook(request, webhook_id))
        delivery.refresh_from_db()
        return Response(s.OutboundDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


def _outbound_webhook(request, webhook_id) -> OutboundWebhook:
    return scoped_get_or_404(OutboundWebhook, request.workspace, pk=webhook_id)
