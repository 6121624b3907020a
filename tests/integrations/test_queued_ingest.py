"""Queued webhooks: 202 at once, the lead captured by the worker in batches (high-volume sources).

A webhook in `queued` response mode (or a request with `Prefer: respond-async`) checks the
submission as capture would, stores it, answers 202 with a submission id; the worker captures the
queue in batches. These tests run the worker's task eagerly after commit, or by hand.
"""

import json
import threading
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connections
from django.db.models import F
from django.utils import timezone

from integrations.models import LeadWebhook, ResponseMode, SubmissionOutcome, WebhookSubmission
from integrations.services import queued_submissions_capture, webhook_delete, webhook_regenerate_key
from integrations.tasks import capture_queued_submissions, purge_expired_submissions, sweep_queued_submissions
from leads.models import Lead, SourceType
from tests.integrations.factories import ingest_path, make_webhook
from tests.leads.tracking.factories import broker_down
from tests.pipelines.factories import make_pipeline

ON_POSTGRESQL = connections["default"].vendor == "postgresql"


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def queued(workspace):
    return make_webhook(workspace, name="Ads form", response_mode=ResponseMode.QUEUED)


def post(client, key, payload, **headers):
    return client.post(ingest_path(key), data=json.dumps(payload), content_type="application/json", **headers)


def status_of(client, key, submission_id):
    return client.get(f"{ingest_path(key)}/submissions/{submission_id}")


def test_a_queued_webhook_answers_202_and_the_worker_captures_the_lead(client, workspace, queued, django_capture_on_commit_callbacks):
    webhook, key = queued
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, key, {"name": "Jane Doe", "email": "Jane@Acme.com", "phone": "+1 415 555 0134", "utm_source": "ads"})

    assert response.status_code == 202
    body = response.json()
    assert body == {"ok": True, "status": "queued", "submissionId": body["submissionId"]}
    lead = Lead.objects.get()
    assert (lead.name, lead.email, lead.phone, lead.source_type, lead.source_webhook_id) == (
        "Jane Doe",
        "jane@acme.com",
        "+14155550134",
        SourceType.WEBHOOK,
        webhook.pk,
    )
    assert lead.utm_source == "ads"
    looked_up = status_of(client, key, body["submissionId"])
    assert looked_up.status_code == 200
    assert looked_up.json() == {"ok": True, "leadId": str(lead.pk), "status": "created", "submissionId": body["submissionId"]}
    webhook.refresh_from_db()
    assert (webhook.total_received, webhook.duplicates_received) == (1, 0)
    assert webhook.last_received_at is not None


def test_until_the_worker_runs_the_submission_is_queued_and_no_lead_exists(client, queued):
    webhook, key = queued
    response = post(client, key, {"email": "jane@acme.com"})  # no on_commit: the worker has not run

    submission_id = response.json()["submissionId"]
    assert response.status_code == 202
    assert not Lead.objects.exists()
    assert status_of(client, key, submission_id).json() == {"ok": True, "status": "queued", "submissionId": submission_id}

    assert capture_queued_submissions(str(webhook.workspace_id)) == 1
    lead = Lead.objects.get()
    assert status_of(client, key, submission_id).json()["leadId"] == str(lead.pk)
    assert capture_queued_submissions(str(webhook.workspace_id)) == 0  # idempotent: nothing left


def test_prefer_respond_async_queues_a_request_to_a_synchronous_webhook(client, workspace, django_capture_on_commit_callbacks):
    _, key = make_webhook(workspace)
    with django_capture_on_commit_callbacks(execute=True):
        queued_answer = post(client, key, {"email": "a@acme.com"}, HTTP_PREFER="respond-async, wait=0")
        sync_answer = post(client, key, {"email": "b@acme.com"})

    assert queued_answer.status_code == 202
    assert queued_answer["Preference-Applied"] == "respond-async"
    assert sync_answer.status_code == 200
    assert sync_answer.json() == {"ok": True, "leadId": str(Lead.objects.get(email="b@acme.com").pk), "status": "created"}
    assert "Preference-Applied" not in sync_answer
    assert Lead.objects.filter(email="a@acme.com").exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"company": "Acme"}, "name"),
        ({"name": "x" * 300}, "name"),
        ({"name": "Jane", "tags": [f"tag{i}" for i in range(200)]}, "tags"),
    ],
)
def test_bad_input_is_refused_before_the_202_and_nothing_is_stored(client, queued, payload, field):
    _, key = queued
    response = post(client, key, payload)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    assert not WebhookSubmission.objects.exists()
    assert not Lead.objects.exists()


