from django.contrib import admin

from integrations.models import LeadWebhook, WebhookSubmission
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
    plain_filters = ("dedup_strategy", "is_active")
    search_fields = ["name", "key_hint"]
    list_select_related = ["workspace"]
    fields = [
        "workspace", "name", "key_hint", "field_mapping", "pipeline", "stage", "dedup_strategy", "honeypot_field", "is_active",
        "total_received", "duplicates_received", "discarded_received", "last_received_at", "created_at",
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
