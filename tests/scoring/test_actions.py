"""Band actions: what crossing up into a band sets off, as configured through PUT /api/v1/scoring-model
(seed 000's threshold automation): an email, a Slack post, an owner, a task, tags. They run once per
crossing, only on the way up, and one failing action does not stop the others.

Slack is a real HTTP server on 127.0.0.1 (tests.scoring.test_services.Receiver); email goes to
Django's test outbox.
"""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from automations.models import Task
from leads.models import ActivityType, Lead, LeadActivity
from scoring.actions import band_actions_run
from scoring.models import ScoreChange
from scoring.presets import threshold_preset_json
from scoring.tasks import run_band_actions
from tests.leads.factories import make_lead
from tests.scoring.test_services import FIT, FIT_SCORE, Receiver, create_lead, patch_lead, track
from tests.workspaces.factories import WorkspaceFactory, member
from workspaces.models import Role

pytestmark = pytest.mark.django_db

MODEL = "/api/v1/scoring-model"


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def slack(settings):
    fake = Receiver()
    settings.SLACK_WEBHOOK_URL = fake.url("/services/T000/B000/XXXX")
    yield fake
    fake.close()


@pytest.fixture
def configure(api):
    """configure(band, *actions): seed 000's thresholds with these actions on `band`, saved through the API."""

    def save(band: str, *actions: dict) -> None:
        thresholds = threshold_preset_json("seed000")
        for stage in thresholds["stages"]:
            if stage["stage"] == band:
                stage["actions"] = list(actions)
        response = api.put(MODEL, {"thresholds": thresholds}, format="json")
        assert response.status_code == 200, response.content

    return save


def to_mql(api, capture, lead):
    """45 + demo_requested 25 + pricing_page_viewed 10 = 80: up from warm into mql."""
    return track(api, capture, lead, "demo_requested", "pricing_page_viewed")


def action_results(lead) -> list[list[str]]:
    return [activity.data["results"] for activity in LeadActivity.objects.filter(lead=lead, type=ActivityType.BAND_ACTIONS).order_by("id")]


# Each kind of action


def test_notify_emails_the_recipients(api, capture, configure, mailoutbox):
    configure("mql", {"type": "notify", "recipients": ["sales@acme.io", "ops@acme.io"]})
    lead = create_lead(api, capture, name="Jane Roe", **FIT)
    assert mailoutbox == []  # warm has no actions

    to_mql(api, capture, lead)

    [mail] = mailoutbox
    assert mail.to == ["sales@acme.io", "ops@acme.io"]
    assert mail.subject == "Jane Roe is now MQL"
    assert "Jane Roe (Acme) is now MQL: score 45 → 80." in mail.body
    assert f"/leads/?lead={lead.pk}" in mail.body
    assert action_results(lead) == [["notify: emailed sales@acme.io, ops@acme.io"]]


def test_create_task_gives_the_owner_a_task_due_as_configured(api, api_as, capture, configure):
    owner = api_as(Role.SALES_REP).user
    configure("mql", {"type": "create_task", "task": "Call within 2 days", "dueIn": "2d"})
    lead = create_lead(api, capture, assignedTo=owner.pk, **FIT)

    before = timezone.now()
    to_mql(api, capture, lead)

    task = Task.objects.get()
    assert (task.lead, task.title, task.assignee, task.status, task.source) == (lead, "Call within 2 days", owner, "open", "band:mql")
    assert before + timedelta(days=2) <= task.due_at <= timezone.now() + timedelta(days=2)
    assert task.workspace == lead.workspace


def test_assign_gives_an_unowned_lead_to_the_sales_rep_with_fewest_leads_here(api, workspace, capture, configure):
    busy = member(workspace, role=Role.SALES_REP).user
    free_here = member(workspace, role=Role.SALES_REP).user
    member(workspace, role=Role.MARKETER)  # no leads, but not a Sales Rep
    gone = member(workspace, role=Role.SALES_REP).user  # no leads, but deactivated
    gone.is_active = False
    gone.save()
    for _ in range(2):
        make_lead(workspace, owner=busy)
    make_lead(workspace, owner=free_here)
    elsewhere = WorkspaceFactory()
    member(elsewhere, role=Role.SALES_REP, user=free_here)
    for _ in range(3):
        make_lead(elsewhere, owner=free_here)  # another workspace's leads are not this one's load
    configure(
        "mql",
        {"type": "assign", "rule": "round_robin"},
        {"type": "create_task", "task": "Introduce yourself", "assignee": "owner"},
    )
    lead = create_lead(api, capture, **FIT)

    to_mql(api, capture, lead)

    lead.refresh_from_db()
    assert lead.owner == free_here
    assert Task.objects.get(lead=lead).assignee == free_here  # the task goes to the owner just assigned
    assert action_results(lead) == [[f"assign: owner {free_here.email}", "create_task: task 'Introduce yourself'"]]
    assigned = LeadActivity.objects.get(lead=lead, type=ActivityType.ASSIGNED)
    assert assigned.actor is None


def test_assign_keeps_an_owned_lead_with_its_owner(api, api_as, capture, configure):
    owner = api_as(Role.MARKETER).user
    member(api.workspace, role=Role.SALES_REP)
    configure("mql", {"type": "assign"})
    lead = create_lead(api, capture, assignedTo=owner.pk, **FIT)

    to_mql(api, capture, lead)

    lead.refresh_from_db()
    assert lead.owner == owner


