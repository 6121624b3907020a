from workspaces.permissions import LEADS_MANAGE, LEADS_WORK
from workspaces.selectors import memberships_of_user


def workspace(request):
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}
    return {
        "workspace": membership.workspace,
        "membership": membership,
        "user_memberships": memberships_of_user(user=request.user),
        "can_manage": membership.has_perm(LEADS_MANAGE),
        "can_work": membership.has_perm(LEADS_WORK),
    }
