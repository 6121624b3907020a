"""Segment automations (seed 000's setAutomation): onEnter / onExit actions run once per enter/exit event, after
the change commits; Slack is a real HTTP receiver on 127.0.0.1, email lands in django.core.mail.outbox."""

import copy
import threading

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.utils import timezone

from leads.models import ActivityType, Lead, LeadActivity
from leads.segments.actions import MAX_ACTIONS, segment_event_automations_run, validate_automation
from leads.segments.models import SegmentEvent, SegmentEventKind
from leads.segments.services import lead_segments_refresh, leads_reevaluate, segment_create, segment_update
from leads.segments.tasks import run_segment_automations
from leads.services import lead_delete, lead_tags_change, lead_update
from tests.leads.factories import make_lead
from tests.leads.segments.factories import SEED_AUTOMATION, FakeSlack, committed, enterprise_lead, make_segment, member_ids, track

pytestmark = pytest.mark.django_db

# Enterprise leads that asked for a demo and are no competitor.
ENTERPRISE = {
    "all": [{"field": "events.demo_requested", "operator": "exists"}, {"field": "score", "operator": "gte", "value": 50}],
    "none": [{"field": "tags", "operator": "contains", "value": "competitor"}],
}
IN_SALES = {"all": [{"field": "department", "operator": "eq", "value": "Sales"}]}


@pytest.fixture
def slack():
    fake = FakeSlack()
    yield fake
    fake.close()


def seed_automation(webhook_url: str) -> dict:
    automation = copy.deepcopy(SEED_AUTOMATION)
    automation["onEnter"][2]["webhookUrl"] = webhook_url
    return automation


def tags_of(target) -> set[str]:
    return set(target.tags.values_list("name", flat=True))


def segment_actions(target) -> list[dict]:
    return [activity.data for activity in LeadActivity.objects.filter(lead=target, type=ActivityType.SEGMENT_ACTIONS).order_by("id")]


def test_entering_tags_notifies_slack_and_requests_the_sequence_and_leaving_undoes_it(workspace, api, slack):
    ada = enterprise_lead(workspace, "Ada Lovelace")
    segment = make_segment(workspace, ENTERPRISE, name="High-Intent Enterprise Leads", automation=seed_automation(slack.url))

    track(api, ada, "demo_requested")

    assert member_ids(segment) == {ada.pk}
    assert slack.texts == ["New enterprise lead: Ada Lovelace from Ada Lovelace Corp"]
    assert slack.posts[0].content_type == "application/json"
    assert slack.posts[0].path == "/services/T000/B000/XXXX"
    assert "enterprise-prospect" in tags_of(ada)
    entered = SegmentEvent.objects.get(segment=segment, kind=SegmentEventKind.ENTERED)
    assert entered.automations_started_at is not None
    assert segment_actions(ada) == [
        {
            "segment": "High-Intent Enterprise Leads",
            "segmentId": str(segment.pk),
            "event": "entered",
            "results": [
                "enroll_sequence: enroll sequence 'enterprise_nurture' requested",
                "tag: tagged enterprise-prospect",
                "notify: posted to Slack",
            ],
        }
    ]

    with committed():
        lead_tags_change(lead=ada, actor=None, add=["competitor"])

    assert member_ids(segment) == set()
    assert tags_of(ada) == {"competitor"}
    assert len(slack.posts) == 1  # onExit notifies nobody
    assert segment_actions(ada)[1] == {
        "segment": "High-Intent Enterprise Leads",
        "segmentId": str(segment.pk),
        "event": "exited",
        "results": ["untag: removed enterprise-prospect", "remove_from_sequence: remove from sequence 'enterprise_nurture' requested"],
    }
    assert SegmentEvent.objects.get(segment=segment, kind=SegmentEventKind.EXITED).automations_started_at is not None


def test_the_slack_message_falls_back_to_the_configured_webhook(workspace, api, slack, settings):
    settings.SLACK_WEBHOOK_URL = slack.url
    target = enterprise_lead(workspace, "Grace Hopper")
    make_segment(
        workspace,
        ENTERPRISE,
        automation={"onEnter": [{"action": "notify", "message": "{{lead.name}} ({{lead.company.name}}) asked for a demo"}]},
    )

    track(api, target, "demo_requested")

    assert slack.texts == ["Grace Hopper (Grace Hopper Corp) asked for a demo"]


def test_without_any_slack_webhook_the_notification_is_skipped_and_said_so(workspace, api, settings):
    settings.SLACK_WEBHOOK_URL = ""
    target = enterprise_lead(workspace, "No Hook")
    make_segment(workspace, ENTERPRISE, automation={"onEnter": [{"action": "notify", "message": "{{lead.name}}"}]})

    track(api, target, "demo_requested")

    [result] = segment_actions(target)[0]["results"]
    assert result.startswith("notify: skipped: no Slack webhook configured")


