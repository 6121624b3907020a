from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from workspaces.middleware import SESSION_WORKSPACE_KEY
from workspaces.models import Membership


@login_required
@require_POST
def switch_workspace(request):
    try:
        membership = Membership.objects.filter(user=request.user, workspace_id=request.POST.get("workspace")).first()
    except ValidationError:
        membership = None
    if membership is not None:
        request.session[SESSION_WORKSPACE_KEY] = str(membership.workspace_id)
    return redirect("board")