def test_tag_adds_the_tags(api, capture, configure):
    configure("mql", {"type": "tag", "tags": ["mql", "call-now"]})
    lead = create_lead(api, capture, tags=["webinar"], **FIT)

    to_mql(api, capture, lead)

    assert api.get(f"/api/v1/leads/{lead.pk}").json()["tags"] == ["call-now", "mql", "webinar"]


def test_slack_posts_the_crossing_to_the_channel(api, capture, configure, slack):
    configure("mql", {"type": "slack", "channel": "#new-mqls"})
    lead = create_lead(api, capture, name="Jane Roe", **FIT)

    to_mql(api, capture, lead)

    [post] = slack.requests
    assert post.path == "/services/T000/B000/XXXX"
    assert post.json()["channel"] == "#new-mqls"
    assert post.json()["text"].startswith("Jane Roe (Acme) is now MQL: score 45 → 80.")
    assert action_results(lead) == [["slack: posted to Slack #new-mqls"]]


def test_a_slack_action_may_name_its_own_webhook_url(api, capture, configure):
    hook = Receiver()
    try:
        configure("mql", {"type": "slack", "channel": "#new-mqls", "webhookUrl": hook.url()})
        lead = create_lead(api, capture, **FIT)
        to_mql(api, capture, lead)
        assert len(hook.requests) == 1
    finally:
        hook.close()


def test_a_failing_slack_webhook_is_recorded_and_the_other_actions_still_run(api, capture, configure, slack, mailoutbox):
    slack.status = 500
    configure(
        "mql",
        {"type": "slack", "channel": "#new-mqls"},
        {"type": "notify", "recipients": ["sales@acme.io"]},
        {"type": "tag", "tags": ["mql"]},
    )
    lead = create_lead(api, capture, **FIT)

    to_mql(api, capture, lead)

    assert len(slack.requests) == 1
    [results] = action_results(lead)
    assert results[0].startswith("slack: failed (HTTPError: 500 Server Error")
    assert results[1:] == ["notify: emailed sales@acme.io", "tag: tagged mql"]
    assert len(mailoutbox) == 1
    assert api.get(f"/api/v1/leads/{lead.pk}").json()["tags"] == ["mql"]
    lead.refresh_from_db()
    assert lead.score_band == "mql"


def test_an_action_without_somewhere_to_go_is_skipped(api, capture, configure, settings):
    settings.SLACK_WEBHOOK_URL = ""
    configure("mql", {"type": "slack", "channel": "#new-mqls"}, {"type": "sync_crm"}, {"type": "tag", "tags": ["mql"]})
    lead = create_lead(api, capture, **FIT)

    to_mql(api, capture, lead)

    [results] = action_results(lead)
    assert results[0].startswith("slack: skipped: no Slack webhook configured")
    assert results[1:] == ["sync_crm: skipped: sync_crm is not available yet", "tag: tagged mql"]


# Once, and only on the way up


def test_actions_never_run_twice_for_one_crossing(api, api_as, capture, configure, mailoutbox):
    owner = api_as(Role.SALES_REP).user
    configure("mql", {"type": "notify", "recipients": ["sales@acme.io"]}, {"type": "create_task", "task": "Call"})
    lead = create_lead(api, capture, assignedTo=owner.pk, **FIT)
    to_mql(api, capture, lead)
    change = ScoreChange.objects.get(lead=lead, threshold_crossed="mql")
    assert change.actions_started_at is not None

    assert band_actions_run(change_id=change.pk) is None
    run_band_actions.delay(change.pk)  # a redelivered task message

    assert len(mailoutbox) == 1
    assert Task.objects.count() == 1
    assert len(action_results(lead)) == 1


def test_activity_inside_the_band_runs_no_actions(api, capture, configure, mailoutbox):
    configure("mql", {"type": "notify", "recipients": ["sales@acme.io"]})
    lead = to_mql(api, capture, create_lead(api, capture, **FIT))

    track(api, capture, lead, "email_opened", "email_clicked")

    assert (lead.score, lead.score_band) == (87, "mql")
    assert len(mailoutbox) == 1


def test_falling_back_into_a_band_records_the_crossing_but_runs_no_actions(api, capture, configure, mailoutbox):
    configure("hot", {"type": "notify", "recipients": ["sales@acme.io"]}, {"type": "tag", "tags": ["hot"]})
    lead = create_lead(api, capture, **FIT)
    lead = track(api, capture, lead, "demo_requested")  # 70: up into hot
    assert (lead.score_band, len(mailoutbox)) == ("hot", 1)
    lead = track(api, capture, lead, "pricing_page_viewed")  # 80: up into mql, which has no actions

    lead = patch_lead(api, capture, lead, title="")  # 60: back down into hot

    assert (lead.score, lead.score_band) == (60, "hot")
    fall = ScoreChange.objects.filter(lead=lead).first()
    assert (fall.previous_band, fall.new_band, fall.threshold_crossed) == ("mql", "hot", "hot")
    assert len(mailoutbox) == 1
    assert len(action_results(lead)) == 1
    band_actions_run(change_id=fall.pk)  # even a task run for the fall does nothing
    assert len(mailoutbox) == 1
    assert len(action_results(lead)) == 1
    assert Lead.objects.get(pk=lead.pk).tags.count() == 1


def test_a_band_without_actions_records_no_action_run(api, capture):
    lead = to_mql(api, capture, create_lead(api, capture, **FIT))

    assert lead.score_band == "mql"
    assert action_results(lead) == []
    assert list(ScoreChange.objects.filter(lead=lead).values_list("new_score", "threshold_crossed")) == [(80, "mql"), (FIT_SCORE, "warm")]
