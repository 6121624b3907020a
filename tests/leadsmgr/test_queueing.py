"""Coalesced enqueueing against a real Redis broker: a burst of requests sends one message."""

import time
import uuid

import pytest
from django.conf import settings

from integrations.services import queued_capture_flag
from integrations.tasks import capture_queued_submissions
from leadsmgr.queueing import enqueue_coalesced
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
    assert enqueue_coalesced(capture_queued_submissions, flag=flag, args=(workspace_id,)) is True
    assert waiting() == 2


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