def test_one_batch_captures_in_order_new_people_repeats_and_known_leads(client, workspace, queued):
    webhook, key = queued
    make_webhook(workspace, name="Sync")  # another webhook: its counters must not move
    post(client, key, {"name": "Known", "email": "known@acme.com"})
    capture_queued_submissions(str(workspace.pk))
    known = Lead.objects.get()

    answers = [
        post(client, key, {"name": "Ann", "email": "ann@acme.com"}),
        post(client, key, {"email": "known@acme.com", "title": "CTO"}),
        post(client, key, {"name": "Ann again", "email": "ANN@acme.com", "tags": ["webinar"]}),
        post(client, key, {"name": "Bob", "phone": "+1 415 555 0199"}),
    ]
    assert {answer.status_code for answer in answers} == {202}
    assert queued_submissions_capture(workspace_id=workspace.pk, batch_size=10) == 4

    outcomes = [status_of(client, key, answer.json()["submissionId"]).json() for answer in answers]
    assert [outcome["status"] for outcome in outcomes] == ["created", "merged", "merged", "created"]
    ann = Lead.objects.get(email="ann@acme.com")
    assert outcomes[2]["leadId"] == outcomes[0]["leadId"] == str(ann.pk)
    assert outcomes[1]["leadId"] == str(known.pk)
    known.refresh_from_db()
    ann.refresh_from_db()
    assert known.title == "CTO"
    assert ann.name == "Ann" and list(ann.tags.values_list("name", flat=True)) == ["webinar"]
    assert Lead.objects.count() == 3
    webhook.refresh_from_db()
    assert (webhook.total_received, webhook.duplicates_received) == (5, 2)
    assert LeadWebhook.objects.get(name="Sync").total_received == 0


def test_a_batch_is_split_by_batch_size_and_every_row_is_captured_once(client, workspace, queued):
    _, key = queued
    for i in range(7):
        post(client, key, {"email": f"p{i}@acme.com"})
    assert queued_submissions_capture(workspace_id=workspace.pk, batch_size=3) == 7
    assert Lead.objects.count() == 7
    assert set(WebhookSubmission.objects.values_list("outcome", flat=True)) == {SubmissionOutcome.CREATED}
    assert WebhookSubmission.objects.filter(lead__isnull=True).count() == 0


def test_an_idempotent_replay_gets_the_same_submission_then_its_lead(client, workspace, queued):
    _, key = queued
    first = post(client, key, {"email": "jane@acme.com"}, HTTP_IDEMPOTENCY_KEY="order-1")
    replay = post(client, key, {"email": "jane@acme.com"}, HTTP_IDEMPOTENCY_KEY="order-1")

    assert (replay.status_code, replay.json(), replay["Idempotent-Replayed"]) == (202, first.json(), "true")
    assert WebhookSubmission.objects.count() == 1

    capture_queued_submissions(str(workspace.pk))
    after = post(client, key, {"email": "jane@acme.com"}, HTTP_IDEMPOTENCY_KEY="order-1")
    assert after.status_code == 200
    assert after.json()["leadId"] == str(Lead.objects.get().pk)
    assert post(client, key, {"email": "other@acme.com"}, HTTP_IDEMPOTENCY_KEY="order-1").status_code == 409
    assert Lead.objects.count() == 1


