from workspaces.models import Membership, User, Workspace


def membership_for_session(*, user: User, workspace_id: str | None) -> Membership | None:
    memberships = Membership.objects.filter(user=user).select_related("workspace").order_by("workspace__name")
    if workspace_id:
        chosen = memberships.filter(workspace_id=workspace_id).first()
        if chosen is not None:
            return chosen
    return memberships.first()


def memberships_of_user(*, user: User):
    return Membership.objects.filter(user=user).select_related("workspace").order_by("workspace__name")


def workspace_members(*, workspace: Workspace):
    return User.objects.filter(memberships__workspace=workspace, is_active=True).order_by("first_name", "email")


def workspace_member_or_none(*, workspace: Workspace, user_id) -> User | None:
    try:
        return workspace_members(workspace=workspace).filter(pk=int(user_id)).first()
    except (TypeError, ValueError):
        return None
