"""Outbound webhooks: our events POSTed, signed, to a partner's URL, retried until they land.

The receiver is a real HTTP server on 127.0.0.1 (a thread in this process) that records what it is
sent and answers the statuses a test asks for; the code under test calls it with `requests`.
"""

import json
import logging
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from django.conf import settings
from django.contrib import admin
from django.db import connections, transaction
from django.urls import reverse
from django.utils import timezone

from integrations import outbound
from integrations.models import DeliveryStatus, OutboundDelivery, OutboundWebhook
from integrations.outbound import deliver, outbound_event_publish, outbound_webhook_create, verify_signature
from integrations.tasks import deliver_due_outbound, deliver_outbound
from leadsmgr.celery import app as celery_app
from workspaces.models import Role, User

URL = "/api/v1/outbound-webhooks"
SCORE_CHANGED = "lead.score_changed"
SCORE_PAYLOAD = {"leadId": "8d3f0c1e-0000-4000-8000-000000000001", "previousScore": 40, "newScore": 75, "thresholdCrossed": "hot"}


# A fake receiver speaking HTTP


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """Records every POST; answers the queued statuses in order, then `default_status`."""

    def __init__(self, port: int = 0):
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.default_status = 200
        self.delay = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append(Received(self.path, dict(self.headers), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
                if receiver.delay:
                    time.sleep(receiver.delay)
                answer = f"answered {status}".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hooks/leads") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def answer(self, *statuses: int) -> None:
        self.statuses.extend(statuses)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    fake = Receiver()
    yield fake
    fake.close()


def closed_port() -> int:
    """A port nothing listens on: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_outbound(workspace, url: str, **settings_data) -> tuple[OutboundWebhook, str]:
    settings_data.setdefault("name", "CRM sync")
    return outbound_webhook_create(workspace=workspace, url=url, **settings_data)


@pytest.fixture
def publish(workspace, django_capture_on_commit_callbacks):
    """Publishes as a feature does, inside its transaction; delivery runs after the commit."""

    def run(event_type: str = SCORE_CHANGED, payload: dict | None = None, of_workspace=None) -> int:
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            return outbound_event_publish(workspace=of_workspace or workspace, event_type=event_type, payload=payload or SCORE_PAYLOAD)

    return run


def make_due(delivery: OutboundDelivery) -> None:
    """As if the delivery's wait had passed."""
    OutboundDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def retry_after_attempt(delivery: OutboundDelivery) -> float:
    """Runs the beat task on the now-due delivery; returns how long it then waits (seconds)."""
    make_due(delivery)
    started = timezone.now()
    assert deliver_due_outbound() == 1
    delivery.refresh_from_db()
    return (delivery.next_attempt_at - started).total_seconds()


# Signing


def test_the_signature_verifies_with_the_webhooks_secret_and_fails_with_another(workspace, receiver, publish):
    _, secret = make_outbound(workspace, receiver.url())
    assert secret.startswith("whsec_") and len(secret) > 30
    assert publish() == 1

    [request] = receiver.requests
    timestamp, signature = request.headers["X-Leadsmgr-Timestamp"], request.headers["X-Leadsmgr-Signature"]
    assert signature.startswith("sha256=") and len(signature) == len("sha256=") + 64
    assert verify_signature(secret, timestamp, request.body, signature)
    assert verify_signature(secret, int(timestamp), request.body.decode(), signature)
    assert verify_signature(secret, timestamp, request.body, signature, tolerance_seconds=300)

    _, other_secret = make_outbound(workspace, receiver.url(), name="Other")
    assert not verify_signature(other_secret, timestamp, request.body, signature)
    assert not verify_signature(secret, timestamp, request.body.replace(b"75", b"99"), signature)
    assert not verify_signature(secret, str(int(timestamp) + 1), request.body, signature)
    assert not verify_signature(secret, timestamp, request.body, "")
    assert not verify_signature(secret, "yesterday", request.body, signature)


def test_a_signature_older_than_the_tolerance_fails():
    body = b'{"id":"x"}'
    timestamp = int(time.time()) - 600
    header = outbound.sign("whsec_secret", timestamp, body)
    assert verify_signature("whsec_secret", timestamp, body, header)
    assert not verify_signature("whsec_secret", timestamp, body, header, tolerance_seconds=300)
    assert verify_signature("whsec_secret", timestamp, body, f"sha256=deadbeef, {header}")


def test_the_request_carries_the_documented_headers_and_an_event_envelope(workspace, receiver, publish):
    webhook, _ = make_outbound(workspace, receiver.url("/in/leadsmgr?team=7"))
    before = int(time.time())
    publish()

    [request] = receiver.requests
    delivery = OutboundDelivery.objects.get()
    assert request.path == "/in/leadsmgr?team=7"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "LeadsManager-Webhooks/1"
    assert request.headers["X-Leadsmgr-Event"] == SCORE_CHANGED
    assert request.headers["X-Leadsmgr-Delivery"] == str(delivery.event_id)
    assert before <= int(request.headers["X-Leadsmgr-Timestamp"]) <= int(time.time())
    assert request.json() == {
        "id": str(delivery.event_id),
        "type": SCORE_CHANGED,
        "createdAt": delivery.created_at.isoformat().replace("+00:00", "Z"),
        "workspaceId": str(workspace.pk),
        "data": SCORE_PAYLOAD,
    }
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == (DeliveryStatus.DELIVERED, 1, 200)
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None
    webhook.refresh_from_db()
    assert webhook.last_status == "200" and webhook.last_delivery_at is not None


def test_ids_times_and_decimals_in_a_payload_are_sent_as_json_strings(workspace, receiver, publish):
    make_outbound(workspace, receiver.url())
    lead_id, changed_at = uuid.uuid4(), datetime(2026, 11, 30, 9, 15, tzinfo=UTC)
    publish(payload={"leadId": lead_id, "changedAt": changed_at, "newScore": Decimal("72.5")})
    [request] = receiver.requests
    assert request.json()["data"] == {"leadId": str(lead_id), "changedAt": "2026-11-30T09:15:00Z", "newScore": "72.5"}


# After commit, once


def test_nothing_is_sent_before_the_commit_and_the_delivery_goes_out_after_it(workspace, receiver, django_capture_on_commit_callbacks):
    make_outbound(workspace, receiver.url())
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            assert outbound_event_publish(workspace=workspace, event_type=SCORE_CHANGED, payload=SCORE_PAYLOAD) == 1
            assert OutboundDelivery.objects.get().status == DeliveryStatus.PENDING
        assert receiver.requests == []
    assert len(receiver.requests) == 1
    assert OutboundDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_a_rolled_back_change_publishes_nothing(workspace, receiver, django_capture_on_commit_callbacks):
    make_outbound(workspace, receiver.url())
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        outbound_event_publish(workspace=workspace, event_type=SCORE_CHANGED, payload=SCORE_PAYLOAD)
        raise RuntimeError("the score change failed")
    assert not OutboundDelivery.objects.exists()
    assert deliver_due_outbound() == 0
    assert receiver.requests == []


def test_a_repeated_task_sends_a_delivery_once(workspace, receiver, publish):
    make_outbound(workspace, receiver.url())
    publish()
    delivery = OutboundDelivery.objects.get()
    assert deliver_outbound.delay(delivery.pk).get() is None
    assert deliver(delivery.pk) is None
    assert deliver_due_outbound() == 0
    assert len(receiver.requests) == 1


def test_publishing_an_unknown_event_type_is_a_programming_error(workspace, receiver):
    make_outbound(workspace, receiver.url())
    with pytest.raises(ValueError, match=r"lead\.scored"):
        outbound_event_publish(workspace=workspace, event_type="lead.scored", payload={})
    assert not OutboundDelivery.objects.exists()


# Retries


def test_a_500_is_retried_with_growing_waits_and_the_beat_task_delivers_once_it_answers_200(workspace, receiver, publish):
    webhook, _ = make_outbound(workspace, receiver.url())
    receiver.answer(500, 500, 500)
    started = timezone.now()
    publish()

    delivery = OutboundDelivery.objects.get()
    first_wait = (delivery.next_attempt_at - started).total_seconds()
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == (DeliveryStatus.PENDING, 1, 500)
    assert delivery.last_error == "HTTP 500: answered 500"
    assert deliver_due_outbound() == 0  # not due yet: nothing is sent early
    assert len(receiver.requests) == 1

    second_wait = retry_after_attempt(delivery)
    third_wait = retry_after_attempt(delivery)
    assert 30 <= first_wait <= 37 and 120 <= second_wait <= 145 and 600 <= third_wait <= 721
    assert delivery.attempts == 3 and delivery.status == DeliveryStatus.PENDING

    make_due(delivery)
    assert deliver_due_outbound() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_response_code, delivery.last_error) == (DeliveryStatus.DELIVERED, 4, 200, "")
    assert len(receiver.requests) == 4
    assert len({request.headers["X-Leadsmgr-Delivery"] for request in receiver.requests}) == 1
    assert len({request.body for request in receiver.requests}) == 1
    webhook.refresh_from_db()
    assert webhook.last_status == "200" and webhook.is_active


def test_a_closed_port_is_retried_and_delivered_once_the_receiver_is_up(workspace, publish):
    port = closed_port()
    webhook, secret = make_outbound(workspace, f"http://127.0.0.1:{port}/hook")
    publish()

    delivery = OutboundDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == (DeliveryStatus.PENDING, 1, None)
    assert delivery.last_error.startswith("Connection error")
    webhook.refresh_from_db()
    assert webhook.last_status == "connection_error"
    first_wait = (delivery.next_attempt_at - delivery.created_at).total_seconds()
    second_wait = retry_after_attempt(delivery)
    assert 30 <= first_wait < second_wait and delivery.attempts == 2

    receiver = Receiver(port=port)
    try:
        make_due(delivery)
        assert deliver_due_outbound() == 1
    finally:
        receiver.close()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 3)
    [request] = receiver.requests
    assert verify_signature(secret, request.headers["X-Leadsmgr-Timestamp"], request.body, request.headers["X-Leadsmgr-Signature"])