def test_with_the_broker_down_the_submission_is_kept_and_the_sweeper_captures_it(
    client, workspace, queued, django_capture_on_commit_callbacks
):
    _, key = queued
    with broker_down(), django_capture_on_commit_callbacks(execute=True):
        response = post(client, key, {"email": "jane@acme.com"})
    assert response.status_code == 202
    assert not Lead.objects.exists()

    assert sweep_queued_submissions(stalled_seconds=3600) == 0  # not stalled yet
    assert sweep_queued_submissions(stalled_seconds=0) == 1  # eager here: the capture runs now
    assert Lead.objects.get().email == "jane@acme.com"


@pytest.mark.parametrize("how", ["service", "queryset"])
def test_deleting_a_webhook_first_captures_its_queued_submissions_with_its_settings(client, workspace, how):
    pipeline = make_pipeline(workspace, name="Ads")
    webhook, key = make_webhook(
        workspace,
        name="Ads form",
        response_mode=ResponseMode.QUEUED,
        pipeline=pipeline,
        field_mapping={"E-Mail Address": "email", "secret_token": "ignore"},
    )
    post(client, key, {"name": "Jane", "E-Mail Address": "jane@acme.com", "secret_token": "s3cr3t"})
    assert not Lead.objects.exists()

    if how == "service":
        webhook_delete(webhook=webhook)
    else:
        LeadWebhook.objects.filter(pk=webhook.pk).delete()  # as admin's bulk delete does

    lead = Lead.objects.get()
    assert (lead.email, lead.pipeline_id) == ("jane@acme.com", pipeline.pk)
    assert "secretToken" not in lead.custom_fields and "secret_token" not in lead.custom_fields
    submission = WebhookSubmission.objects.get()
    assert (submission.outcome, submission.lead_id, submission.webhook_id) == (SubmissionOutcome.CREATED, lead.pk, None)


def test_a_submission_that_cannot_be_captured_leaves_the_queue_and_holds_no_other_back(client, workspace, queued):
    webhook, key = queued
    # A row no request could store (it is checked first): as if written by hand or by an older version.
    broken = WebhookSubmission.objects.create(
        workspace=workspace, webhook=webhook, body_sha256="x", payload=["not", "an", "object"], outcome=SubmissionOutcome.QUEUED
    )
    good = post(client, key, {"email": "jane@acme.com"}).json()["submissionId"]

    assert capture_queued_submissions(str(workspace.pk)) == 2
    assert Lead.objects.get().email == "jane@acme.com"
    assert status_of(client, key, good).json()["status"] == "created"
    rejected = status_of(client, key, str(broken.pk)).json()
    assert (rejected["status"], rejected["error"]["code"]) == ("rejected", "server_error")
    assert not WebhookSubmission.objects.filter(outcome=SubmissionOutcome.QUEUED).exists()
    webhook.refresh_from_db()
    assert webhook.total_received == 1


def test_a_webhook_paused_behind_the_caches_back_stores_nothing(client, queued):
    """An update that sends no signal (a queryset update) leaves the cached copy active: the
    INSERT itself checks the webhook, so the key answers 404 and nothing is queued."""
    webhook, key = queued
    assert post(client, key, {"email": "a@acme.com"}).status_code == 202  # cached now
    LeadWebhook.objects.filter(pk=webhook.pk).update(is_active=False)

    assert post(client, key, {"email": "b@acme.com"}).status_code == 404
    assert WebhookSubmission.objects.count() == 1


def test_the_webhook_pipeline_and_dedup_strategy_apply_to_queued_captures(client, workspace):
    pipeline = make_pipeline(workspace, name="Ads")
    _, key = make_webhook(workspace, response_mode=ResponseMode.QUEUED, pipeline=pipeline, dedup_strategy="skip")
    post(client, key, {"name": "Jane", "email": "jane@acme.com"})
    post(client, key, {"name": "Janet", "email": "jane@acme.com"})
    capture_queued_submissions(str(workspace.pk))

    lead = Lead.objects.get()
    assert (lead.name, lead.pipeline_id) == ("Jane", pipeline.pk)
    assert sorted(WebhookSubmission.objects.values_list("outcome", flat=True)) == ["created", "duplicate"]


