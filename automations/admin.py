from django.contrib import admin

from automations.models import Task
from workspaces.admin_scoping import WorkspaceScopedAdmin


@admin.register(Task)
class TaskAdmin(WorkspaceScopedAdmin):
    list_display = ["title", "lead", "assignee", "due_at", "status", "source", "created_at"]
    related_filters = ("workspace",)
    plain_filters = ("status",)
    search_fields = ["title", "lead__name", "lead__email"]
    list_select_related = ["lead", "assignee"]
    # Assignees are members of the task's workspace; set by band and segment actions.
    readonly_fields = ["lead", "assignee", "source", "created_at"]
