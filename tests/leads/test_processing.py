"""What happens to a lead after capture: received → validated → deduplicated → ready, with retries,
failed jobs that ops can replay, and a sweeper that makes up for a broker that was down.

The hooks below are enrichment providers as a deployment would plug them in through
settings.LEAD_PROCESSING_HOOKS: the extension point, not our code.
"""

import json
import logging
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from integrations.models import WebhookSubmission
from integrations.tasks import purge_expired_submissions
from leads.models import ActivityType, FailedJob, Lead, LeadActivity
from leads.processing import TransientError
from leads.tasks import failed_job_replay, process_lead, sweep_pending_leads
from leadsmgr.celery import app as celery_app
from tests.integrations.factories import ingest_path, make_webhook

HOOKS = __name__


class Provider:
    """The state of a pretend enrichment provider the hooks call."""

    calls: list[str] = []
    failures_left = 0
    down = False


def record_enrichment(lead) -> None:
    Provider.calls.append(lead.processing_state)


def flaky_enrichment(lead) -> None:
    Provider.calls.append(lead.processing_state)
    if Provider.failures_left > 0:
        Provider.failures_left -= 1
        raise TransientError("provider timed out")


def enrichment_while_down(lead) -> None:
    Provider.calls.append(lead.processing_state)
    if Provider.down:
        raise TransientError("provider answered 503")


def broken_enrichment(lead) -> None:
    Provider.calls.append(lead.processing_state)
    raise ValueError("provider sent a payload we cannot read")


@pytest.fixture(autouse=True)
def provider():
    Provider.calls, Provider.failures_left, Provider.down = [], 0, False
    cache.clear()
    yield Provider
    cache.clear()


@pytest.fixture
def hooked(settings):
    def use(*names: str) -> None:
        settings.LEAD_PROCESSING_HOOKS = [f"{HOOKS}.{name}" for name in names]

    return use


def post_json(client, key, payload, **extra):
    return client.post(ingest_path(key), data=json.dumps(payload), content_type="application/json", **extra)


@pytest.fixture
def captured(client, workspace):
    """A lead as a webhook stores it: in state received, its processing not yet run."""
    _, key = make_webhook(workspace)
    response = post_json(client, key, {"name": "Jane Doe", "email": "jane@acme.com", "phone": "+1 415 555 0134"})
    assert response.status_code == 200
    lead = Lead.objects.get(pk=response.json()["leadId"])
    assert lead.processing_state == "received"
    return lead


def processed_activities(lead):
    return LeadActivity.objects.filter(lead=lead, type=ActivityType.PROCESSED)


def run(lead) -> None:
    """Hands the lead to the task as capture does after commit (tests run Celery eagerly)."""
    process_lead.delay(str(lead.pk))


# The happy path


def test_a_captured_lead_is_processed_to_ready_after_commit(client, workspace, hooked, django_capture_on_commit_callbacks):
    hooked("record_enrichment")
    _, key = make_webhook(workspace)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(client, key, {"name": "Jane", "email": "jane@gmail.com"})
        assert Lead.objects.get().processing_state == "received"  # nothing runs before the commit
    assert response.status_code == 200
    lead = Lead.objects.get()
    assert lead.processing_state == "ready"
    assert Provider.calls == ["validated"]  # enrichment runs between validation and deduplication
    activity = processed_activities(lead).get()
    assert activity.data["states"] == ["validated", "deduplicated", "scored", "ready"]
    assert lead.email_kind == "free"
    assert (lead.score, lead.score_band) == (0, "cold")


def test_processing_runs_the_steps_in_order(captured, hooked):
    hooked("record_enrichment")
    run(captured)
    captured.refresh_from_db()
    assert captured.processing_state == "ready"
    assert processed_activities(captured).get().data["states"] == ["validated", "deduplicated", "scored", "ready"]
    assert Provider.calls == ["validated"]


def test_without_hooks_a_lead_still_reaches_ready(captured, settings):
    settings.LEAD_PROCESSING_HOOKS = []
    run(captured)
    captured.refresh_from_db()
    assert captured.processing_state == "ready"


