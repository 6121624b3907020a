"""/api/v1/lead-webhooks: a partner's integration managing its inbound webhooks."""

import hashlib
import json

import pytest
from django.test import Client

from integrations.models import LeadWebhook
from leads.models import Lead
from pipelines.models import Stage
from tests.integrations.factories import make_webhook
from tests.pipelines.factories import make_pipeline
from workspaces.models import Role

URL = "/api/v1/lead-webhooks"


def error_fields(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]["fields"]


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def ingest(url_or_path: str, payload: dict):
    path = path_of(url_or_path) if url_or_path.startswith("http") else url_or_path
    return Client().post(path, data=json.dumps(payload), content_type="application/json")


@pytest.fixture
def created(api):
    response = api.post(URL, {"name": "Landing Page Form"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


# Create and read


def test_create_returns_the_key_and_full_url_once(api, created, workspace):
    key = created["apiKey"]
    assert key.startswith("whk_") and len(key) > 20
    assert created["url"] == f"http://testserver/webhooks/leads/{key}"
    assert created["name"] == "Landing Page Form"
    assert created["dedupStrategy"] == "merge" and created["honeypotField"] == "_hp" and created["isActive"] is True
    assert created["stats"] == {"totalReceived": 0, "duplicates": 0, "discarded": 0, "duplicateRate": 0.0, "lastReceivedAt": None}
    assert ingest(created["url"], {"email": "jane@acme.com"}).status_code == 200

    detail = api.get(f"{URL}/{created['id']}")
    listing = api.get(URL)
    for response in (detail, listing):
        assert response.status_code == 200
        assert key not in response.content.decode()
        assert "apiKey" not in response.content.decode()
    shown = detail.json()
    assert shown["keyHint"] == key[:10]
    assert shown["url"] == f"/webhooks/leads/{key[:10]}…"
    assert shown["stats"]["totalReceived"] == 1 and shown["stats"]["lastReceivedAt"]
    assert listing.json()["count"] == 1 and listing.json()["results"][0]["id"] == created["id"]


def test_only_the_keys_hash_is_stored(created):
    key = created["apiKey"]
    webhook = LeadWebhook.objects.get(pk=created["id"])
    assert webhook.key_hash == hashlib.sha256(key.encode()).hexdigest()
    stored = {field.attname: getattr(webhook, field.attname) for field in LeadWebhook._meta.concrete_fields}
    assert not any(key in str(value) for value in stored.values())


def test_server_owned_fields_sent_on_create_change_nothing(api):
    response = api.post(
        URL, {"name": "Form", "apiKey": "whk_chosen-by-client", "id": "00000000-0000-0000-0000-000000000001", "stats": {}}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["apiKey"] != "whk_chosen-by-client"
    assert body["id"] != "00000000-0000-0000-0000-000000000001"
    assert ingest("/webhooks/leads/whk_chosen-by-client", {"email": "a@acme.com"}).status_code == 404


def test_create_with_settings(api, workspace):
    partners = make_pipeline(workspace)
    trial = partners.stages.get(name="Trial")
    response = api.post(
        URL,
        {"name": "Ads", "fieldMapping": {"job_title": "title"}, "dedupStrategy": "skip", "stageId": str(trial.pk), "honeypotField": "hp2"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["fieldMapping"] == {"job_title": "title"}
    assert (body["dedupStrategy"], body["stageId"], body["pipelineId"], body["honeypotField"]) == (
        "skip",
        str(trial.pk),
        str(partners.pk),
        "hp2",
    )
    assert ingest(body["url"], {"email": "jane@acme.com", "job_title": "CTO"}).status_code == 200
    lead = Lead.objects.get()
    assert (lead.title, lead.stage_id) == ("CTO", trial.pk)


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"name": "Form", "colour": "blue"}, "colour"),
        ({"name": "Form", "secret": "x", "fieldMapping": {}}, "secret"),
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"name": "Form", "dedupStrategy": "overwrite"}, "dedupStrategy"),
        ({"name": "Form", "fieldMapping": {"job_title": "salary"}}, "fieldMapping"),
        ({"name": "Form", "fieldMapping": ["job_title"]}, "fieldMapping"),
        ({"name": "Form", "stageId": "not-a-uuid"}, "stageId"),
    ],
)
def test_create_refuses_bad_input_naming_the_field(api, payload, field):
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400, response.content
    assert field in error_fields(response)
    assert not LeadWebhook.objects.exists()


# Update