def test_a_receiver_slower_than_the_read_timeout_is_retried(workspace, receiver, publish, monkeypatch):
    monkeypatch.setattr(outbound, "READ_TIMEOUT_SECONDS", 0.3)
    webhook, _ = make_outbound(workspace, receiver.url())
    receiver.delay = 1.5
    publish()

    delivery = OutboundDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == (DeliveryStatus.PENDING, 1, None)
    assert delivery.last_error.startswith("Timeout")
    webhook.refresh_from_db()
    assert webhook.last_status == "timeout"

    receiver.delay = 0
    make_due(delivery)
    assert deliver_due_outbound() == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


def test_a_url_the_client_cannot_send_to_counts_as_a_failed_attempt(workspace, receiver, publish):
    webhook, _ = make_outbound(workspace, receiver.url())
    OutboundWebhook.objects.filter(pk=webhook.pk).update(url="http://exa mple.com/hook")  # as an old row might hold
    publish()
    delivery = OutboundDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == (DeliveryStatus.PENDING, 1, None)
    assert delivery.last_error.startswith("InvalidURL")
    webhook.refresh_from_db()
    assert webhook.last_status == "error"


def test_a_delivery_fails_for_good_after_the_maximum_attempts(workspace, receiver, publish):
    webhook, _ = make_outbound(workspace, receiver.url())
    receiver.default_status = 503
    publish()
    delivery = OutboundDelivery.objects.get()
    for _ in range(outbound.MAX_ATTEMPTS - 1):
        assert delivery.status == DeliveryStatus.PENDING
        make_due(delivery)
        assert deliver_due_outbound() == 1
        delivery.refresh_from_db()

    assert (delivery.status, delivery.attempts, delivery.last_response_code) == (DeliveryStatus.FAILED, 8, 503)
    assert delivery.next_attempt_at is None and delivery.delivered_at is None
    assert len(receiver.requests) == 8
    make_due(delivery)
    assert deliver_due_outbound() == 0
    assert len(receiver.requests) == 8
    webhook.refresh_from_db()
    assert webhook.is_active and webhook.last_status == "503"


