"""Roles and what they may do.

Permission names follow the product documents: `leads:view` and `leads:manage`. `leads:work` is the
Sales Rep's share of managing: move a lead's stage, add notes, assign a lead to themself, convert.
"""

from rest_framework.permissions import BasePermission

from workspaces.models import Role

LEADS_VIEW = "leads:view"
LEADS_WORK = "leads:work"
LEADS_MANAGE = "leads:manage"
WORKSPACE_ADMIN = "workspace:admin"

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.SUPER_ADMIN: frozenset({LEADS_VIEW, LEADS_WORK, LEADS_MANAGE, WORKSPACE_ADMIN}),
    Role.ADMIN: frozenset({LEADS_VIEW, LEADS_WORK, LEADS_MANAGE, WORKSPACE_ADMIN}),
    Role.MARKETER: frozenset({LEADS_VIEW, LEADS_WORK, LEADS_MANAGE}),
    Role.SALES_REP: frozenset({LEADS_VIEW, LEADS_WORK}),
    Role.VIEWER: frozenset({LEADS_VIEW}),
}


def role_has_permission(role: str, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


class HasWorkspacePermission(BasePermission):
    """Grants an API view's `required_permissions[request.method]` (default: leads:view for reads,
    leads:manage for writes) to the membership behind the bearer token."""

    message = "Your role does not allow this action."

    def has_permission(self, request, view) -> bool:
        membership = getattr(request, "membership", None)
        # Only a bearer token grants API access: a browser session never reaches the API.
        if membership is None or request.auth is None:
            return False
        required = getattr(view, "required_permissions", {}).get(request.method)
        if required is None:
            required = LEADS_VIEW if request.method in ("GET", "HEAD", "OPTIONS") else LEADS_MANAGE
        return membership.has_perm(required)
