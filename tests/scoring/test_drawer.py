"""The board's lead drawer explains the score (total, band, one row per factor, the model version) and,
once the score has changed, draws it over time."""

import html
import re

import pytest
from django.core.cache import cache
from django.test import Client

from scoring.presets import default_model_json
from scoring.services import scoring_model_update
from tests.leads.factories import make_lead
from tests.scoring.test_services import FIT, create_lead, patch_lead, track
from tests.workspaces.factories import member
from workspaces.models import Role

pytestmark = pytest.mark.django_db

SCORE_SECTION = re.compile(r'<section aria-labelledby="score-heading" class="score">(.*?)</section>', re.S)
ROW = re.compile(r"<tr><td>(.*?)</td><td class=\"num\">(.*?)</td></tr>", re.S)
TAG = re.compile(r"<[^>]+>")
TIMES = "\N{MULTIPLICATION SIGN}"  # the drawer writes an event's count as TIMES + count


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def browser_as(workspace):
    """browser_as(role) → a Client signed in as a new member of the workspace with `role`."""

    def make(role: str = Role.MARKETER) -> Client:
        client = Client()
        client.force_login(member(workspace, role=role).user)
        return client

    return make


def score_section(client: Client, lead) -> str:
    response = client.get(f"/leads/{lead.pk}/")
    assert response.status_code == 200
    return SCORE_SECTION.search(response.content.decode()).group(1)


def rows(section: str) -> list[tuple[str, str]]:
    """The breakdown's (factor, points) rows as a person reads them."""
    return [(" ".join(html.unescape(TAG.sub("", factor)).split()), points) for factor, points in ROW.findall(section)]


def test_the_drawer_shows_the_total_band_factor_rows_and_model_version(api, capture, browser_as):
    lead = create_lead(api, capture, **FIT)

    section = score_section(browser_as(), lead)

    assert '<span class="score-total" data-testid="score-total">45</span>' in section
    assert '<span class="band band-warm">warm</span>' in section
    assert rows(section) == [
        ("jobTitle (Marketing Director)", "+20"),
        ("companySize (50-200)", "+10"),
        ("industry (Technology)", "+15"),
    ]
    assert "Demographic 45 · behavioural 0" in section
    assert "Scoring model v1" in section


def test_after_changes_the_drawer_draws_the_score_over_time(api, capture, browser_as):
    lead = create_lead(api, capture, **FIT)  # 0 -> 45
    lead = track(api, capture, lead, "demo_requested", *["pricing_page_viewed"] * 4)  # -> 100
    lead = patch_lead(api, capture, lead, title="Data Analyst")  # director 20 -> analyst 5: 85

    section = score_section(browser_as(), lead)

    assert '<span class="score-total" data-testid="score-total">85</span>' in section
    assert rows(section) == [
        ("jobTitle (Data Analyst)", "+5"),
        ("companySize (50-200)", "+10"),
        ("industry (Technology)", "+15"),
        (f"pricing_page_viewed {TIMES}3", "+30"),
        (f"demo_requested {TIMES}1", "+25"),
    ]
    assert "<svg" in section
    # 0, 45, 100, 85 from left to right, scaled to the highest (100) on a 280 by 60 chart.
    assert 'points="0.0,60.0 93.3,33.0 186.7,0.0 280.0,9.0"' in section
    assert 'aria-label="Score over time: 3 changes since' in section
    assert "Score over time (last 3 changes, top 100)" in section


def test_a_lead_with_no_score_history_has_no_chart(workspace, browser_as):
    lead = make_lead(workspace, **FIT)  # its processing never ran, so no change is recorded yet

    section = score_section(browser_as(), lead)

    assert '<span class="score-total" data-testid="score-total">45</span>' in section  # the breakdown is computed now
    assert "<svg" not in section


def test_lead_data_in_the_breakdown_is_escaped(api, capture, browser_as):
    lead = create_lead(api, capture, title="<script>alert(1)</script> Director", company={"name": "Acme"})

    section = score_section(browser_as(), lead)

    assert "<script>alert(1)</script>" not in section
    assert "(&lt;script&gt;alert(1)&lt;/script&gt; Director)" in section
    assert rows(section) == [("jobTitle (<script>alert(1)</script> Director)", "+20")]


def test_a_viewer_sees_the_breakdown_of_the_current_model(workspace, api, capture, browser_as):
    lead = create_lead(api, capture, **FIT)
    config = default_model_json()
    config["demographic"]["industry"][0]["points"] = 25
    with capture(execute=True):
        scoring_model_update(workspace=workspace, config=config)

    section = score_section(browser_as(Role.VIEWER), lead)

    assert '<span class="score-total" data-testid="score-total">55</span>' in section
    assert ("industry (Technology)", "+25") in rows(section)
    assert "Scoring model v2" in section
    assert "Score over time (last 2 changes, top 55)" in section