def test_the_waits_follow_the_schedule_with_at_most_20_percent_jitter():
    waits = [outbound.retry_delay(attempts).total_seconds() for attempts in range(1, 8)]
    bases = [30, 120, 600, 3600, 6 * 3600, 6 * 3600, 6 * 3600]
    assert all(base <= wait <= base * 1.2 for wait, base in zip(waits, bases, strict=True))
    assert len({outbound.retry_delay(1) for _ in range(20)}) > 1


def test_a_410_deactivates_the_webhook_and_stops_its_deliveries(workspace, receiver, publish):
    webhook, _ = make_outbound(workspace, receiver.url())
    receiver.answer(410)
    publish()

    gone = OutboundDelivery.objects.get()
    assert (gone.status, gone.attempts, gone.last_response_code) == (DeliveryStatus.FAILED, 1, 410)
    assert "410" in gone.last_error and "deactivated" in gone.last_error
    webhook.refresh_from_db()
    assert webhook.is_active is False and webhook.last_status == "410"
    assert publish() == 0
    assert len(receiver.requests) == 1


def test_a_pending_delivery_of_a_webhook_deactivated_meanwhile_is_failed_unsent(workspace, receiver, publish):
    webhook, _ = make_outbound(workspace, f"http://127.0.0.1:{closed_port()}/")
    publish()
    delivery = OutboundDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    OutboundWebhook.objects.filter(pk=webhook.pk).update(is_active=False, url=receiver.url())

    make_due(delivery)
    assert deliver_due_outbound() == 0
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    assert "inactive" in delivery.last_error
    assert receiver.requests == []


