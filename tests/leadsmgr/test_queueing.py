"""Coalesced enqueueing against a real Redis broker: a burst of requests sends one message."""

import json
import threading
import time
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.test import Client

from integrations.models import ResponseMode, SubmissionOutcome, WebhookSubmission
from integrations.services import queued_capture_flag
from integrations.tasks import capture_queued_submissions
from leads.models import Lead
from leadsmgr import queueing
from leadsmgr.queueing import COALESCE_WINDOW_SECONDS, drain_coalesced, enqueue_coalesced
from tests.integrations.factories import ingest_path, make_webhook
from tests.leads.tracking.factories import real_broker

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="coalescing needs the shared cache and broker (set REDIS_URL)")


@pytest.fixture
def waiting():
    with real_broker() as count:
        yield count


def test_a_burst_sends_one_message_until_the_task_releases_the_flag(waiting, workspace):
    workspace_id = str(workspace.pk)
    flag = queued_capture_flag(workspace_id)
    sent = [enqueue_coalesced(capture_queued_submissions, flag=flag, args=(workspace_id,)) for _ in range(50)]

    assert sent.count(True) == 1
    assert waiting() == 1

    capture_queued_submissions(workspace_id)  # the task releases the flag before it reads its work
    time.sleep(COALESCE_WINDOW_SECONDS)  # this process saw the flag held: it asks Redis again after the window
    assert enqueue_coalesced(capture_queued_submissions, flag=flag, args=(workspace_id,)) is True
    assert waiting() == 2


def test_within_the_window_a_process_does_not_ask_redis_again(waiting, workspace):
    flag = f"test:{uuid.uuid4()}"
    assert enqueue_coalesced(capture_queued_submissions, flag=flag, args=("ws",)) is True
    cache.delete(f"coalesced:{flag}")  # released by a task elsewhere: only Redis knows
    assert enqueue_coalesced(capture_queued_submissions, flag=flag, args=("ws",)) is False
    time.sleep(COALESCE_WINDOW_SECONDS)
    assert enqueue_coalesced(capture_queued_submissions, flag=flag, args=("ws",)) is True
    assert waiting() == 2


def test_a_drain_reads_again_once_the_window_has_passed_since_its_release(waiting):
    flag = f"test:{uuid.uuid4()}"
    enqueue_coalesced(capture_queued_submissions, flag=flag, args=("ws",))
    reads: list[float] = []
    skipped: list[bool] = []

    def drain():
        reads.append(time.monotonic())
        if len(reads) == 1:
            # A request storing work now, after the release, skips sending: the drain must read again.
            skipped.append(enqueue_coalesced(capture_queued_submissions, flag=flag, args=("ws",)) is False)
        return 1, True

    released = time.monotonic()
    assert drain_coalesced(capture_queued_submissions, flag=flag, args=("ws",), drain=drain) == 2
    assert skipped == [True]
    assert waiting() == 1
    assert reads[1] - released >= COALESCE_WINDOW_SECONDS


def test_work_left_over_goes_to_a_new_message_instead_of_a_second_drain(waiting):
    flag = f"test:{uuid.uuid4()}"
    enqueue_coalesced(capture_queued_submissions, flag=flag, args=("ws",))
    calls = []

    def drain():
        calls.append(1)
        return 5, False  # bounded work done, more waiting

    assert drain_coalesced(capture_queued_submissions, flag=flag, args=("ws",), drain=drain) == 5
    assert len(calls) == 1  # no second drain beside the task that takes over
    assert waiting() == 2


@pytest.mark.django_db(transaction=True)
def test_a_submission_queued_while_the_drain_runs_is_captured_by_that_drain(waiting, workspace, monkeypatch):
    """End to end: the worker's task releases the flag and finds nothing; a webhook submission then
    arrives, and its request sends no message (it saw the flag held); the same task captures it."""
    monkeypatch.setattr(queueing, "COALESCE_WINDOW_SECONDS", 1.0)  # room for the request below
    _, key = make_webhook(workspace, name="Ads form", response_mode=ResponseMode.QUEUED)
    workspace_id = str(workspace.pk)
    flag = queued_capture_flag(workspace_id)
    assert enqueue_coalesced(capture_queued_submissions, flag=flag, args=(workspace_id,)) is True

    def worker():
        try:
            capture_queued_submissions(workspace_id)
        finally:
            connections.close_all()

    task = threading.Thread(target=worker)
    task.start()
    while cache.get(f"coalesced:{flag}") is not None:  # the task has released the flag
        time.sleep(0.01)

    response = Client().post(ingest_path(key), data=json.dumps({"email": "late@acme.com"}), content_type="application/json")
    assert response.status_code == 202
    assert waiting() == 1  # no new message: the request saw the flag held a moment ago
    task.join(timeout=10)

    submission = WebhookSubmission.objects.get(pk=response.json()["submissionId"])
    assert submission.outcome == SubmissionOutcome.CREATED
    assert Lead.objects.get(workspace=workspace).email == "late@acme.com"


def test_other_flags_are_not_held_back(waiting):
    enqueue_coalesced(capture_queued_submissions, flag=f"a:{uuid.uuid4()}", args=("a",))
    enqueue_coalesced(capture_queued_submissions, flag=f"b:{uuid.uuid4()}", args=("b",))
    assert waiting() == 2


def test_a_held_flag_expires_so_a_lost_message_holds_nothing_back_for_long(waiting):
    flag = f"test:{uuid.uuid4()}"
    enqueue_coalesced(capture_queued_submissions, flag=flag, args=("ws",), hold_seconds=1)
    assert enqueue_coalesced(capture_queued_submissions, flag=flag, args=("ws",)) is False
    time.sleep(1.2)
    assert enqueue_coalesced(capture_queued_submissions, flag=flag, args=("ws",)) is True
    assert waiting() == 2
