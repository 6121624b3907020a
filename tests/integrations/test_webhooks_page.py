"""The Webhooks settings page, as a marketer uses it."""

import re

import pytest
from django.test import Client

from integrations.models import LeadWebhook
from leads.models import Lead, LeadActivity
from pipelines.models import Stage
from tests.leads.factories import make_lead
from tests.workspaces.factories import member
from workspaces.models import Role


@pytest.fixture
def marketer_client(workspace):
    client = Client()
    client.force_login(member(workspace, Role.MARKETER).user)
    return client


def _new_url(response) -> str:
    match = re.search(r'id="new-webhook-url" value="([^"]+)"', response.content.decode())
    assert match, "the new URL is shown once"
    return match.group(1)


def test_create_shows_the_url_once_and_it_receives_leads(marketer_client, workspace):
    response = marketer_client.post("/settings/webhooks/", {"name": "Landing Page Form"})
    assert response.status_code == 200
    url = _new_url(response)
    assert "/webhooks/leads/whk_" in url
    webhook = LeadWebhook.objects.get(workspace=workspace)
    assert url.rsplit("/", 1)[1] not in webhook.key_hash  # only a hash is kept

    listing = marketer_client.get("/settings/webhooks/").content.decode()
    assert "Landing Page Form" in listing and url.rsplit("/", 1)[1] not in listing

    path = "/" + url.split("/", 3)[3]
    posted = Client().post(path, {"name": "Jane", "email": "jane@acme.com"}, content_type="application/json")
    assert posted.status_code == 200 and posted.json()["status"] == "created"
    stats = marketer_client.get("/settings/webhooks/").content.decode()
    assert re.search(r"<td>1</td>", stats)


def test_edit_mapping_strategy_and_stage(marketer_client, workspace):
    marketer_client.post("/settings/webhooks/", {"name": "Form"})
    webhook = LeadWebhook.objects.get()
    won = Stage.objects.get(workspace=workspace, pipeline__is_default=True, name="Won")
    response = marketer_client.post(
        f"/settings/webhooks/{webhook.pk}/",
        {
            "name": "Form v2",
            "field_mapping": "job_title = title\nsignup_page = landing_url",
            "dedup_strategy": "skip",
            "stage": str(won.pk),
            "honeypot_field": "website",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    webhook.refresh_from_db()
    assert webhook.name == "Form v2"
    assert webhook.field_mapping == {"job_title": "title", "signup_page": "landing_url"}
    assert (webhook.dedup_strategy, webhook.stage_id, webhook.honeypot_field) == ("skip", won.pk, "website")


@pytest.mark.parametrize(
    ("field_mapping", "message"),
    [("job_title title", "Line 1"), ("job_title = boss", "choose one of")],
)
def test_bad_mapping_is_shown_and_nothing_changes(marketer_client, field_mapping, message):
    marketer_client.post("/settings/webhooks/", {"name": "Form"})
    webhook = LeadWebhook.objects.get()
    response = marketer_client.post(
        f"/settings/webhooks/{webhook.pk}/", {"name": "Renamed", "field_mapping": field_mapping, "dedup_strategy": "merge"}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    webhook.refresh_from_db()
    assert webhook.name == "Form" and webhook.field_mapping == {}


def test_regenerate_kills_the_old_url(marketer_client):
    old_path = "/" + _new_url(marketer_client.post("/settings/webhooks/", {"name": "Form"})).split("/", 3)[3]
    webhook = LeadWebhook.objects.get()
    new_path = "/" + _new_url(marketer_client.post(f"/settings/webhooks/{webhook.pk}/regenerate")).split("/", 3)[3]
    assert Client().post(old_path, {"email": "a@b.co"}, content_type="application/json").status_code == 404
    assert Client().post(new_path, {"email": "a@b.co"}, content_type="application/json").status_code == 200


def test_delete_keeps_received_leads(marketer_client):
    path = "/" + _new_url(marketer_client.post("/settings/webhooks/", {"name": "Form"})).split("/", 3)[3]
    Client().post(path, {"email": "kept@example.com"}, content_type="application/json")
    webhook = LeadWebhook.objects.get()
    assert marketer_client.post(f"/settings/webhooks/{webhook.pk}/delete").status_code == 302
    assert not LeadWebhook.objects.exists()
    assert Lead.objects.filter(email="kept@example.com").exists()


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.VIEWER])
def test_roles_without_manage_are_refused(workspace, role):
    client = Client()
    client.force_login(member(workspace, role).user)
    assert client.get("/settings/webhooks/").status_code == 403
    assert client.post("/settings/webhooks/", {"name": "Sneaky"}).status_code == 403
    assert not LeadWebhook.objects.exists()


def test_another_workspaces_webhook_is_404(marketer_client, other_workspace):
    from integrations.services import webhook_create

    theirs, _ = webhook_create(workspace=other_workspace, name="Theirs")
    for path in (
        f"/settings/webhooks/{theirs.pk}/",
        f"/settings/webhooks/{theirs.pk}/regenerate",
        f"/settings/webhooks/{theirs.pk}/delete",
    ):
        assert marketer_client.post(path, {"name": "x"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Theirs"


def test_drawer_offers_and_performs_a_merge_of_duplicates(marketer_client, workspace):
    survivor = make_lead(workspace, name="Jane Doe", email="jane@acme.com")
    duplicate = make_lead(workspace, name="Jane Doe", email="", phone="+14155550100", tags=["vip"])
    drawer = marketer_client.get(f"/leads/{survivor.pk}/").content.decode()
    assert "Possible duplicates" in drawer and "+14155550100" in drawer

    response = marketer_client.post(f"/leads/{survivor.pk}/merge", {"other": str(duplicate.pk)})
    assert response.status_code == 200
    assert "leadsChanged" in response["HX-Trigger"]
    survivor.refresh_from_db()
    duplicate.refresh_from_db()
    assert survivor.phone == "+14155550100"
    assert list(survivor.tags.values_list("name", flat=True)) == ["vip"]
    assert duplicate.deleted_at is not None and duplicate.merged_into_id == survivor.pk
    assert LeadActivity.objects.filter(lead=survivor, type="merged").exists()