# Who gets what


def test_only_webhooks_wanting_the_event_type_get_it(workspace, receiver, publish):
    make_outbound(workspace, receiver.url("/scores"), name="Scores", event_types=[SCORE_CHANGED])
    make_outbound(workspace, receiver.url("/segments"), name="Segments", event_types=["lead.segment_entered", "lead.segment_exited"])
    make_outbound(workspace, receiver.url("/everything"), name="Everything", event_types=[])

    assert publish(SCORE_CHANGED) == 2
    assert sorted(request.path for request in receiver.requests) == ["/everything", "/scores"]
    receiver.requests.clear()

    assert publish("lead.segment_entered", {"leadId": "x", "segmentId": "y"}) == 2
    assert sorted(request.path for request in receiver.requests) == ["/everything", "/segments"]
    assert {request.headers["X-Leadsmgr-Event"] for request in receiver.requests} == {"lead.segment_entered"}
    assert len({request.headers["X-Leadsmgr-Delivery"] for request in receiver.requests}) == 1  # one event, two receivers


def test_inactive_webhooks_and_other_workspaces_get_nothing(workspace, other_workspace, receiver, publish):
    make_outbound(workspace, receiver.url("/paused"), is_active=False)
    make_outbound(other_workspace, receiver.url("/theirs"))

    assert publish() == 0
    assert receiver.requests == []
    assert not OutboundDelivery.objects.exists()

    assert publish(of_workspace=other_workspace) == 1
    assert [request.path for request in receiver.requests] == ["/theirs"]
    assert OutboundDelivery.objects.get().workspace_id == other_workspace.pk


