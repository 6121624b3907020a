from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from pipelines.models import Pipeline, Stage
from pipelines.services import pipeline_delete
from workspaces.admin_scoping import WorkspaceScopedAdmin


class StageInline(admin.TabularInline):
    """Shown for reference: stages are added, removed and reordered in pipeline settings (board or
    API), which move a removed stage's leads instead of orphaning them."""

    model = Stage
    extra = 0
    max_num = 0
    can_delete = False
    fields = ["name", "position", "color", "type"]
    readonly_fields = fields
    ordering = ["position"]


@admin.register(Pipeline)
class PipelineAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "workspace", "is_default", "created_at", "updated_at"]
    related_filters = ("workspace",)
    plain_filters = ("is_default",)
    search_fields = ["name"]
    fields = ["workspace", "name", "is_default", "id", "created_at", "updated_at"]
    readonly_fields = ["workspace", "is_default", "id", "created_at", "updated_at"]
    inlines = [StageInline]
    actions = ["delete_moving_leads"]

    def has_add_permission(self, request):
        # Pipelines are created in pipeline settings or the API, with their stages.
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting goes through the "delete, moving leads" action so no lead is orphaned.
        return False

    @admin.action(description="Delete selected pipelines, moving their leads to the default pipeline")
    def delete_moving_leads(self, request, queryset):
        for pipeline in queryset:
            try:
                moved = pipeline_delete(pipeline=pipeline, actor=request.user)
            except ValidationError as error:
                self.message_user(request, f"{pipeline.name}: {' '.join(error.messages)}", messages.ERROR)
            else:
                self.message_user(request, f"Deleted {pipeline.name}; {moved} lead(s) moved.", messages.SUCCESS)


@admin.register(Stage)
class StageAdmin(WorkspaceScopedAdmin):
    list_display = ["__str__", "position", "color", "type", "workspace"]
    related_filters = ("workspace",)
    plain_filters = ("type",)
    search_fields = ["name", "pipeline__name"]
    list_select_related = ["pipeline", "workspace"]
    fields = ["workspace", "pipeline", "name", "color", "type", "position", "id", "created_at"]
    readonly_fields = ["workspace", "pipeline", "position", "id", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