def test_an_email_notification_goes_to_its_recipients(workspace, api):
    target = enterprise_lead(workspace, "Alan Turing")
    make_segment(
        workspace,
        ENTERPRISE,
        name="Demo requests",
        automation={
            "onEnter": [
                {
                    "action": "notify",
                    "channel": "email",
                    "recipients": ["sales@example.com"],
                    "message": "{{lead.name}} from {{lead.company.name}}",
                }
            ]
        },
    )

    track(api, target, "demo_requested")

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert (message.subject, message.to) == ("Segment Demo requests: Alan Turing", ["sales@example.com"])
    assert message.body == "Alan Turing from Alan Turing Corp"
    assert segment_actions(target)[0]["results"] == ["notify: emailed sales@example.com"]


def test_a_failing_slack_is_recorded_as_failed_and_the_other_actions_still_run(workspace, api):
    failing = FakeSlack(status=500)
    try:
        target = enterprise_lead(workspace, "Fay Ling")
        make_segment(
            workspace,
            ENTERPRISE,
            automation={
                "onEnter": [
                    {"action": "notify", "channel": "slack", "webhookUrl": failing.url, "message": "{{lead.name}}"},
                    {"action": "tag", "tags": ["enterprise-prospect"]},
                ]
            },
        )

        track(api, target, "demo_requested")
    finally:
        failing.close()

    assert failing.texts == ["Fay Ling"]  # it was tried once
    notify, tag = segment_actions(target)[0]["results"]
    assert notify.startswith("notify: failed (HTTPError: 500")
    assert tag == "tag: tagged enterprise-prospect"
    assert "enterprise-prospect" in tags_of(target)


def test_baselines_fire_no_automations(workspace, api, slack):
    target = enterprise_lead(workspace, "Base Line", department="Sales")
    track(api, target, "demo_requested")
    automation = {"onEnter": [{"action": "tag", "tags": ["entered"]}, {"action": "notify", "webhookUrl": slack.url, "message": "x"}]}

    segment = make_segment(workspace, ENTERPRISE, automation=automation)
    assert member_ids(segment) == {target.pk}
    with committed():
        segment_update(segment=segment, criteria=IN_SALES)
    assert member_ids(segment) == {target.pk}
    with committed():
        segment_update(segment=segment, criteria={"all": [{"field": "department", "operator": "eq", "value": "Legal"}]})
    assert member_ids(segment) == set()

    assert slack.posts == []
    assert "entered" not in tags_of(target)
    assert segment_actions(target) == []
    assert not SegmentEvent.objects.filter(segment=segment).exists()


def test_an_event_runs_its_automations_once_even_when_the_task_runs_twice(workspace, slack, django_capture_on_commit_callbacks):
    target = enterprise_lead(workspace, "Twice Run", department="Engineering")
    segment = make_segment(
        workspace,
        IN_SALES,
        automation={
            "onEnter": [{"action": "tag", "tags": ["twice"]}, {"action": "notify", "webhookUrl": slack.url, "message": "{{lead.name}}"}]
        },
    )
    # The lead enters, but what its commit sets off is held back: the automations are not yet enqueued.
    with django_capture_on_commit_callbacks(execute=False):
        lead_update(lead=target, actor=None, data={"department": "Sales"})
        leads_reevaluate(workspace_id=workspace.pk, lead_ids=[target.pk], reason="fields changed")
    event = SegmentEvent.objects.get(segment=segment)
    assert event.automations_started_at is None

    # The same message delivered twice (acks_late redelivery, a retried enqueue).
    with committed():
        first = run_segment_automations.apply(args=[[event.pk]]).get()
        second = run_segment_automations.apply(args=[[event.pk]]).get()

    assert (first, second) == (1, 0)
    assert slack.texts == ["Twice Run"]
    assert len(segment_actions(target)) == 1
    assert "twice" in tags_of(target)
    event.refresh_from_db()
    assert event.automations_started_at is not None
    assert segment_event_automations_run(event_id=event.pk) is None


def test_a_lead_deleted_before_its_automations_run_gets_none(workspace, slack, django_capture_on_commit_callbacks):
    target = enterprise_lead(workspace, "Del Eted", department="Engineering")
    segment = make_segment(workspace, IN_SALES, automation={"onEnter": [{"action": "notify", "webhookUrl": slack.url, "message": "x"}]})
    with django_capture_on_commit_callbacks(execute=False):
        lead_update(lead=target, actor=None, data={"department": "Sales"})
        leads_reevaluate(workspace_id=workspace.pk, lead_ids=[target.pk], reason="fields changed")
    lead_delete(lead=target, actor=None)

    assert segment_event_automations_run(event_id=SegmentEvent.objects.get(segment=segment).pk) == []
    assert slack.posts == []


def test_events_recorded_without_automations_never_run_later_ones(workspace, slack):
    target = enterprise_lead(workspace, "Ear Lier", department="Engineering")
    segment = make_segment(workspace, IN_SALES)
    with committed():
        lead_update(lead=target, actor=None, data={"department": "Sales"})
    assert member_ids(segment) == {target.pk}

    with committed():
        segment_update(segment=segment, automation={"onEnter": [{"action": "notify", "webhookUrl": slack.url, "message": "x"}]})

    assert slack.posts == []
    assert segment_actions(target) == []