def test_patch_changes_mapping_strategy_and_stage_and_ingest_follows(api, created, workspace):
    qualified = Stage.objects.get(workspace=workspace, pipeline__is_default=True, name="Qualified")
    response = api.patch(
        f"{URL}/{created['id']}",
        {"fieldMapping": {"job_title": "title", "junk": "ignore"}, "dedupStrategy": "replace", "stageId": str(qualified.pk)},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["fieldMapping"] == {"job_title": "title", "junk": "ignore"}
    assert (body["dedupStrategy"], body["stageId"], body["pipelineId"]) == ("replace", str(qualified.pk), str(qualified.pipeline_id))
    assert body["name"] == "Landing Page Form"
    assert created["apiKey"] not in response.content.decode()

    ingest(created["url"], {"name": "Jane", "email": "jane@acme.com", "job_title": "CTO", "junk": "x"})
    ingest(created["url"], {"name": "Jane Doe", "email": "jane@acme.com"})
    lead = Lead.objects.get()
    assert (lead.name, lead.title, lead.stage_id) == ("Jane Doe", "CTO", qualified.pk)
    assert lead.custom_fields == {}


def test_patch_with_another_workspaces_stage_is_400_naming_stage_id(api, created, other_workspace):
    foreign = Stage.objects.filter(workspace=other_workspace).first()
    response = api.patch(f"{URL}/{created['id']}", {"stageId": str(foreign.pk)}, format="json")
    assert response.status_code == 400
    assert "stageId" in error_fields(response)
    assert LeadWebhook.objects.get().stage_id is None


def test_patch_with_a_bad_mapping_target_is_400_naming_field_mapping(api, created):
    response = api.patch(f"{URL}/{created['id']}", {"fieldMapping": {"job_title": "boss"}, "name": "Renamed"}, format="json")
    assert response.status_code == 400
    assert "boss" in error_fields(response)["fieldMapping"]
    webhook = LeadWebhook.objects.get()
    assert (webhook.field_mapping, webhook.name) == ({}, "Landing Page Form")


@pytest.mark.parametrize("payload, field", [({"bogus": 1}, "bogus"), ({"dedupStrategy": "merge", "keyHash": "x"}, "keyHash")])
def test_patch_refuses_unknown_fields(api, created, payload, field):
    response = api.patch(f"{URL}/{created['id']}", payload, format="json")
    assert response.status_code == 400
    assert field in error_fields(response)


def test_patch_can_deactivate_and_the_url_stops_answering(api, created):
    assert api.patch(f"{URL}/{created['id']}", {"isActive": False}, format="json").json()["isActive"] is False
    assert ingest(created["url"], {"email": "a@acme.com"}).status_code == 404


def test_patch_clearing_the_stage_sends_leads_to_the_first_stage(api, workspace):
    qualified = Stage.objects.get(workspace=workspace, pipeline__is_default=True, name="Qualified")
    body = api.post(URL, {"name": "Form", "stageId": str(qualified.pk)}, format="json").json()
    assert api.patch(f"{URL}/{body['id']}", {"stageId": None}, format="json").json()["stageId"] is None
    ingest(body["url"], {"email": "a@acme.com"})
    assert Lead.objects.get().stage.name == "New"


# Regenerate key


def test_regenerate_key_retires_the_old_url_and_the_new_one_works(api, created):
    response = api.post(f"{URL}/{created['id']}/regenerate-key")
    assert response.status_code == 200
    body = response.json()
    assert body["apiKey"].startswith("whk_") and body["apiKey"] != created["apiKey"]
    assert body["url"].endswith(body["apiKey"])
    assert body["id"] == created["id"]
    assert ingest(created["url"], {"email": "old@acme.com"}).status_code == 404
    assert ingest(body["url"], {"email": "new@acme.com"}).status_code == 200
    assert list(Lead.objects.values_list("email", flat=True)) == ["new@acme.com"]
    assert api.get(f"{URL}/{created['id']}").json()["keyHint"] == body["apiKey"][:10]


# Delete


def test_delete_leaves_received_leads_in_place(api, created):
    ingest(created["url"], {"name": "Jane", "email": "jane@acme.com"})
    lead = Lead.objects.get()
    assert lead.source_webhook_id is not None
    assert api.delete(f"{URL}/{created['id']}").status_code == 204
    assert not LeadWebhook.objects.exists()
    assert api.get(f"{URL}/{created['id']}").status_code == 404
    assert ingest(created["url"], {"email": "late@acme.com"}).status_code == 404
    lead.refresh_from_db()
    assert lead.deleted_at is None and lead.email == "jane@acme.com"
    assert api.get(f"/api/v1/leads/{lead.pk}").status_code == 200


# Tenancy and roles


def test_another_workspaces_webhook_is_404_and_untouched(api, other_workspace):
    theirs, their_key = make_webhook(other_workspace, name="Theirs")
    path = f"{URL}/{theirs.pk}"
    assert api.get(path).status_code == 404
    assert api.patch(path, {"name": "Mine now"}, format="json").status_code == 404
    assert api.post(f"{path}/regenerate-key").status_code == 404
    assert api.delete(path).status_code == 404
    assert api.get(URL).json()["count"] == 0
    theirs.refresh_from_db()
    assert theirs.name == "Theirs"
    assert ingest(f"/webhooks/leads/{their_key}", {"email": "a@acme.com"}).status_code == 200


def test_a_malformed_id_is_404(api):
    assert api.get(f"{URL}/not-a-uuid").status_code == 404


@pytest.mark.parametrize("role", [Role.VIEWER, Role.SALES_REP])
def test_roles_without_leads_manage_are_403(api_as, workspace, role):
    webhook, key = make_webhook(workspace, name="Form")
    client = api_as(role)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"name": "Sneaky"}, format="json").status_code == 403
    assert client.get(f"{URL}/{webhook.pk}").status_code == 403
    assert client.patch(f"{URL}/{webhook.pk}", {"name": "Sneaky"}, format="json").status_code == 403
    assert client.post(f"{URL}/{webhook.pk}/regenerate-key").status_code == 403
    assert client.delete(f"{URL}/{webhook.pk}").status_code == 403
    webhook.refresh_from_db()
    assert webhook.name == "Form"
    assert LeadWebhook.objects.count() == 1
    assert ingest(f"/webhooks/leads/{key}", {"email": "a@acme.com"}).status_code == 200


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MARKETER])
def test_roles_with_leads_manage_may_manage(api_as, role):
    assert api_as(role).post(URL, {"name": "Form"}, format="json").status_code == 201


def test_without_a_token_is_401(client):
    assert client.get(URL).status_code == 401
