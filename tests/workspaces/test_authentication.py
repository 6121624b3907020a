"""Bearer tokens: the only way into the API. Anything else is a 401 in the error shape."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from leads.models import Lead
from tests.leads.factories import make_lead
from tests.workspaces.factories import member, token_for
from workspaces.models import ApiToken, Role
from workspaces.services import api_token_issue, api_token_revoke

ENDPOINTS = [
    ("get", "/api/v1/leads"),
    ("post", "/api/v1/leads"),
    ("post", "/api/v1/leads/bulk-action"),
    ("get", "/api/v1/lead-pipelines"),
    ("post", "/api/v1/lead-pipelines/ensure-default"),
]


def assert_unauthorized(response) -> None:
    assert response.status_code == 401, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["message"]
    assert response["WWW-Authenticate"] == "Bearer"


def bearer(header: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    return client


@pytest.fixture
def membership(workspace):
    return member(workspace, Role.SUPER_ADMIN)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_no_authorization_header_is_401(workspace, method, path):
    response = getattr(APIClient(), method)(path, {"name": "Sneaky", "action": "delete", "leadIds": []}, format="json")

    assert_unauthorized(response)
    assert not Lead.objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer not-a-token",
        "Bearer lmk",
        "Bearer LMK_abcdefghijklmnopqrstuvwxyz0123456789abcdefg",
        "Basic dXNlcjpwYXNz",
        "Token lmk_abcdefghijklmnopqrstuvwxyz0123456789abcdefg",
        "lmk_abcdefghijklmnopqrstuvwxyz0123456789abcdefg",
    ],
)
def test_malformed_authorization_is_401(workspace, header):
    make_lead(workspace, name="Hidden Lead")

    response = bearer(header).get("/api/v1/leads")

    assert_unauthorized(response)
    assert b"Hidden Lead" not in response.content


def test_unknown_token_is_401(workspace):
    make_lead(workspace, name="Hidden Lead")

    response = bearer(f"Bearer {ApiToken.generate_raw()}").get("/api/v1/leads")

    assert_unauthorized(response)
    assert b"Hidden Lead" not in response.content


def test_valid_token_in_the_wrong_scheme_is_401(membership):
    raw = token_for(membership)

    assert_unauthorized(bearer(f"Token {raw}").get("/api/v1/leads"))
    assert bearer(f"Bearer {raw}").get("/api/v1/leads").status_code == 200


def test_revoked_token_is_401_and_other_tokens_keep_working(membership):
    revoked, revoked_raw = api_token_issue(membership=membership, name="zapier")
    _, kept_raw = api_token_issue(membership=membership, name="make")
    assert bearer(f"Bearer {revoked_raw}").get("/api/v1/leads").status_code == 200

    api_token_revoke(token=revoked)

    assert_unauthorized(bearer(f"Bearer {revoked_raw}").get("/api/v1/leads"))
    assert_unauthorized(bearer(f"Bearer {revoked_raw}").post("/api/v1/leads", {"name": "After Revoke"}, format="json"))
    assert not Lead.objects.filter(name="After Revoke").exists()
    assert bearer(f"Bearer {kept_raw}").get("/api/v1/leads").status_code == 200


def test_inactive_users_token_is_401(membership):
    raw = token_for(membership)
    membership.user.is_active = False
    membership.user.save(update_fields=["is_active"])

    assert_unauthorized(bearer(f"Bearer {raw}").get("/api/v1/leads"))
    assert_unauthorized(bearer(f"Bearer {raw}").post("/api/v1/leads", {"name": "Ghost"}, format="json"))
    assert not Lead.objects.filter(name="Ghost").exists()


def test_token_of_a_removed_member_is_401(membership):
    raw = token_for(membership)

    membership.delete()

    assert_unauthorized(bearer(f"Bearer {raw}").get("/api/v1/leads"))


def test_token_is_prefixed_and_only_its_sha256_is_stored(membership):
    token, raw = api_token_issue(membership=membership, name="zapier")

    assert raw.startswith("lmk_")
    assert len(raw) >= 40
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert stored["key_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert not any(raw in str(value) for value in stored.values()), stored
    assert raw.startswith(stored["hint"]) and len(stored["hint"]) < len(raw)


def test_each_issued_token_is_different(membership):
    _, first = api_token_issue(membership=membership)
    _, second = api_token_issue(membership=membership)

    assert first != second


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_browser_session_without_token_is_401(membership, method, path):
    client = APIClient()
    client.force_login(membership.user)
    assert client.session["_auth_user_id"] == str(membership.user.pk)

    response = getattr(client, method)(path, {"name": "Via Session", "action": "delete", "leadIds": []}, format="json")

    assert_unauthorized(response)
    assert not Lead.objects.filter(name="Via Session").exists()


def test_last_used_at_is_set_when_the_token_is_used(membership):
    token, raw = api_token_issue(membership=membership)
    assert ApiToken.objects.get(pk=token.pk).last_used_at is None
    before = timezone.now()

    response = bearer(f"Bearer {raw}").get("/api/v1/lead-pipelines")

    assert response.status_code == 200
    used_at = ApiToken.objects.get(pk=token.pk).last_used_at
    assert used_at is not None
    assert before <= used_at <= timezone.now()


def test_stale_last_used_at_is_refreshed(membership):
    token, raw = api_token_issue(membership=membership)
    long_ago = timezone.now() - timedelta(days=3)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=long_ago)

    bearer(f"Bearer {raw}").get("/api/v1/leads")

    assert ApiToken.objects.get(pk=token.pk).last_used_at > long_ago + timedelta(days=2)


def test_failed_authentication_does_not_mark_a_revoked_token_used(membership):
    token, raw = api_token_issue(membership=membership)
    api_token_revoke(token=token)

    bearer(f"Bearer {raw}").get("/api/v1/leads")

    assert ApiToken.objects.get(pk=token.pk).last_used_at is None
