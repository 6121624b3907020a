from django.contrib import admin, messages
from django.db import models

from integrations.models import LeadWebhook, OutboundDelivery, OutboundWebhook, WebhookSubmission
from integrations.outbound import outbound_delivery_retry
from workspaces.admin_scoping import ReadOnlyAdminMixin, WorkspaceScopedAdmin


@admin.register(LeadWebhook)
class LeadWebhookAdmin(WorkspaceScopedAdmin):
    list_display = [
        "name",
        "workspace",
        "dedup_strategy",
        "is_active",
        "total_received",
        "duplicates_received",
        "discarded_received",
        "last_received_at",
    ]
    related_filters = ("workspace",)
    plain_filters = ("dedup_strategy", "response_mode", "is_active")
    search_fields = ["name", "key_hint"]
    list_select_related = ["workspace"]
    fields = [
        "workspace", "name", "key_hint", "field_mapping", "pipeline", "stage", "dedup_strategy", "honeypot_field", "response_mode",
        "is_active", "total_received", "duplicates_received", "discarded_received", "last_received_at", "created_at",
    ]  # fmt: skip
    readonly_fields = [
        "workspace",
        "key_hint",
        "total_received",
        "duplicates_received",
        "discarded_received",
        "last_received_at",
        "created_at",
    ]

    def has_add_permission(self, request):
        # Created on the Webhooks page or the API, which show the new key once.
        return False


@admin.register(WebhookSubmission)
class WebhookSubmissionAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    """The raw submissions as received: an audit trail, read-only."""

    list_display = ["received_at", "webhook", "outcome", "lead", "idempotency_key", "ip"]
    related_filters = ("workspace", "webhook")
    plain_filters = ("outcome",)
    search_fields = ["idempotency_key", "lead__email", "lead__name"]
    list_select_related = ["webhook", "lead"]
    date_hierarchy = "received_at"
    show_full_result_count = False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OutboundWebhook)
class OutboundWebhookAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "workspace", "url", "is_active", "last_delivery_at", "last_status", "created_at"]
    related_filters = ("workspace",)
    plain_filters = ("is_active",)
    search_fields = ["name", "url"]
    list_select_related = ["workspace"]
    # The signing secret is never shown here: the API shows it once, on create.
    fields = ["workspace", "name", "url", "event_types", "is_active", "last_delivery_at", "last_status", "created_at"]
    # Event types are chosen with the API, which checks them against the known events.
    readonly_fields = ["workspace", "event_types", "last_delivery_at", "last_status", "created_at"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request):
        # Created with the API, which shows the new signing secret once.
        return False


@admin.register(OutboundDelivery)
class OutboundDeliveryAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    """Each event sent (or being retried) to an outbound webhook; "retry now" makes it due at once."""

    list_display = ["created_at", "webhook", "event_type", "status", "attempts", "next_attempt_at", "last_response_code", "delivered_at"]
    related_filters = ("workspace", "webhook")
    plain_filters = ("status", "event_type")
    search_fields = ["event_id", "webhook__name", "last_error"]
    list_select_related = ["webhook"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["retry_now"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry selected deliveries now")
    def retry_now(self, request, queryset):
        retried = sum(outbound_delivery_retry(delivery=delivery) for delivery in queryset)
        skipped = queryset.count() - retried
        self.message_user(
            request,
            f"Queued {retried} delivery(ies) for an attempt now; skipped {skipped} (already delivered, or the webhook is inactive).",
            messages.SUCCESS,
        )
