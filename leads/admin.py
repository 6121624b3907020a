from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from leads.models import Company, ConsentRecord, Contact, FailedJob, ImportJob, ImportJobPart, Lead, LeadActivity, LeadTag, Note, Tag
from leads.services import UPDATABLE_FIELDS, lead_update
from workspaces.admin_scoping import ReadOnlyAdminMixin, WorkspaceScopedAdmin
from workspaces.selectors import workspace_member_or_none


class ReadOnlyInline(admin.TabularInline):
    """Tags and notes are changed through the board or the API, whose services log each change."""

    extra = 0
    max_num = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields


class LeadTagInline(ReadOnlyInline):
    model = LeadTag
    fields = ["tag"]


class NoteInline(ReadOnlyInline):
    model = Note
    fk_name = "lead"
    fields = ["text", "author", "created_at"]


class ActivityInline(ReadOnlyInline):
    model = LeadActivity
    fields = ["type", "actor", "data", "created_at"]
    ordering = ["-created_at"]


class LeadAdminForm(forms.ModelForm):
    class Meta:
        model = Lead
        fields = [*UPDATABLE_FIELDS, "stage", "owner", "custom_fields"]

    def clean_stage(self):
        stage = self.cleaned_data.get("stage")
        if stage is not None and stage.workspace_id != self.instance.workspace_id:
            raise forms.ValidationError("Choose a stage of this lead's workspace.")
        return stage

    def clean_owner(self):
        owner = self.cleaned_data.get("owner")
        if owner is not None and workspace_member_or_none(workspace=self.instance.workspace, user_id=owner.pk) is None:
            raise forms.ValidationError("Choose a member of this lead's workspace.")
        return owner


@admin.register(Lead)
class LeadAdmin(WorkspaceScopedAdmin):
    """Ops staff correct leads here; every change goes through lead_update, so it is validated and
    logged like a change made on the board. Leads are created by capture, the board and the API."""

    form = LeadAdminForm
    list_display = ["name", "email", "phone", "company", "stage", "source_type", "score", "owner", "created_at", "deleted_at"]
    related_filters = ("workspace", "pipeline", "stage")
    plain_filters = ("source_type", "status", "lifecycle_stage", "deleted_at")
    search_fields = ["name", "email", "phone", "company__name"]
    list_select_related = ["company", "stage__pipeline", "owner"]
    fields = [
        "workspace", "name", "first_name", "last_name", "email", "phone", "company", "title", "department",
        "stage", "owner", "status", "lifecycle_stage", "source_type", "source_campaign", "source_medium",
        "source_referrer", "source_landing_url", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
        "custom_fields", "score", "id", "pipeline", "contact", "converted_at", "created_at", "updated_at",
        "last_activity_at", "deleted_at",
    ]  # fmt: skip
    readonly_fields = [
        "workspace", "company", "score", "id", "pipeline", "contact", "converted_at", "created_at", "updated_at",
        "last_activity_at", "deleted_at",
    ]  # fmt: skip
    date_hierarchy = "created_at"
    inlines = [LeadTagInline, NoteInline, ActivityInline]
    list_per_page = 50
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # Leads are soft-deleted through the board or the API, keeping their history.
        return False

    def save_model(self, request, obj, form, change):
        data = {field: form.cleaned_data[field] for field in form.changed_data if field in UPDATABLE_FIELDS}
        for field in ("custom_fields", "stage", "owner"):
            if field in form.changed_data:
                data[field] = form.cleaned_data[field]
        if "custom_fields" in data:
            # The admin edits the whole JSON object: keys it no longer has are removed.
            data["custom_fields"] = {
                **{key: None for key in Lead.objects.get(pk=obj.pk).custom_fields if key not in (data["custom_fields"] or {})},
                **(data["custom_fields"] or {}),
            }
        try:
            lead_update(lead=Lead.objects.get(pk=obj.pk), actor=request.user, data=data)
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)


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
    readonly_fields = ["id", "workspace", "lead", "contact", "author", "created_at"]

    def has_add_permission(self, request):
        # Notes are added on the board or through the API, which log them on the lead.
        return False


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


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    """Consent history is append-only: nothing here can be added, changed or deleted."""

    list_display = ["__str__", "lead", "source", "policy_version", "created_at"]
    related_filters = ("workspace",)
    plain_filters = ("purpose", "granted", "source")
    search_fields = ["lead__email", "lead__name"]
    list_select_related = ["lead"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(FailedJob)
class FailedJobAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    """Background steps that failed after their retries; replay re-runs them."""

    list_display = ["__str__", "lead", "attempts", "error", "failed_at", "replayed_at"]
    related_filters = ("workspace",)
    plain_filters = ("task_name",)
    search_fields = ["task_name", "error", "lead__email"]
    list_select_related = ["lead"]
    actions = ["replay"]

    @admin.action(description="Replay selected failed jobs")
    def replay(self, request, queryset):
        from leads.tasks import failed_job_replay

        replayed = sum(failed_job_replay(job=job) for job in queryset)
        self.message_user(request, f"Replayed {replayed} job(s); already replayed ones were skipped.", messages.SUCCESS)


class ImportJobPartInline(admin.TabularInline):
    model = ImportJobPart
    fields = ["index", "rows", "status", "attempts", "resume_after_row", "error", "started_at", "progressed_at", "finished_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    inlines = [ImportJobPartInline]
    list_display = ["__str__", "created_by", "rows", "status", "created_at", "finished_at"]
    related_filters = ("workspace",)
    plain_filters = ("status", "dry_run")
    search_fields = ["original_name", "created_by__email"]
    list_select_related = ["created_by"]


from leads.tracking import admin as tracking_admin  # noqa: E402, F401 - registers the tracking admin
