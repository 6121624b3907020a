"""Admin for tracking: sites and personalization rules are edited here (validated like the API);
visitors, events and identity conflicts are read-only records."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from leads.tracking import personalization
from leads.tracking.models import IdentityConflict, PersonalizationRule, TrackEvent, TrackingSite, Visitor
from leads.tracking.services import _clean_site, _forget
from workspaces.admin_scoping import ReadOnlyAdminMixin, WorkspaceScopedAdmin


class TrackingSiteForm(forms.ModelForm):
    class Meta:
        model = TrackingSite
        fields = [
            "workspace", "name", "allowed_origins", "form_include", "form_exclude", "field_mapping", "form_events",
            "auto_capture_events", "auto_capture_required_fields", "dedup_strategy", "rate_limit_per_minute", "is_active",
        ]  # fmt: skip

    def clean(self):
        data = super().clean()
        keys = [key for key in self.Meta.fields if key not in ("workspace", "name", "rate_limit_per_minute", "is_active") and key in data]
        try:
            data.update(_clean_site({key: data[key] for key in keys}))
        except ValidationError as error:
            for key, messages in error.message_dict.items():
                self.add_error(key, messages)
        return data


@admin.register(TrackingSite)
class TrackingSiteAdmin(WorkspaceScopedAdmin):
    form = TrackingSiteForm
    list_display = ["name", "site_key", "workspace", "is_active", "created_at"]
    related_filters = ("workspace",)
    plain_filters = ("is_active",)
    search_fields = ["name", "site_key"]
    readonly_fields = ["site_key", "created_at"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        _forget(obj)

    def delete_model(self, request, obj):
        _forget(obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for site in queryset:
            _forget(site)
        super().delete_queryset(request, queryset)


class PersonalizationRuleForm(forms.ModelForm):
    class Meta:
        model = PersonalizationRule
        fields = ["workspace", "name", "position", "is_active", "conditions", "changes"]

    def clean(self):
        data = super().clean()
        for key, check in (("conditions", personalization.validate_conditions), ("changes", personalization.validate_changes)):
            if key in data:
                try:
                    check(data[key])
                except ValueError as error:
                    self.add_error(key, str(error))
        return data


@admin.register(PersonalizationRule)
class PersonalizationRuleAdmin(WorkspaceScopedAdmin):
    form = PersonalizationRuleForm
    list_display = ["name", "position", "is_active", "workspace", "updated_at"]
    related_filters = ("workspace",)
    plain_filters = ("is_active",)
    search_fields = ["name"]


@admin.register(Visitor)
class VisitorAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    list_display = ["visitor_key", "lead", "first_seen_at", "last_seen_at", "utm_source", "is_bot", "bot_reason"]
    related_filters = ("workspace",)
    plain_filters = ("is_bot", "bot_reason")
    search_fields = ["visitor_key", "lead__email"]
    list_select_related = ["lead"]
    show_full_result_count = False


@admin.register(TrackEvent)
class TrackEventAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    list_display = ["name", "kind", "lead", "visitor_key", "occurred_at", "is_bot", "processed_at"]
    related_filters = ("workspace",)
    plain_filters = ("kind", "is_bot")
    search_fields = ["name", "visitor_key", "lead__email"]
    list_select_related = ["lead"]
    show_full_result_count = False
    list_per_page = 50


@admin.register(IdentityConflict)
class IdentityConflictAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    list_display = ["visitor", "lead", "attempted_email", "attempted_lead", "source", "created_at"]
    related_filters = ("workspace",)
    search_fields = ["attempted_email", "lead__email"]
    list_select_related = ["visitor", "lead", "attempted_lead"]
