"""The management commands an operator runs: create_workspace, issue_token and seed_demo."""

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from leads.models import Lead, LeadActivity, LeadTag, Note
from pipelines.models import Pipeline, Stage
from tests.leads.factories import make_lead
from tests.pipelines.factories import default_stage_names
from tests.workspaces.factories import UserFactory, member
from workspaces.models import ApiToken, Membership, Role, User, Workspace


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


# create_workspace


def test_create_workspace_with_a_new_owner(db):
    output = run("create_workspace", "acme", "--owner", "Boss@Acme.com", "--name", "Acme Corp")

    workspace = Workspace.objects.get(slug="acme")
    assert workspace.name == "Acme Corp"
    assert "acme" in output and "boss@acme.com" in output
    owner = User.objects.get(email="boss@acme.com")
    assert Membership.objects.get(workspace=workspace, user=owner).role == Role.SUPER_ADMIN
    pipeline = Pipeline.objects.get(workspace=workspace)
    assert pipeline.is_default
    assert [s.name for s in pipeline.stages.order_by("position")] == default_stage_names()


def test_create_workspace_with_an_existing_user_as_owner(db):
    existing = UserFactory(email="owner@example.com")
    run("create_workspace", "globex", "--owner", "owner@example.com")
    workspace = Workspace.objects.get(slug="globex")
    assert workspace.name == "Globex"
    assert Membership.objects.get(workspace=workspace).user == existing
    assert User.objects.filter(email="owner@example.com").count() == 1
    existing.refresh_from_db()
    assert existing.check_password("pass-word-123")


def test_create_workspace_with_a_password_lets_the_new_owner_sign_in(db, client):
    run("create_workspace", "initech", "--owner", "peter@initech.com", "--password", "tps-reports-2026")
    response = client.post("/accounts/login/", {"username": "peter@initech.com", "password": "tps-reports-2026"})
    assert response.status_code == 302
    assert "_auth_user_id" in client.session


def test_create_workspace_with_an_existing_slug_is_an_error(workspace):
    with pytest.raises(CommandError, match=workspace.slug):
        run("create_workspace", workspace.slug, "--owner", "someone@example.com")
    assert Workspace.objects.filter(slug=workspace.slug).count() == 1
    assert Pipeline.objects.filter(workspace=workspace).count() == 1
    assert not Membership.objects.filter(workspace=workspace, user__email="someone@example.com").exists()


@pytest.mark.parametrize("slug", ["Acme", "acme corp", "acme_corp!", "-"])
def test_create_workspace_with_a_bad_slug_is_an_error(db, slug):
    with pytest.raises(CommandError):
        run("create_workspace", slug, "--owner", "someone@example.com")
    assert Workspace.objects.count() == 0
    assert Pipeline.objects.count() == 0


def test_create_workspace_that_fails_creates_no_user(db):
    with pytest.raises(CommandError):
        run("create_workspace", "Not A Slug", "--owner", "newcomer@example.com")
    assert not User.objects.filter(email="newcomer@example.com").exists()


# issue_token


def test_issue_token_prints_a_working_bearer_token(workspace):
    membership = member(workspace, role=Role.SALES_REP)
    make_lead(workspace, name="Visible Lead")

    output = run("issue_token", "--workspace", workspace.slug, "--user", membership.user.email.upper(), "--name", "zapier")

    lines = output.splitlines()
    assert len(lines) == 1
    raw = lines[0].strip()
    assert raw.startswith("lmk_")
    assert ApiToken.objects.get(membership=membership).name == "zapier"
    client = APIClient()
    response = client.get("/api/v1/leads", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200, response.content
    assert [lead["name"] for lead in response.json()["results"]] == ["Visible Lead"]


def test_issue_token_twice_gives_two_different_working_tokens(workspace):
    membership = member(workspace)
    first = run("issue_token", "--workspace", workspace.slug, "--user", membership.user.email).strip()
    second = run("issue_token", "--workspace", workspace.slug, "--user", membership.user.email).strip()
    assert first != second
    for raw in (first, second):
        assert APIClient().get("/api/v1/leads", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


def test_issue_token_for_a_non_member_is_an_error(workspace, other_workspace):
    outsider = member(other_workspace).user
    with pytest.raises(CommandError):
        run("issue_token", "--workspace", workspace.slug, "--user", outsider.email)
    with pytest.raises(CommandError):
        run("issue_token", "--workspace", "no-such-workspace", "--user", outsider.email)
    assert not ApiToken.objects.filter(membership__user=outsider).exists()


# seed_demo

DEMO_ROLES = {
    "admin@example.com": Role.SUPER_ADMIN,
    "marketer@example.com": Role.MARKETER,
    "rep1@example.com": Role.SALES_REP,
    "rep2@example.com": Role.SALES_REP,
}


def printed_password(output: str, email: str) -> str:
    match = re.search(rf"{re.escape(email)}.*password:\s*(\S+)", output)
    assert match, output
    return match.group(1)


def test_seed_demo_loads_a_usable_demo_workspace_once(db, client):
    output = run("seed_demo")

    workspace = Workspace.objects.get(slug="demo")
    roles = dict(Membership.objects.filter(workspace=workspace).values_list("user__email", "role"))
    assert roles == DEMO_ROLES
    for email in DEMO_ROLES:
        password = printed_password(output, email)
        client.logout()
        response = client.post("/accounts/login/", {"username": email, "password": password})
        assert response.status_code == 302, f"{email} could not sign in"
        assert client.get("/leads/").status_code == 200

    leads = Lead.objects.filter(workspace=workspace)
    assert 150 <= leads.count() <= 250
    assert leads.values("stage").distinct().count() > 1
    assert set(leads.values_list("stage__pipeline", flat=True)) == {Pipeline.objects.get(workspace=workspace, is_default=True).pk}
    assert leads.values("source_type").distinct().count() > 1
    assert LeadTag.objects.filter(lead__workspace=workspace).values("lead").distinct().count() > 10
    assert Note.objects.filter(workspace=workspace).count() > 10
    assert LeadActivity.objects.filter(workspace=workspace).values("lead").distinct().count() == leads.count()
    assert LeadActivity.objects.filter(workspace=workspace, type="stage_moved").exists()
    assert Stage.objects.filter(workspace=workspace).count() == 6

    lead_count, note_count = leads.count(), Note.objects.filter(workspace=workspace).count()
    second = run("seed_demo", "--password", "another-secret-1")

    assert Lead.objects.filter(workspace=workspace).count() == lead_count
    assert Note.objects.filter(workspace=workspace).count() == note_count
    assert Workspace.objects.filter(slug="demo").count() == 1
    assert Membership.objects.filter(workspace=workspace).count() == 4
    assert User.objects.filter(email__in=DEMO_ROLES).count() == 4
    assert printed_password(second, "rep1@example.com") == "another-secret-1"
    client.logout()
    assert client.post("/accounts/login/", {"username": "rep1@example.com", "password": "another-secret-1"}).status_code == 302