def test_the_status_lookup_is_scoped_to_the_webhooks_key(client, workspace, other_workspace, queued):
    _, key = queued
    _, other_key = make_webhook(other_workspace, response_mode=ResponseMode.QUEUED)
    _, same_workspace_key = make_webhook(workspace)
    submission_id = post(client, key, {"email": "jane@acme.com"}).json()["submissionId"]

    assert status_of(client, other_key, submission_id).status_code == 404
    assert status_of(client, same_workspace_key, submission_id).status_code == 404
    assert status_of(client, "whk_nope", submission_id).status_code == 404
    assert status_of(client, key, "12x").status_code == 404
    assert status_of(client, key, submission_id).status_code == 200


def test_queued_submissions_outlive_the_retention_purge_until_captured(client, workspace, queued):
    _, key = queued
    post(client, key, {"email": "old@acme.com"})
    WebhookSubmission.objects.update(received_at=timezone.now() - timedelta(days=365))

    purge_expired_submissions()
    assert WebhookSubmission.objects.count() == 1
    capture_queued_submissions(str(workspace.pk))
    purge_expired_submissions()
    assert not WebhookSubmission.objects.exists()
    assert Lead.objects.filter(email="old@acme.com").exists()


def test_the_api_sets_and_shows_the_response_mode(api, workspace):
    created = api.post("/api/v1/lead-webhooks", {"name": "Ads", "responseMode": "queued"}, format="json")
    assert created.status_code == 201
    assert created.json()["responseMode"] == "queued"
    webhook_id = created.json()["id"]

    refused = api.patch(f"/api/v1/lead-webhooks/{webhook_id}", {"responseMode": "later"}, format="json")
    assert refused.status_code == 400
    assert "responseMode" in json.dumps(refused.json())
    assert api.patch(f"/api/v1/lead-webhooks/{webhook_id}", {"responseMode": "sync"}, format="json").json()["responseMode"] == "sync"


@pytest.mark.skipif(not ON_POSTGRESQL, reason="parallel workers need PostgreSQL (SKIP LOCKED); SQLite serializes writers")
@pytest.mark.django_db(transaction=True)
def test_two_workers_draining_at_once_capture_every_submission_exactly_once(client, workspace, queued):
    _, key = queued
    with broker_down():  # the requests' own capture messages are lost: the queue waits for the drains
        for i in range(120):
            # Ten people are sent twice: the two copies may land in different workers' batches.
            post(client, key, {"name": f"P{i % 110}", "email": f"p{i % 110}@acme.com"})
    assert WebhookSubmission.objects.filter(outcome=SubmissionOutcome.QUEUED).count() == 120
    barrier = threading.Barrier(2)
    counts, errors = [], []

    def drain():
        try:
            barrier.wait(timeout=30)
            counts.append(queued_submissions_capture(workspace_id=workspace.pk, batch_size=20))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert sum(counts) == 120
    assert Lead.objects.count() == 110
    assert not WebhookSubmission.objects.filter(outcome=SubmissionOutcome.QUEUED).exists()
    # A repeat brings nothing new: "duplicate" (merge strategy), never a second lead.
    assert WebhookSubmission.objects.filter(outcome=SubmissionOutcome.DUPLICATE).count() == 10


def test_a_paused_rekeyed_or_deleted_queued_webhook_stops_answering_at_once(client, queued):
    """The queued path looks webhooks up in the cache: every change must reach it at once."""
    webhook, key = queued
    assert post(client, key, {"email": "a@acme.com"}).status_code == 202  # now cached

    webhook.is_active = False
    webhook.save()  # as admin saves it
    assert post(client, key, {"email": "b@acme.com"}).status_code == 404
    webhook.is_active = True
    webhook.save()
    assert post(client, key, {"email": "c@acme.com"}).status_code == 202

    new_key = webhook_regenerate_key(webhook=webhook)
    assert post(client, key, {"email": "d@acme.com"}).status_code == 404
    assert post(client, new_key, {"email": "e@acme.com"}).status_code == 202
    LeadWebhook.objects.filter(pk=webhook.pk).delete()  # as admin's bulk delete does
    assert post(client, new_key, {"email": "f@acme.com"}).status_code == 404