def test_the_beat_task_runs_a_bounded_batch_oldest_first(workspace, receiver, publish, monkeypatch):
    make_outbound(workspace, receiver.url())
    receiver.default_status = 500
    for score in (10, 20, 30):
        publish(payload={"newScore": score})
    receiver.default_status = 200
    deliveries = list(OutboundDelivery.objects.order_by("pk"))
    for age, delivery in zip((3, 2, 1), deliveries, strict=True):
        OutboundDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=age))
    receiver.requests.clear()

    monkeypatch.setattr(outbound, "DUE_BATCH_SIZE", 2)
    assert deliver_due_outbound() == 2
    assert [request.json()["data"]["newScore"] for request in receiver.requests] == [10, 20]
    assert deliver_due_outbound() == 1
    assert set(OutboundDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


def test_the_beat_schedule_runs_the_due_deliveries_every_30_seconds():
    entry = settings.CELERY_BEAT_SCHEDULE["deliver-due-outbound"]
    assert entry == {"task": "integrations.tasks.deliver_due_outbound", "schedule": 30.0}
    assert entry["task"] in celery_app.tasks


# The broker being down only delays delivery


@contextmanager
def broker_down():
    """Celery publishing for real to a closed port (as tests/leads/test_processing.py does), with
    the app's cached producer pools dropped on the way in and out."""
    conf = celery_app.conf
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


def test_with_the_broker_down_deliveries_wait_and_the_beat_task_sends_them(workspace, receiver, publish, caplog):
    make_outbound(workspace, receiver.url("/a"), name="A")
    make_outbound(workspace, receiver.url("/b"), name="B")
    with broker_down(), caplog.at_level(logging.WARNING, logger="integrations.outbound"):
        started = time.monotonic()
        assert publish() == 2
        waited = time.monotonic() - started
    assert any("could not enqueue 2 outbound deliveries" in record.getMessage() for record in caplog.records), (
        "enqueueing did not fail: the broker was not down"
    )
    assert waited < 5, f"publishing waited {waited:.1f} s for a broker that is down"
    assert receiver.requests == []
    assert list(OutboundDelivery.objects.values_list("status", "attempts")) == [(DeliveryStatus.PENDING, 0)] * 2

    assert deliver_due_outbound() == 2
    assert sorted(request.path for request in receiver.requests) == ["/a", "/b"]
    assert set(OutboundDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


# API


def error_fields(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]["fields"]


@pytest.fixture
def created(api, receiver):
    response = api.post(URL, {"name": "CRM sync", "url": receiver.url(), "eventTypes": [SCORE_CHANGED]}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_shows_the_secret_once_and_reads_never_show_it(api, created, receiver):
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert created["name"] == "CRM sync" and created["url"] == receiver.url()
    assert created["eventTypes"] == [SCORE_CHANGED] and created["isActive"] is True
    assert created["secretHint"] == secret[:10]
    assert created["stats"] == {"lastDeliveryAt": None, "lastStatus": None}
    assert OutboundWebhook.objects.get().secret == secret

    detail, listing = api.get(f"{URL}/{created['id']}"), api.get(URL)
    for response in (detail, listing):
        assert response.status_code == 200
        assert secret not in response.content.decode()
        assert '"secret"' not in response.content.decode()
    assert detail.json()["id"] == created["id"]
    assert listing.json()["count"] == 1 and listing.json()["results"][0]["id"] == created["id"]


def test_server_owned_fields_sent_on_create_change_nothing(api, receiver):
    chosen_id = "00000000-0000-0000-0000-000000000001"
    response = api.post(
        URL, {"name": "Hook", "url": receiver.url(), "secret": "whsec_mine", "id": chosen_id, "stats": {"lastStatus": "200"}}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"] != "whsec_mine" and body["id"] != chosen_id
    assert body["stats"]["lastStatus"] is None
    assert body["eventTypes"] == []  # every event


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"name": "Hook", "url": "https://example.com/h", "colour": "blue"}, "colour"),
        ({"name": "Hook", "url": "https://example.com/h", "headers": {"X": "1"}}, "headers"),
        ({"url": "https://example.com/h"}, "name"),
        ({"name": "", "url": "https://example.com/h"}, "name"),
        ({"name": "x" * 121, "url": "https://example.com/h"}, "name"),
        ({"name": "Hook"}, "url"),
        ({"name": "Hook", "url": ""}, "url"),
        ({"name": "Hook", "url": "ftp://example.com/h"}, "url"),
        ({"name": "Hook", "url": "javascript:alert(1)"}, "url"),
        ({"name": "Hook", "url": "example.com/h"}, "url"),
        ({"name": "Hook", "url": "https://"}, "url"),
        ({"name": "Hook", "url": "https://example.com/" + "a" * 2000}, "url"),
        ({"name": "Hook", "url": "https://example.com/h", "eventTypes": ["lead.scored"]}, "eventTypes"),
        ({"name": "Hook", "url": "https://example.com/h", "eventTypes": "lead.score_changed"}, "eventTypes"),
        ({"name": "Hook", "url": "https://example.com/h", "eventTypes": [{"type": "x"}]}, "eventTypes"),
        ({"name": "Hook", "url": "https://example.com/h", "isActive": "sometimes"}, "isActive"),
    ],
)
def test_create_refuses_bad_input_naming_the_field(api, payload, field):
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400, response.content
    assert any(name == field or name.startswith(f"{field}[") for name in error_fields(response)), error_fields(response)
    assert not OutboundWebhook.objects.exists()


