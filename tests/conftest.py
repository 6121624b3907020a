import pytest
from rest_framework.test import APIClient

from tests.workspaces.factories import UserFactory, WorkspaceFactory, member, token_for
from workspaces.models import Role


@pytest.fixture
def workspace(db):
    return WorkspaceFactory()


@pytest.fixture
def other_workspace(db):
    return WorkspaceFactory()


def _client_for(membership) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(membership)}")
    client.membership = membership
    client.user = membership.user
    client.workspace = membership.workspace
    return client


@pytest.fixture
def api_as(db, workspace):
    """api_as(role, workspace=None) → an APIClient holding a bearer token of a new member with `role`."""

    def make(role: str = Role.MARKETER, of_workspace=None) -> APIClient:
        return _client_for(member(of_workspace or workspace, role=role))

    return make


@pytest.fixture
def api(api_as):
    """A Marketer's API client (leads:view + leads:manage)."""
    return api_as(Role.MARKETER)


@pytest.fixture
def user(db):
    return UserFactory()
