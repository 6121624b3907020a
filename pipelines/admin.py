from django.contrib import admin

from pipelines.models import Pipeline, Stage
from workspaces.admin_scoping import WorkspaceScopedAdmin


class StageInline(admin.TabularInline):
    model = Stage
    extra = 0
    fields = ["name", "position", "color", "type"]
    ordering = ["position"]


@admin.register(Pipeline)
class PipelineAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "workspace", "is_default", "created_at", "updated_at"]
    related_filters = ("workspace",)
    plain_filters = ("is_default",)
    search_fields = ["name"]
    readonly_fields = ["id", "created_at", "updated_at"]
    inlines = [StageInline]


@admin.register(Stage)
class StageAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "pipeline", "position", "color", "type", "workspace"]
    related_filters = ("workspace",)
    plain_filters = ("type",)
    search_fields = ["name", "pipeline__name"]
    readonly_fields = ["id", "created_at"]