def test_patch_changes_url_event_types_and_active_and_delivery_follows(api, created, publish, receiver):
    response = api.patch(
        f"{URL}/{created['id']}",
        {"url": receiver.url("/v2"), "eventTypes": ["lead.segment_entered", "lead.segment_entered"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["url"], body["eventTypes"], body["name"]) == (receiver.url("/v2"), ["lead.segment_entered"], "CRM sync")
    assert created["secret"] not in response.content.decode()

    assert publish(SCORE_CHANGED) == 0
    assert publish("lead.segment_entered", {"leadId": "x"}) == 1
    assert [request.path for request in receiver.requests] == ["/v2"]

    assert api.patch(f"{URL}/{created['id']}", {"isActive": False}, format="json").json()["isActive"] is False
    assert publish("lead.segment_entered", {"leadId": "x"}) == 0


@pytest.mark.parametrize(
    "payload, field",
    [({"url": "gopher://example.com"}, "url"), ({"eventTypes": ["nope"]}, "eventTypes"), ({"secret": "x", "bogus": 1}, "bogus")],
)
def test_patch_refuses_bad_input_naming_the_field_and_changes_nothing(api, created, payload, field):
    response = api.patch(f"{URL}/{created['id']}", {"name": "Renamed", **payload}, format="json")
    assert response.status_code == 400
    assert field in error_fields(response)
    webhook = OutboundWebhook.objects.get()
    assert (webhook.name, webhook.url, webhook.event_types, webhook.secret) == (
        "CRM sync",
        created["url"],
        [SCORE_CHANGED],
        created["secret"],
    )


def test_stats_show_the_last_delivery(api, created, publish):
    publish()
    stats = api.get(f"{URL}/{created['id']}").json()["stats"]
    assert stats["lastStatus"] == "200" and stats["lastDeliveryAt"].endswith("Z")


def test_deliveries_are_listed_newest_first_with_a_limit(api, created, publish, receiver):
    receiver.answer(500)
    for score in (10, 20, 30):
        publish(payload={"newScore": score})

    response = api.get(f"{URL}/{created['id']}/deliveries?limit=2")
    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["limit"]) == (3, 2)
    assert [item["payload"]["newScore"] for item in body["results"]] == [30, 20]
    newest = body["results"][0]
    assert (newest["eventType"], newest["status"], newest["attempts"], newest["lastResponseCode"]) == (SCORE_CHANGED, "delivered", 1, 200)
    oldest = api.get(f"{URL}/{created['id']}/deliveries").json()["results"][-1]
    assert (oldest["status"], oldest["lastResponseCode"], oldest["lastError"]) == ("pending", 500, "HTTP 500: answered 500")
    assert oldest["nextAttemptAt"] is not None and oldest["eventId"]

    assert "limit" in error_fields(api.get(f"{URL}/{created['id']}/deliveries?limit=101"))
    assert "limit" in error_fields(api.get(f"{URL}/{created['id']}/deliveries?limit=zero"))


def test_test_sends_a_webhook_test_event_to_that_webhook_only(api, created, receiver, django_capture_on_commit_callbacks):
    other = api.post(URL, {"name": "All events", "url": receiver.url("/all")}, format="json").json()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{URL}/{created['id']}/test")
    assert response.status_code == 202, response.content
    assert response.json()["eventType"] == "webhook.test"

    [request] = receiver.requests
    assert request.path == "/hooks/leads" and request.headers["X-Leadsmgr-Event"] == "webhook.test"
    assert verify_signature(
        created["secret"], request.headers["X-Leadsmgr-Timestamp"], request.body, request.headers["X-Leadsmgr-Signature"]
    )
    assert request.json()["data"]["webhookId"] == created["id"]
    assert api.get(f"{URL}/{other['id']}/deliveries").json()["count"] == 0
    [delivery] = api.get(f"{URL}/{created['id']}/deliveries").json()["results"]
    assert delivery["status"] == "delivered"


def test_test_on_an_inactive_webhook_is_400(api, created, receiver):
    api.patch(f"{URL}/{created['id']}", {"isActive": False}, format="json")
    response = api.post(f"{URL}/{created['id']}/test")
    assert response.status_code == 400
    assert "isActive" in error_fields(response)
    assert not OutboundDelivery.objects.exists()


def test_delete_removes_the_webhook_and_its_deliveries(api, created, publish, receiver):
    publish()
    assert api.delete(f"{URL}/{created['id']}").status_code == 204
    assert not OutboundWebhook.objects.exists() and not OutboundDelivery.objects.exists()
    assert api.get(f"{URL}/{created['id']}").status_code == 404
    assert publish() == 0


def test_another_workspaces_webhook_is_404_and_untouched(api, other_workspace, receiver, publish):
    theirs, _ = make_outbound(other_workspace, receiver.url("/theirs"), name="Theirs")
    publish(of_workspace=other_workspace)
    path = f"{URL}/{theirs.pk}"
    assert api.get(path).status_code == 404
    assert api.patch(path, {"name": "Mine now"}, format="json").status_code == 404
    assert api.get(f"{path}/deliveries").status_code == 404
    assert api.post(f"{path}/test").status_code == 404
    assert api.delete(path).status_code == 404
    assert api.get(URL).json()["count"] == 0
    theirs.refresh_from_db()
    assert theirs.name == "Theirs" and theirs.is_active
    assert OutboundDelivery.objects.filter(webhook=theirs).count() == 1


def test_a_malformed_id_is_404(api):
    assert api.get(f"{URL}/not-a-uuid").status_code == 404
    assert api.get(f"{URL}/not-a-uuid/deliveries").status_code == 404


@pytest.mark.parametrize("role", [Role.VIEWER, Role.SALES_REP])
def test_roles_without_leads_manage_are_403(api_as, workspace, role, receiver):
    webhook, _ = make_outbound(workspace, receiver.url())
    client = api_as(role)
    path = f"{URL}/{webhook.pk}"
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"name": "Sneaky", "url": "https://evil.example/"}, format="json").status_code == 403
    assert client.get(path).status_code == 403
    assert client.patch(path, {"url": "https://evil.example/"}, format="json").status_code == 403
    assert client.get(f"{path}/deliveries").status_code == 403
    assert client.post(f"{path}/test").status_code == 403
    assert client.delete(path).status_code == 403
    webhook.refresh_from_db()
    assert webhook.url == receiver.url() and OutboundWebhook.objects.count() == 1
    assert receiver.requests == []


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MARKETER])
def test_roles_with_leads_manage_may_manage(api_as, role, receiver):
    assert api_as(role).post(URL, {"name": "Hook", "url": receiver.url()}, format="json").status_code == 201


