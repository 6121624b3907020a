"""Admin for ops staff: a superuser sees every workspace; other staff see only the workspaces where
they are Admin or Super Admin, and can pick only those workspaces' rows in forms."""

from django.contrib import admin

from workspaces.models import Membership, Role

ADMIN_ROLES = (Role.SUPER_ADMIN, Role.ADMIN)


def administered_workspace_ids(user) -> list:
    return list(Membership.objects.filter(user=user, role__in=ADMIN_ROLES).values_list("workspace_id", flat=True))


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """For models with a `workspace` field (or a path to one in `workspace_lookup`)."""

    workspace_lookup = "workspace"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.workspace_lookup}__in": administered_workspace_ids(request.user)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            related = db_field.related_model
            ids = administered_workspace_ids(request.user)
            if related._meta.model_name == "workspace":
                kwargs["queryset"] = related.objects.filter(pk__in=ids)
            elif any(f.name == "workspace" for f in related._meta.get_fields()):
                kwargs["queryset"] = related._default_manager.filter(workspace__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
