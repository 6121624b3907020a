"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

They are skipped, with the reason printed in the summary, when no Chromium is installed
(`.ci/run` installs it).
"""

import os
import shutil

import pytest

from tests.workspaces.factories import UserFactory, WorkspaceFactory, member
from workspaces.models import Role

# Playwright's sync API runs an event loop in the main thread; Django's ORM calls from the test
# body are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
PASSWORD = "pass-word-123"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            if not CHROMIUM:
                item.add_marker(pytest.mark.skip(reason="browser tests need Chromium (apt-get install chromium); .ci/run installs it"))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def e2e_workspace(transactional_db):
    return WorkspaceFactory()


@pytest.fixture
def login(page, live_server):
    """login(role) → signs a new member with that role in and opens the board; returns the user."""

    def sign_in(workspace, role=Role.MARKETER, user=None):
        user = user or UserFactory()
        if not user.memberships.filter(workspace=workspace).exists():
            member(workspace, role=role, user=user)
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", user.email)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/leads/")
        return user

    return sign_in


def column(page, stage_name):
    return page.locator(f"section.column[aria-label='{stage_name}']")


def card(page, lead):
    return page.locator(f"#card-{lead.pk}")
