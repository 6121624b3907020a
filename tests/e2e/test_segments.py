"""The segment builder in a real browser: groups and rows drawn by static/js/segments.js, the live count
from the server as the criteria change, saving, and errors naming the bad spot."""

import json
import re

import pytest
from playwright.sync_api import expect
from rest_framework.test import APIClient

from leads.segments.models import Segment
from leads.segments.services import segment_create
from tests.leads.factories import make_lead
from tests.leads.segments.factories import SEED_CRITERIA
from tests.workspaces.factories import member, token_for
from workspaces.models import Role

pytestmark = pytest.mark.django_db(transaction=True)


def enterprise(workspace, name: str, **data):
    """Scored by the default model: CEO 20 + 500+ employees 20 + Software 15 = 55."""
    data.setdefault("title", "CEO")
    return make_lead(workspace, name=name, company={"name": f"{name} Corp", "size": "500-1000", "industry": "Software"}, **data)


@pytest.fixture
def leads(e2e_workspace):
    """Ada (55, asked for a demo: 80), Bo (55) and Cy (35)."""
    ada = enterprise(e2e_workspace, "Ada Demo")
    enterprise(e2e_workspace, "Bo Browse")
    enterprise(e2e_workspace, "Cy Cold", title="")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(member(e2e_workspace, role=Role.MARKETER))}")
    response = api.post(
        "/api/v1/track",
        {"events": [{"type": "event", "name": "demo_requested", "leadId": str(ada.pk)}]},
        format="json",
        HTTP_USER_AGENT="acme-backend/1.0",
    )
    assert response.status_code == 202, response.content
    ada.refresh_from_db()
    assert ada.score == 80
    return ada


def preview_count(page):
    return page.get_by_test_id("preview-count")


def test_build_a_nested_segment_watching_the_live_count_then_save_it(page, live_server, login, e2e_workspace, leads):
    login(e2e_workspace)
    page.goto(f"{live_server.url}/segments/new")
    root = page.locator("#criteria-builder > .criteria-group")
    # The example criteria (score gte 50) drawn as one row, and counted.
    expect(root.locator(".criteria-row")).to_have_count(1)
    expect(preview_count(page)).to_have_text("2")

    # Start over: no condition matches every lead; add a condition, it defaults to score gte 50.
    root.get_by_label("Remove condition").click()
    expect(root.locator(".criteria-row")).to_have_count(0)
    expect(preview_count(page)).to_have_text("3")
    root.locator(":scope > .criteria-group-head").get_by_role("button", name="+ Condition").click()
    row = root.locator(":scope > .criteria-row")
    expect(row.get_by_label("Field", exact=True)).to_have_value("score")
    expect(row.get_by_label("Operator")).to_have_value("gte")
    expect(row.get_by_label("Value", exact=True)).to_have_value("50")
    expect(preview_count(page)).to_have_text("2")

    # A nested "any" group: empty, it matches nobody; with "asked for a demo" in it, Ada.
    root.locator(":scope > .criteria-group-head").get_by_role("button", name="+ Group").click()
    group = root.locator(":scope > .criteria-group")
    expect(group.get_by_label("Match")).to_have_value("any")
    expect(preview_count(page)).to_have_text("0")
    group.get_by_role("button", name="+ Condition").click()
    nested = group.locator(".criteria-row")
    nested.get_by_label("Field", exact=True).select_option("__event")
    nested.get_by_label("Custom field or event name").fill("demo_requested")
    nested.get_by_label("Operator").select_option("exists")
    expect(nested.get_by_label("Value", exact=True)).to_be_hidden()
    expect(preview_count(page)).to_have_text("1")
    expect(page.locator(".preview-members")).to_contain_text("Ada Demo · Ada Demo Corp · score 80")

    page.fill("#segment-name", "Demo askers")
    page.get_by_role("button", name="Save segment").click()

    page.wait_for_url(re.compile(r"/segments/[0-9a-f-]{36}/$"))
    segment = Segment.objects.get(workspace=e2e_workspace)
    assert page.url == f"{live_server.url}/segments/{segment.pk}/"
    expect(page.get_by_test_id("member-count")).to_have_text("1")
    expect(page.locator(".flash")).to_contain_text("Saved Demo askers: 1 lead.")
    expect(page.locator(".data-table tbody tr")).to_have_count(1)
    expect(page.locator(".data-table tbody")).to_contain_text("Ada Demo")
    assert segment.criteria == {
        "all": [{"field": "score", "operator": "gte", "value": 50}, {"any": [{"field": "events.demo_requested", "operator": "exists"}]}]
    }
    # The saved segment's page draws the same groups and rows back.
    expect(root.locator(":scope > .criteria-row")).to_have_count(1)
    expect(root.locator(":scope > .criteria-group .criteria-row")).to_have_count(1)
    expect(preview_count(page)).to_have_text("1")