# Validation of automation objects


def test_validation_names_the_action_at_fault():
    cases = {
        "automation.onEnter[1].action": {"onEnter": [{"action": "tag", "tags": ["ok"]}, {"action": "webhook"}]},
        "automation.onEnter[0].action": {"onEnter": ["tag"]},
        "automation.onExit[2].tags": {
            "onExit": [{"action": "untag", "tags": ["a"]}, {"action": "untag", "tags": ["b"]}, {"action": "untag", "tags": [" "]}]
        },
        "automation.onEnter[0].recipients": {"onEnter": [{"action": "notify", "channel": "email", "message": "hi", "recipients": []}]},
        "automation.onExit[0].sequence": {"onExit": [{"action": "remove_from_sequence", "sequence": ""}]},
        "automation.onExit[1].recipients": {
            "onExit": [
                {"action": "notify", "channel": "email", "message": "hi", "recipients": ["ok@example.com"]},
                {"action": "notify", "channel": "email", "message": "hi", "recipients": ["ok@example.com", 7]},
            ]
        },
        "automation.onEnter[0].webhookUrl": {"onEnter": [{"action": "notify", "message": "hi", "webhookUrl": "ftp://example.com/hook"}]},
        "automation.onEnter": {"onEnter": [{"action": "tag", "tags": ["x"]}] * (MAX_ACTIONS + 1)},
        "automation": ["onEnter"],
    }
    for path, automation in cases.items():
        with pytest.raises(ValidationError) as raised:
            validate_automation(automation)
        assert list(raised.value.message_dict) == [path], automation


def test_validation_fills_in_missing_lists():
    assert validate_automation(None) == {"onEnter": [], "onExit": []}
    assert validate_automation({"onExit": [{"action": "untag", "tags": ["x"]}]}) == {
        "onEnter": [],
        "onExit": [{"action": "untag", "tags": ["x"]}],
    }
    assert validate_automation(SEED_AUTOMATION) == SEED_AUTOMATION


# PostgreSQL: two workers claiming one event


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_one_event_at_once_run_its_actions_once(workspace, slack):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serializes writers, so there is no race to lose")
    target = enterprise_lead(workspace, "Con Current", department="Engineering")
    segment = make_segment(workspace, IN_SALES, automation={"onEnter": [{"action": "notify", "webhookUrl": slack.url, "message": "x"}]})
    # An entered event whose automations have not started: the message is handed to two workers.
    event = SegmentEvent.objects.create(workspace=workspace, segment=segment, lead=target, kind=SegmentEventKind.ENTERED, reason="race")
    barrier = threading.Barrier(2)
    results = []

    def work():
        try:
            barrier.wait(timeout=30)
            results.append(segment_event_automations_run(event_id=event.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(results, key=lambda result: result is None) == [["notify: posted to Slack"], None]
    assert slack.texts == ["x"]


def test_automations_lost_with_the_broker_are_run_by_the_sweeper(workspace):
    from datetime import timedelta

    from leads.segments.models import SegmentEvent
    from leads.segments.tasks import sweep_segment_automations

    subject = make_lead(workspace, name="Swept Lead", email="swept@acme.io")
    segment = segment_create(
        workspace=workspace,
        name="Swept",
        criteria={"all": [{"field": "country", "operator": "eq", "value": "DE"}]},
        automation={"onEnter": [{"action": "tag", "tags": ["swept"]}]},
    )
    Lead.objects.filter(pk=subject.pk).update(country="DE")
    # The enter is recorded, but its automations are never sent (no on-commit hook runs here).
    lead_segments_refresh(workspace_id=workspace.pk, lead_ids=[subject.pk], reason="test")
    event = SegmentEvent.objects.get(segment=segment, lead=subject)
    assert event.automations_started_at is None
    SegmentEvent.objects.filter(pk=event.pk).update(at=timezone.now() - timedelta(minutes=5))

    assert sweep_segment_automations() == 1
    assert set(subject.tags.values_list("name", flat=True)) == {"swept"}
    assert sweep_segment_automations() == 0


def test_an_event_of_a_segment_without_automations_is_not_left_for_the_sweeper(workspace):
    from leads.segments.models import SegmentEvent

    subject = make_lead(workspace, name="Quiet Lead", email="quiet@acme.io")
    segment = segment_create(workspace=workspace, name="Quiet", criteria={"all": [{"field": "country", "operator": "eq", "value": "DE"}]})
    Lead.objects.filter(pk=subject.pk).update(country="DE")
    lead_segments_refresh(workspace_id=workspace.pk, lead_ids=[subject.pk], reason="test")

    assert SegmentEvent.objects.get(segment=segment, lead=subject).automations_started_at is not None
