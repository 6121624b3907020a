from django.contrib import admin

from leads.models import Company, Contact, Lead, LeadActivity, LeadTag, Note, Tag
from workspaces.admin_scoping import WorkspaceScopedAdmin


class LeadTagInline(admin.TabularInline):
    model = LeadTag
    extra = 0
    autocomplete_fields = ["tag"]


class NoteInline(admin.TabularInline):
    model = Note
    fk_name = "lead"
    extra = 0
    fields = ["text", "author", "created_at"]
    readonly_fields = ["author", "created_at"]


class ActivityInline(admin.TabularInline):
    model = LeadActivity
    extra = 0
    fields = ["type", "actor", "data", "created_at"]
    readonly_fields = fields
    can_delete = False
    ordering = ["-created_at"]
    max_num = 0


@admin.register(Lead)
class LeadAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "email", "phone", "company", "stage", "source_type", "score", "owner", "created_at", "deleted_at"]
    related_filters = ("workspace", "pipeline", "stage")
    plain_filters = ("source_type", "status", "lifecycle_stage", "deleted_at")
    search_fields = ["name", "email", "phone", "company__name"]
    list_select_related = ["company", "stage", "owner"]
    readonly_fields = ["id", "score", "created_at", "updated_at", "last_activity_at", "converted_at", "contact"]
    autocomplete_fields = ["company", "owner"]
    date_hierarchy = "created_at"
    inlines = [LeadTagInline, NoteInline, ActivityInline]
    list_per_page = 50
    show_full_result_count = False


@admin.register(Company)
class CompanyAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "domain", "industry", "size", "workspace", "created_at"]
    related_filters = ("workspace",)
    plain_filters = ("industry",)
    search_fields = ["name", "domain"]
    readonly_fields = ["id", "created_at"]


@admin.register(Contact)
class ContactAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "email", "phone", "platform", "workspace", "created_at"]
    related_filters = ("workspace",)
    plain_filters = ("platform",)
    search_fields = ["name", "email", "phone"]
    readonly_fields = ["id", "created_at"]


@admin.register(Tag)
class TagAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "workspace"]
    related_filters = ("workspace",)
    search_fields = ["name"]


@admin.register(Note)
class NoteAdmin(WorkspaceScopedAdmin):
    list_display = ["__str__", "lead", "contact", "author", "created_at"]
    related_filters = ("workspace",)
    search_fields = ["text", "lead__name"]
    readonly_fields = ["id", "author", "created_at"]
    raw_id_fields = ["lead", "contact"]


@admin.register(LeadActivity)
class LeadActivityAdmin(WorkspaceScopedAdmin):
    list_display = ["type", "lead", "actor", "created_at"]
    related_filters = ("workspace",)
    plain_filters = ("type",)
    search_fields = ["lead__name", "lead__email"]
    readonly_fields = ["lead", "type", "actor", "data", "created_at", "workspace"]
    list_select_related = ["lead", "actor"]

    def has_add_permission(self, request):
        # The audit log is written by services only.
        return False

    def has_change_permission(self, request, obj=None):
        return False