def test_changing_a_rows_operator_and_value_updates_the_live_count(page, live_server, login, e2e_workspace, leads):
    login(e2e_workspace)
    page.goto(f"{live_server.url}/segments/new")
    row = page.locator("#criteria-builder .criteria-row")
    expect(preview_count(page)).to_have_text("2")

    row.get_by_label("Operator").select_option("lt")
    expect(preview_count(page)).to_have_text("1")
    expect(page.locator(".preview-members")).to_contain_text("Cy Cold")
    row.get_by_label("Value", exact=True).fill("90")
    expect(preview_count(page)).to_have_text("3")
    assert json.loads(page.locator("#criteria-json").input_value()) == {"all": [{"field": "score", "operator": "lt", "value": 90}]}


def test_saving_seed_000s_segment_unchanged_keeps_its_criteria_as_written(page, live_server, login, e2e_workspace, leads):
    segment = segment_create(workspace=e2e_workspace, name="High-Intent Enterprise Leads", criteria=SEED_CRITERIA)
    assert segment.member_count == 1
    login(e2e_workspace)
    page.goto(f"{live_server.url}/segments/{segment.pk}/")
    # Drawn as "All of" the all-group and the none-group, with their rows.
    root = page.locator("#criteria-builder > .criteria-group")
    modes = root.locator(":scope > .criteria-group > .criteria-group-head").get_by_label("Match")
    expect(modes.nth(0)).to_have_value("all")
    expect(modes.nth(1)).to_have_value("none")
    expect(root.locator(":scope > .criteria-group")).to_have_count(2)
    expect(root.locator(".criteria-row")).to_have_count(7)
    expect(preview_count(page)).to_have_text("1")

    page.fill("#segment-name", "Enterprise, high intent")
    page.get_by_role("button", name="Save segment").click()

    expect(page.locator(".flash")).to_contain_text("Saved Enterprise, high intent: 1 lead.")
    saved = Segment.objects.get(pk=segment.pk)
    assert saved.name == "Enterprise, high intent"
    assert saved.criteria == SEED_CRITERIA
    assert saved.last_refreshed_at == segment.last_refreshed_at  # not refilled: the criteria did not change


def test_criteria_typed_as_json_with_an_unknown_field_show_the_error_by_its_path(page, live_server, login, e2e_workspace, leads):
    login(e2e_workspace)
    page.goto(f"{live_server.url}/segments/new")
    expect(preview_count(page)).to_have_text("2")

    page.get_by_text("Criteria as JSON").click()
    page.fill("#criteria-json", json.dumps({"all": [{"field": "company.employees", "operator": "gte", "value": 200}]}))
    page.locator("#criteria-json").blur()

    preview = page.locator("#segment-preview")
    expect(preview.get_by_role("alert")).to_contain_text("criteria.all[0].field: Unknown field 'company.employees'")
    expect(preview_count(page)).to_have_count(0)

    page.fill("#segment-name", "Big companies")
    page.get_by_role("button", name="Save segment").click()

    expect(page.locator("ul.errors").first).to_contain_text("criteria.all[0].field: Unknown field 'company.employees'")
    assert page.url == f"{live_server.url}/segments/new"
    expect(page.locator("#segment-name")).to_have_value("Big companies")
    assert json.loads(page.locator("#criteria-json").input_value()) == {
        "all": [{"field": "company.employees", "operator": "gte", "value": 200}]
    }
    assert not Segment.objects.exists()


def test_broken_json_is_kept_for_fixing_with_the_error_shown(page, live_server, login, e2e_workspace, leads):
    login(e2e_workspace)
    page.goto(f"{live_server.url}/segments/new")
    expect(preview_count(page)).to_have_text("2")
    broken = '{"all": [{"field": "score", "operator": "gte", "value": 50}'

    page.get_by_text("Criteria as JSON").click()
    page.fill("#criteria-json", broken)
    page.locator("#criteria-json").blur()
    expect(page.locator("#segment-preview").get_by_role("alert")).to_contain_text("criteria: Not valid JSON")

    page.fill("#segment-name", "Broken")
    page.get_by_role("button", name="Save segment").click()

    expect(page.locator("ul.errors").first).to_contain_text("criteria: Not valid JSON")
    # What the person typed is still there to fix, and the live count does not pretend it matched.
    page.get_by_text("Criteria as JSON").click()
    expect(page.locator("#criteria-json")).to_have_value(broken)
    expect(page.locator("#segment-preview").get_by_role("alert")).to_contain_text("criteria: Not valid JSON")
    assert not Segment.objects.exists()


def test_a_viewer_sees_the_segment_and_its_live_count_without_save_or_delete(page, live_server, login, e2e_workspace, leads):
    segment = segment_create(workspace=e2e_workspace, name="Hot", criteria={"all": [{"field": "score", "operator": "gte", "value": 50}]})
    login(e2e_workspace, role=Role.VIEWER)
    page.goto(f"{live_server.url}/segments/{segment.pk}/")

    expect(page.get_by_test_id("member-count")).to_have_text("2")
    expect(preview_count(page)).to_have_text("2")
    expect(page.locator(".data-table tbody tr")).to_have_count(2)
    expect(page.get_by_role("button", name="Save segment")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete segment")).to_have_count(0)
    assert re.search(r"/segments/[^/]+/$", page.url)
