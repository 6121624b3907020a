from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from workspaces.admin_scoping import WorkspaceScopedAdmin, administers, request_administered_ids
from workspaces.models import ApiToken, Membership, User, Workspace
from workspaces.services import api_token_revoke


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active", "last_login"]
    search_fields = ["email", "first_name", "last_name"]
    readonly_fields = ["last_login", "date_joined"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(memberships__workspace__in=request_administered_ids(request)).distinct()


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = User.objects.filter(memberships__workspace__in=request_administered_ids(request)).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "default_region", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["id", "created_at"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(pk__in=request_administered_ids(request))

    def has_module_permission(self, request):
        return super().has_module_permission(request) or administers(request)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or administers(request, obj and obj.pk)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) or administers(request, obj and obj.pk)


@admin.register(Membership)
class MembershipAdmin(WorkspaceScopedAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    related_filters = ("workspace",)
    plain_filters = ("role",)
    search_fields = ["user__email", "workspace__name"]
    readonly_fields = ["created_at"]


@admin.register(ApiToken)
class ApiTokenAdmin(WorkspaceScopedAdmin):
    workspace_lookup = "membership__workspace"
    list_display = ["hint", "name", "membership", "created_at", "last_used_at", "revoked_at"]
    related_filters = ("membership__workspace",)
    plain_filters = ("revoked_at",)
    search_fields = ["name", "hint", "membership__user__email"]
    readonly_fields = ["hint", "key_hash", "membership", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        # Tokens are issued with `manage.py issue_token`, which shows the raw value once.
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            api_token_revoke(token=token)
        self.message_user(request, f"Revoked {queryset.count()} token(s).", messages.SUCCESS)