def test_processing_twice_is_a_no_op(captured, hooked):
    hooked("record_enrichment")
    run(captured)
    captured.refresh_from_db()
    ready_at = captured.processing_state_at
    run(captured)
    captured.refresh_from_db()
    assert captured.processing_state == "ready"
    assert captured.processing_state_at == ready_at
    assert processed_activities(captured).count() == 1
    assert Provider.calls == ["validated"]


def test_a_merge_that_changes_the_lead_processes_it_again(client, captured, hooked):
    hooked("record_enrichment")
    run(captured)
    _, key = make_webhook(captured.workspace)
    post_json(client, key, {"email": "jane@acme.com", "title": "CTO"})
    captured.refresh_from_db()
    assert captured.processing_state == "received"
    run(captured)
    captured.refresh_from_db()
    assert captured.processing_state == "ready"
    assert processed_activities(captured).count() == 2


def test_a_deleted_or_unknown_lead_is_left_alone(captured, hooked):
    hooked("record_enrichment")
    Lead.objects.filter(pk=captured.pk).update(deleted_at=timezone.now())
    run(captured)
    process_lead.delay("00000000-0000-0000-0000-000000000000")
    captured.refresh_from_db()
    assert captured.processing_state == "received"
    assert Provider.calls == []
    assert not FailedJob.objects.exists()


# Retries and failed jobs


def test_a_transient_failure_is_retried_until_it_passes(captured, hooked, provider):
    hooked("flaky_enrichment")
    provider.failures_left = 2
    run(captured)
    captured.refresh_from_db()
    assert captured.processing_state == "ready"
    assert len(Provider.calls) == 3
    assert processed_activities(captured).count() == 1
    assert not FailedJob.objects.exists()


def test_a_failure_that_never_passes_ends_in_a_failed_job_that_ops_can_replay(captured, hooked, provider, settings):
    hooked("enrichment_while_down")
    provider.down = True
    run(captured)

    attempts = settings.LEAD_PROCESSING_MAX_RETRIES + 1
    assert len(Provider.calls) == attempts
    job = FailedJob.objects.get()
    assert job.task_name == "leads.tasks.process_lead"
    assert job.lead == captured and job.workspace_id == captured.workspace_id
    assert job.args == [str(captured.pk)]
    assert job.error == "TransientError: provider answered 503"
    assert job.attempts == attempts
    assert job.replayed_at is None
    captured.refresh_from_db()
    assert captured.processing_state == "failed"
    assert not processed_activities(captured).exists()

    provider.down = False
    assert failed_job_replay(job=job) is True
    captured.refresh_from_db()
    assert captured.processing_state == "ready"
    assert processed_activities(captured).count() == 1
    job.refresh_from_db()
    assert job.replayed_at is not None
    assert FailedJob.objects.count() == 1

    assert failed_job_replay(job=job) is False  # a job is replayed once
    assert processed_activities(captured).count() == 1


def test_a_failed_lead_is_not_swept_again(captured, hooked, provider):
    hooked("enrichment_while_down")
    provider.down = True
    run(captured)
    calls = len(Provider.calls)
    assert sweep_pending_leads(stalled_seconds=0) == 0
    assert len(Provider.calls) == calls


def test_a_non_transient_error_is_not_retried(captured, hooked):
    hooked("broken_enrichment")
    run(captured)
    assert len(Provider.calls) == 1
    job = FailedJob.objects.get()
    assert job.attempts == 1
    assert job.error == "ValueError: provider sent a payload we cannot read"
    captured.refresh_from_db()
    assert captured.processing_state == "failed"


# The broker being down loses nothing


@contextmanager
def broker_down():
    """Celery publishing for real to a closed port. The app's cached producer pool is dropped on the
    way in and out (as Celery itself does after a fork) so the URL change takes effect and does not
    outlive the test."""
    conf = celery_app.conf
    assert process_lead.app is celery_app
    saved = conf.task_always_eager, conf.broker_url

    def drop_pools():
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    try:
        conf.task_always_eager = False
        conf.broker_url = "redis://127.0.0.1:1/0"
        drop_pools()
        yield
    finally:
        conf.task_always_eager, conf.broker_url = saved
        drop_pools()


