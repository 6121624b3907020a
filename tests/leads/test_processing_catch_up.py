"""A processing task takes the leads of its workspace still waiting behind its own lead (a burst of
webhooks, leads whose messages were lost) as one set-based batch; their own messages then find them
done. Celery runs eagerly in tests."""

from leads.models import ActivityType, Lead, LeadActivity
from leads.tasks import process_lead
from tests.leads.factories import make_lead


def waiting_leads(workspace, count: int, django_capture_on_commit_callbacks) -> list[Lead]:
    """Leads captured while no task ran yet (their processing messages are held back)."""
    with django_capture_on_commit_callbacks(execute=False):
        return [make_lead(workspace, name=f"Waiting {n}", email=f"w{n}@gmail.com") for n in range(count)]


def states(workspace) -> list[str]:
    return sorted(Lead.objects.filter(workspace=workspace).values_list("processing_state", flat=True))


def test_one_task_processes_the_leads_waiting_behind_its_own(workspace, other_workspace, django_capture_on_commit_callbacks):
    leads = waiting_leads(workspace, 6, django_capture_on_commit_callbacks)
    elsewhere = waiting_leads(other_workspace, 2, django_capture_on_commit_callbacks)
    assert states(workspace) == ["received"] * 6

    assert process_lead.delay(str(leads[2].pk)).get() == "ready"

    assert states(workspace) == ["ready"] * 6
    assert set(Lead.objects.filter(workspace=workspace).values_list("score_band", "email_kind")) == {("cold", "free")}
    assert LeadActivity.objects.filter(workspace=workspace, type=ActivityType.PROCESSED).count() == 6
    assert states(other_workspace) == ["received"] * 2  # another workspace's leads wait for their own messages
    # The others' own messages, arriving later, change nothing.
    for lead in leads:
        assert process_lead.delay(str(lead.pk)).get() == "ready"
    assert LeadActivity.objects.filter(workspace=workspace, type=ActivityType.PROCESSED).count() == 6
    assert elsewhere[0].processing_state == "received"


def test_catch_up_can_be_turned_off(workspace, settings, django_capture_on_commit_callbacks):
    settings.LEAD_PROCESSING_CATCH_UP = 0
    leads = waiting_leads(workspace, 3, django_capture_on_commit_callbacks)
    process_lead.delay(str(leads[0].pk))
    assert states(workspace) == ["ready", "received", "received"]
