"""Coalesced enqueueing against a real Redis broker: a burst of requests sends one message."""

import time
import uuid

import pytest
import redis
from django.conf import settings

from integrations.tasks import capture_queued_submissions
from leadsmgr.celery import app as celery_app
from leadsmgr.queueing import coalesced_release, enqueue_coalesced

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="coalescing needs the shared cache and broker (set REDIS_URL)")


@pytest.fixture
def real_broker():
    """Publishes for real to Redis (tests run tasks eagerly otherwise) on a queue of this test's own."""
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.broker_url, conf.task_default_queue
    queue = f"test-coalesced-{uuid.uuid4().hex}"
    conf.task_always_eager, conf.broker_url, conf.task_default_queue = False, settings.REDIS_URL, queue
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        yield lambda: client.llen(queue)
    finally:
        client.delete(queue)
        conf.task_always_eager, conf.broker_url, conf.task_default_queue = saved
        celery_app._pool = None
        celery_app.amqp._producer_pool = None


def test_a_burst_sends_one_message_until_the_task_releases_the_flag(real_broker):
    waiting = real_broker
    flag = f"test:{uuid.uuid4()}"
    sent = [enqueue_coalesced(capture_queued_submissions, flag=flag, args=("ws",)) for _ in range(50)]

    assert sent.count(True) == 1
    assert waiting() == 1

    coalesced_release(flag)  # what the task does before it reads its work
    assert enqueue_coalesced(capture_queued_submissions, flag=flag, args=("ws",)) is True
    assert waiting() == 2


def test_other_flags_are_not_held_back(real_broker):
    waiting = real_broker
    enqueue_coalesced(capture_queued_submissions, flag=f"a:{uuid.uuid4()}", args=("a",))
    enqueue_coalesced(capture_queued_submissions, flag=f"b:{uuid.uuid4()}", args=("b",))
    assert waiting() == 2


def test_a_held_flag_expires_so_a_lost_message_holds_nothing_back_for_long(real_broker):
    waiting = real_broker
    flag = f"test:{uuid.uuid4()}"
    enqueue_coalesced(capture_queued_submissions, flag=flag, args=("ws",), hold_seconds=1)
    assert enqueue_coalesced(capture_queued_submissions, flag=flag, args=("ws",)) is False
    time.sleep(1.2)
    assert enqueue_coalesced(capture_queued_submissions, flag=flag, args=("ws",)) is True
    assert waiting() == 2
