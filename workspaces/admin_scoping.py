"""Admin for ops staff: a superuser sees every workspace; other staff see only the workspaces where
they are Admin or Super Admin, and can pick only those workspaces' rows in forms and filters.

Being Admin of a workspace is what grants admin access to its rows: such staff need no Django
model permissions for the workspace-scoped models.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model

from workspaces.models import Membership, Role

ADMIN_ROLES = (Role.SUPER_ADMIN, Role.ADMIN)


def administered_workspace_ids(user) -> list:
    return list(Membership.objects.filter(user=user, role__in=ADMIN_ROLES).values_list("workspace_id", flat=True))


def request_administered_ids(request) -> list:
    """The ids once per request: admin asks for them many times while rendering one page."""
    if not hasattr(request, "_administered_workspace_ids"):
        request._administered_workspace_ids = administered_workspace_ids(request.user)
    return request._administered_workspace_ids


def administers(request, workspace_id=None) -> bool:
    """Whether an active staff user is Admin of `workspace_id` (of any workspace when None)."""
    if not request.user.is_active or not request.user.is_staff:
        return False
    ids = request_administered_ids(request)
    return bool(ids) if workspace_id is None else workspace_id in ids


def _scoped_filter(field):
    # Filter choices come from the scoped queryset, so no other workspace's names appear.
    return (field, admin.RelatedOnlyFieldListFilter)


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """For models with a `workspace` field (or a path to one in `workspace_lookup`)."""

    workspace_lookup = "workspace"
    # Foreign keys listed here are filtered with choices limited to rows the user can see.
    related_filters: tuple[str, ...] = ()
    plain_filters: tuple[str, ...] = ()

    def get_list_filter(self, request):
        return [_scoped_filter(field) for field in self.related_filters] + list(self.plain_filters)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.workspace_lookup}__in": request_administered_ids(request)})

    def _workspace_of(self, obj):
        for part in self.workspace_lookup.split("__"):
            obj = getattr(obj, part)
        return obj

    def _administers(self, request, obj=None) -> bool:
        return administers(request, None if obj is None else self._workspace_of(obj).pk)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or self._administers(request)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or self._administers(request, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) or self._administers(request, obj)

    def has_add_permission(self, request):
        return super().has_add_permission(request) or self._administers(request)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) or self._administers(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            related = db_field.related_model
            ids = request_administered_ids(request)
            if related._meta.model_name == "workspace":
                kwargs["queryset"] = related.objects.filter(pk__in=ids)
            elif related is get_user_model():
                # Only people who already belong to a workspace this admin runs: never other tenants' users.
                kwargs["queryset"] = related.objects.filter(memberships__workspace__in=ids).distinct()
            elif any(f.name == "workspace" for f in related._meta.get_fields()):
                kwargs["queryset"] = related._default_manager.filter(workspace__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyAdminMixin:
    """For records written only by the product (audit logs, submissions, consent): shown, never edited here."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False