def test_without_a_token_is_401(client, db):
    assert client.get(URL).status_code == 401


def test_the_openapi_schema_lists_the_endpoints(client, db):
    paths = yaml.safe_load(client.get("/api/schema/").content)["paths"]
    for path in ("", "/{webhook_id}", "/{webhook_id}/deliveries", "/{webhook_id}/test"):
        assert f"/api/v1/outbound-webhooks{path}" in paths


# Admin


@pytest.fixture
def su_client(client, db):
    client.force_login(User.objects.create_superuser(email="ops@example.com", password="ops-pass-123"))
    return client


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_admin_lists_webhooks_without_their_secret_and_deliveries_read_only(su_client, workspace, receiver, publish):
    assert admin.site.is_registered(OutboundWebhook) and admin.site.is_registered(OutboundDelivery)
    webhook, secret = make_outbound(workspace, receiver.url())
    publish()
    delivery = OutboundDelivery.objects.get()

    for page in (admin_url(OutboundWebhook, "changelist"), admin_url(OutboundWebhook, "change", webhook.pk)):
        response = su_client.get(page)
        assert response.status_code == 200
        assert "CRM sync" in response.content.decode() and secret not in response.content.decode()
    refused = su_client.post(
        admin_url(OutboundWebhook, "change", webhook.pk), {"name": "CRM sync", "url": "ftp://files.example.com/", "is_active": "on"}
    )
    assert refused.status_code == 200 and "errorlist" in refused.content.decode()
    webhook.refresh_from_db()
    assert webhook.url == receiver.url()

    listing = su_client.get(admin_url(OutboundDelivery, "changelist"), {"q": str(delivery.event_id)})
    assert listing.status_code == 200 and str(delivery) in listing.content.decode()
    change = su_client.get(admin_url(OutboundDelivery, "change", delivery.pk))
    assert change.status_code == 200 and 'name="status"' not in change.content.decode()
    assert su_client.post(admin_url(OutboundDelivery, "change", delivery.pk), {"status": "pending"}).status_code == 403
    assert su_client.get(admin_url(OutboundDelivery, "delete", delivery.pk)).status_code == 403
    assert su_client.get(admin_url(OutboundDelivery, "add")).status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


