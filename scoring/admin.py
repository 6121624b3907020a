from django.contrib import admin

from scoring.models import ScoreChange, ScoringModel
from workspaces.admin_scoping import ReadOnlyAdminMixin, WorkspaceScopedAdmin


@admin.register(ScoringModel)
class ScoringModelAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    """Versions are written by the scoring API (an edit is a new version), never changed here."""

    list_display = ["__str__", "workspace", "is_active", "created_by", "created_at"]
    related_filters = ("workspace",)
    plain_filters = ("is_active",)


@admin.register(ScoreChange)
class ScoreChangeAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    list_display = ["lead", "previous_score", "new_score", "new_band", "threshold_crossed", "reason", "model_version", "created_at"]
    related_filters = ("workspace",)
    plain_filters = ("threshold_crossed",)
    search_fields = ["lead__email", "lead__name", "reason"]
    list_select_related = ["lead"]
    show_full_result_count = False
