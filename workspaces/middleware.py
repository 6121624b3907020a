from workspaces.selectors import membership_for_session

SESSION_WORKSPACE_KEY = "workspace_id"


class WorkspaceMiddleware:
    """Sets request.workspace and request.membership for signed-in web users.

    The chosen workspace lives in the session; without one, the user's first membership is used.
    API requests get theirs from the bearer token instead (workspaces.authentication).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.workspace = None
        request.membership = None
        user = getattr(request, "user", None)
        if not request.path.startswith("/api/") and user is not None and user.is_authenticated:
            membership = membership_for_session(user=user, workspace_id=request.session.get(SESSION_WORKSPACE_KEY))
            if membership is not None:
                request.membership = membership
                request.workspace = membership.workspace
        return self.get_response(request)