def test_admin_retry_now_sends_a_failed_delivery_again(su_client, workspace, receiver, publish, django_capture_on_commit_callbacks):
    make_outbound(workspace, receiver.url())
    receiver.answer(500)
    publish()
    failed = OutboundDelivery.objects.get()
    OutboundDelivery.objects.filter(pk=failed.pk).update(status=DeliveryStatus.FAILED, attempts=outbound.MAX_ATTEMPTS, next_attempt_at=None)
    publish()
    delivered = OutboundDelivery.objects.exclude(pk=failed.pk).get()
    assert delivered.status == DeliveryStatus.DELIVERED and len(receiver.requests) == 2

    with django_capture_on_commit_callbacks(execute=True):
        response = su_client.post(
            admin_url(OutboundDelivery, "changelist"),
            {"action": "retry_now", "_selected_action": [str(failed.pk), str(delivered.pk)]},
            follow=True,
        )
    assert response.status_code == 200
    assert "Queued 1 delivery(ies)" in response.content.decode()
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.last_response_code) == (DeliveryStatus.DELIVERED, outbound.MAX_ATTEMPTS + 1, 200)
    assert len(receiver.requests) == 3  # the delivered one was not sent again


# Two beat runners at once (PostgreSQL)


@pytest.mark.skipif(
    connections["default"].vendor != "postgresql",
    reason="concurrent runners need PostgreSQL (set DATABASE_URL): SQLite has no SKIP LOCKED and serializes writers",
)
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_beat_runs_deliver_each_delivery_once(workspace, receiver):
    for name in ("A", "B", "C", "D"):
        make_outbound(workspace, receiver.url(f"/{name}"), name=name)
    with broker_down():
        for score in range(10):
            outbound_event_publish(workspace=workspace, event_type=SCORE_CHANGED, payload={"newScore": score})
    assert OutboundDelivery.objects.filter(status=DeliveryStatus.PENDING, attempts=0).count() == 40
    receiver.delay = 0.02  # long enough for the two runners to overlap

    barrier = threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            counts.append(deliver_due_outbound())
        except BaseException as error:  # noqa: BLE001 - reported to the test below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert sum(counts) == 40 and min(counts) > 0, counts
    sent = [(request.path, request.headers["X-Leadsmgr-Delivery"]) for request in receiver.requests]
    assert len(sent) == 40 and len(set(sent)) == 40
    assert set(OutboundDelivery.objects.values_list("status", "attempts")) == {(DeliveryStatus.DELIVERED, 1)}