def _submit_with_broker_down(client, workspace, caplog, django_capture_on_commit_callbacks):
    """Posts one submission while the broker is unreachable; returns (response, seconds the sender waited)."""
    _, key = make_webhook(workspace)
    with broker_down(), caplog.at_level(logging.WARNING, logger="leads.tasks"):
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            response = post_json(client, key, {"name": "Jane", "email": "jane@acme.com"})
        waited = time.monotonic() - started
    assert any("could not enqueue processing" in record.getMessage() for record in caplog.records), (
        "enqueueing did not fail: the broker was not down"
    )
    return response, waited


def test_with_the_broker_down_a_submission_is_stored_and_the_sweeper_processes_it_later(
    client, workspace, hooked, caplog, django_capture_on_commit_callbacks
):
    hooked("record_enrichment")
    response, _ = _submit_with_broker_down(client, workspace, caplog, django_capture_on_commit_callbacks)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "created"
    lead = Lead.objects.get()
    assert lead.processing_state == "received"
    assert Provider.calls == []

    assert sweep_pending_leads(stalled_seconds=0) == 1
    lead.refresh_from_db()
    assert lead.processing_state == "ready"
    assert Provider.calls == ["validated"]
    assert processed_activities(lead).count() == 1


def test_with_the_broker_down_the_sender_is_answered_within_5_seconds(client, workspace, caplog, django_capture_on_commit_callbacks):
    # Seed 003's target: a webhook is answered in under 5 s. Enqueueing runs on commit, inside the
    # request, so a broker that is down must fail fast rather than be waited for.
    response, waited = _submit_with_broker_down(client, workspace, caplog, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert waited < 5, f"the sender waited {waited:.1f} s for a broker that is down"


def test_the_sweeper_leaves_recent_and_finished_leads_alone(captured, hooked, settings):
    hooked("record_enrichment")
    assert sweep_pending_leads() == 0  # received a moment ago: not stalled yet
    assert Provider.calls == []
    Lead.objects.filter(pk=captured.pk).update(
        processing_state_at=timezone.now() - timedelta(seconds=settings.LEAD_PROCESSING_STALL_SECONDS + 1)
    )
    assert sweep_pending_leads() == 1
    captured.refresh_from_db()
    assert captured.processing_state == "ready"
    assert sweep_pending_leads(stalled_seconds=0) == 0


# Raw submissions are kept for the retention period, and at least a day


@pytest.mark.parametrize(
    "retention_days, kept_age, purged_age",
    [
        (30, timedelta(days=29), timedelta(days=31)),
        (0, timedelta(hours=23), timedelta(hours=25)),  # idempotency keys live at least 24 hours
    ],
)
def test_purge_deletes_submissions_past_retention_and_keeps_recent_ones(client, workspace, settings, retention_days, kept_age, purged_age):
    settings.WEBHOOK_SUBMISSION_RETENTION_DAYS = retention_days
    _, key = make_webhook(workspace)
    payload = {"name": "Jane", "email": "jane@acme.com"}
    for idempotency_key, age in (("recent", kept_age), ("old", purged_age), ("now", timedelta(0))):
        post_json(client, key, payload, HTTP_IDEMPOTENCY_KEY=idempotency_key)
        WebhookSubmission.objects.filter(idempotency_key=idempotency_key).update(received_at=timezone.now() - age)

    assert purge_expired_submissions() == 1
    assert sorted(WebhookSubmission.objects.values_list("idempotency_key", flat=True)) == ["now", "recent"]
    assert Lead.objects.count() == 1  # only the raw submissions go

    assert post_json(client, key, payload, HTTP_IDEMPOTENCY_KEY="recent")["Idempotent-Replayed"] == "true"
    again = post_json(client, key, payload, HTTP_IDEMPOTENCY_KEY="old")
    assert "Idempotent-Replayed" not in again
    assert WebhookSubmission.objects.count() == 3
