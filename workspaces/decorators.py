from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseForbidden


def workspace_permission_required(permission: str):
    """For web views: a signed-in member of the current workspace whose role grants `permission`.

    The UI hides what a role may not do; this is where the server refuses it anyway.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            membership = getattr(request, "membership", None)
            if membership is None:
                return HttpResponseForbidden("You are not a member of any workspace yet. Ask an admin to invite you.")
            if not membership.has_perm(permission):
                return HttpResponseForbidden("Your role does not allow this action.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