def test_a_filled_honeypot_is_discarded_at_once_and_nothing_is_queued(client, queued):
    webhook, key = queued
    response = post(client, key, {"name": "Bot", "email": "bot@spam.example", "_hp": "http://spam.example"})

    assert (response.status_code, response.json()) == (200, {"ok": True, "status": "discarded"})
    assert list(WebhookSubmission.objects.values_list("outcome", flat=True)) == [SubmissionOutcome.DISCARDED]
    capture_queued_submissions(str(webhook.workspace_id))
    assert not Lead.objects.exists()
    webhook.refresh_from_db()
    assert (webhook.total_received, webhook.discarded_received) == (1, 1)


def saved_elsewhere(webhook, **changes):
    """What a save in another web process leaves: the row changed and its version moved, while
    this process still holds its copy (no signal reaches it)."""
    LeadWebhook.objects.filter(pk=webhook.pk).update(**changes, version=F("version") + 1)


def test_a_webhook_switched_to_sync_in_another_process_captures_the_next_submission_at_once(client, queued):
    webhook, key = queued
    assert post(client, key, {"email": "a@acme.com"}).status_code == 202  # this process holds it now
    saved_elsewhere(webhook, response_mode=ResponseMode.SYNC)

    response = post(client, key, {"name": "Bea", "email": "b@acme.com"})
    assert (response.status_code, response.json()["status"]) == (200, "created")
    assert str(Lead.objects.get(email="b@acme.com").pk) == response.json()["leadId"]
    assert list(WebhookSubmission.objects.order_by("pk").values_list("outcome", flat=True)) == ["queued", "created"]


def test_a_honeypot_renamed_in_another_process_applies_to_the_next_submission(client, queued):
    webhook, key = queued
    assert post(client, key, {"email": "a@acme.com"}).status_code == 202
    saved_elsewhere(webhook, honeypot_field="fax_number")

    # The old honeypot name is an ordinary field now: kept, not discarded.
    assert post(client, key, {"email": "human@acme.com", "_hp": "not a trap any more"}).status_code == 202
    trapped = post(client, key, {"email": "bot@spam.example", "fax_number": "555"})
    assert (trapped.status_code, trapped.json()["status"]) == (200, "discarded")
    assert sorted(WebhookSubmission.objects.values_list("outcome", flat=True)) == ["discarded", "queued", "queued"]


def test_a_webhook_paused_and_resumed_in_another_process_answers_at_once_each_time(client, queued):
    webhook, key = queued
    assert post(client, key, {"email": "a@acme.com"}).status_code == 202
    saved_elsewhere(webhook, is_active=False)
    assert post(client, key, {"email": "b@acme.com"}).status_code == 404
    saved_elsewhere(webhook, is_active=True)  # a 404 is not remembered
    assert post(client, key, {"email": "c@acme.com"}).status_code == 202
    assert sorted(WebhookSubmission.objects.values_list("payload__email", flat=True)) == ["a@acme.com", "c@acme.com"]


def test_every_save_of_a_webhook_moves_its_version_and_its_counters_do_not(client, queued, django_capture_on_commit_callbacks):
    webhook, key = queued
    assert webhook.version == 0
    webhook.name = "Renamed"
    webhook.save(update_fields=["name"])
    webhook.save()
    assert (webhook.version, LeadWebhook.objects.get(pk=webhook.pk).version) == (2, 2)
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, key, {"email": "a@acme.com"}).status_code == 202
    stored = LeadWebhook.objects.get(pk=webhook.pk)
    assert (stored.total_received, stored.version) == (1, 2)
