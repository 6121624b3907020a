"""Many submissions at once, as a retrying sender or a double-clicked form produces them.

Only PostgreSQL runs requests truly in parallel (SQLite has one writer at a time), so these run
there: real commits, one connection per thread.
"""

import json

import pytest
from django.core.cache import cache
from django.db import connections
from django.test import Client

from integrations.models import WebhookSubmission
from leads.models import Lead
from tests.concurrency import run_concurrently
from tests.integrations.factories import ingest_path, make_webhook

pytestmark = [
    pytest.mark.skipif(
        connections["default"].vendor != "postgresql",
        reason="concurrent ingest needs PostgreSQL (set DATABASE_URL): SQLite serializes writers, so there is no race to test",
    ),
    pytest.mark.django_db(transaction=True),
]


def post_concurrently(requests: list[tuple[str, dict, dict]]) -> list:
    """Posts each (path, payload, headers) from its own thread, all released at once; returns the
    responses in order."""
    clients = [Client() for _ in requests]
    return run_concurrently(
        [
            lambda client=client, path=path, payload=payload, headers=headers: client.post(
                path, data=json.dumps(payload), content_type="application/json", **headers
            )
            for client, (path, payload, headers) in zip(clients, requests, strict=True)
        ]
    )


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def test_50_concurrent_replays_of_one_idempotency_key_create_one_lead(workspace):
    webhook, key = make_webhook(workspace)
    payload = {"name": "Jane Doe", "email": "jane@acme.com", "tags": ["webinar"]}
    responses = post_concurrently([(ingest_path(key), payload, {"HTTP_IDEMPOTENCY_KEY": "order-123"})] * 50)

    assert [r.status_code for r in responses] == [200] * 50
    bodies = [r.json() for r in responses]
    lead = Lead.objects.get()
    assert all(body == {"ok": True, "leadId": str(lead.pk), "status": "created"} for body in bodies)
    assert sum(1 for r in responses if r.get("Idempotent-Replayed") == "true") == 49
    assert WebhookSubmission.objects.count() == 1
    webhook.refresh_from_db()
    assert (webhook.total_received, webhook.duplicates_received) == (1, 0)


def test_20_concurrent_submissions_of_one_email_make_one_lead_and_lose_no_answer(workspace):
    webhook, key = make_webhook(workspace)
    requests = [
        (ingest_path(key), {"name": "Jane Doe", "email": "Jane@Acme.com", f"answer_{i}": str(i)}, {"HTTP_IDEMPOTENCY_KEY": f"k-{i}"})
        for i in range(20)
    ]
    responses = post_concurrently(requests)

    assert [r.status_code for r in responses] == [200] * 20
    bodies = [r.json() for r in responses]
    lead = Lead.objects.get()
    assert {body["leadId"] for body in bodies} == {str(lead.pk)}
    statuses = sorted(body["status"] for body in bodies)
    assert statuses.count("created") == 1
    assert set(statuses) - {"created"} <= {"merged", "duplicate"}
    assert all(lead.custom_fields[f"answer{i}"] == str(i) for i in range(20))  # every merge landed
    assert WebhookSubmission.objects.filter(lead=lead).count() == 20
    webhook.refresh_from_db()
    assert (webhook.total_received, webhook.duplicates_received) == (20, 19)
