"""Writes for automations: tasks, and the assignment hook band actions call."""

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from automations.models import Task
from leads.models import Lead
from workspaces.models import Membership, Role


def task_create(*, workspace, lead=None, title: str, assignee=None, due_in: timedelta | None = None, source: str = "", now=None) -> Task:
    now = now or timezone.now()
    return Task.objects.create(
        workspace=workspace,
        lead=lead,
        title=title[:300],
        assignee=assignee,
        due_at=now + due_in if due_in else None,
        source=source[:120],
    )


def lead_assign_by_rule(*, lead: Lead, rule: str = "round_robin", actor=None):
    """The routing hook band and segment actions call. Until routing rules exist: the workspace's
    Sales Rep with the fewest open leads (ties by name) gets a lead that has no owner."""
    from leads.services import lead_assign

    if lead.owner_id is not None:
        return lead.owner
    reps = (
        Membership.objects.filter(workspace_id=lead.workspace_id, role=Role.SALES_REP, user__is_active=True)
        .annotate(
            open_leads=Count(
                "user__owned_leads",
                # Leads the rep owns in other workspaces are not this workspace's load.
                filter=Q(user__owned_leads__workspace_id=lead.workspace_id, user__owned_leads__deleted_at__isnull=True),
            )
        )
        .select_related("user")
        .order_by("open_leads", "user__email")
    )
    member = reps.first()
    if member is None:
        return None
    lead_assign(lead=lead, owner=member.user, actor=actor)
    return member.user
