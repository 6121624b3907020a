"""The one way views, the API and admin reach tenant data.

A row of another workspace is simply not in the queryset, so looking it up answers 404, never 403.
"""

from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404

from workspaces.models import Workspace


def scoped(model_or_queryset, workspace: Workspace) -> models.QuerySet:
    if isinstance(model_or_queryset, models.QuerySet):
        queryset = model_or_queryset
    else:
        queryset = model_or_queryset._default_manager.all()
    return queryset.filter(workspace=workspace)


def scoped_get_or_404(model_or_queryset, workspace: Workspace, **lookup):
    queryset = scoped(model_or_queryset, workspace)
    try:
        return queryset.get(**lookup)
    except (queryset.model.DoesNotExist, ValidationError, ValueError, TypeError):
        # A malformed id (not a UUID, say) names nothing that exists either.
        raise Http404("Not found.") from None
