"""The segment pages as a signed-in browser uses them: the list, the builder (save, errors shown next to
the form), the live-count partial, the member list and delete; read-only for a Viewer; tenant-scoped."""

import html
import json
import re

import pytest
from django.test import Client

from leads.segments.models import Segment, SegmentMembership
from tests.leads.segments.factories import SCORE_50, committed, enterprise_lead, lead, make_segment, member_ids
from tests.workspaces.factories import UserFactory, member
from workspaces.models import Role

pytestmark = pytest.mark.django_db

GERMANY = {"all": [{"field": "country", "operator": "eq", "value": "DE"}]}
MEMBER_COUNT = re.compile(r'<span data-testid="member-count">(\d+)</span>')
PREVIEW_COUNT = re.compile(r'<strong data-testid="preview-count">(\d+)</strong>')
ERRORS = re.compile(r"<li><code>(.*?)</code>: (.*?)</li>", re.S)


@pytest.fixture
def web_as(workspace):
    def make(role: str = Role.MARKETER, of_workspace=None) -> Client:
        user = UserFactory()
        member(of_workspace or workspace, role=role, user=user)
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def marketer(web_as):
    return web_as(Role.MARKETER)


@pytest.fixture
def viewer(web_as):
    return web_as(Role.VIEWER)


def text(response) -> str:
    return response.content.decode()


def errors(response) -> dict[str, str]:
    return {html.unescape(path): html.unescape(message) for path, message in ERRORS.findall(text(response))}


def save(client, url: str, **fields):
    data = {"name": "Germany", "description": "", "criteria": json.dumps(GERMANY), "refresh_interval": "hourly", "automation": ""}
    data.update({key: json.dumps(value) if isinstance(value, (dict, list)) else value for key, value in fields.items()})
    with committed():
        return client.post(url, data)


# The list


def test_the_list_shows_each_segment_with_its_members_and_schedule(workspace, other_workspace, marketer):
    lead(workspace, name="Dee", country="DE")
    germany = make_segment(workspace, GERMANY, name="Germany", refresh_interval="daily")
    make_segment(workspace, SCORE_50, name="Hot leads")
    make_segment(other_workspace, GERMANY, name="Their segment")

    response = marketer.get("/segments/")

    assert response.status_code == 200
    page = text(response)
    rows = re.findall(
        r'<tr data-segment-id="([^"]+)">\s*<td><a href="/segments/[^"]+/">(.*?)</a>.*?<td>(\d+)</td>\s*<td>(.*?)</td>', page, re.S
    )
    assert [(name, count, interval) for _, name, count, interval in rows] == [("Germany", "1", "Daily"), ("Hot leads", "0", "Hourly")]
    assert rows[0][0] == str(germany.pk)
    assert "Their segment" not in page
    assert 'href="/segments/new"' in page


def test_a_viewer_sees_the_list_without_the_new_button(workspace, viewer):
    make_segment(workspace, GERMANY, name="Germany")

    page = text(viewer.get("/segments/"))

    assert "Germany" in page
    assert 'href="/segments/new"' not in page
    assert viewer.get("/segments/new").status_code == 403


def test_pages_need_a_sign_in(workspace):
    segment = make_segment(workspace, GERMANY)
    anonymous = Client()

    for url in ("/segments/", "/segments/new", f"/segments/{segment.pk}/"):
        response = anonymous.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    assert anonymous.post("/segments/preview", {"criteria": json.dumps(GERMANY)}).status_code == 302


# The builder


def test_the_builder_starts_from_an_example_and_lists_the_fields(marketer):
    response = marketer.get("/segments/new")

    assert response.status_code == 200
    page = text(response)
    criteria = re.search(r'<textarea id="criteria-json" name="criteria"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    assert json.loads(html.unescape(criteria)) == SCORE_50
    fields = json.loads(re.search(r'<script id="segment-fields" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert fields["company.size"]["operators"]["gte"] == "number"
    assert fields["events.<name>"]["window"] is True
    assert "js/segments.js" in page
    assert "Save segment" in page


def test_saving_a_new_segment_lands_on_its_page_with_its_members(workspace, marketer):
    dee = lead(workspace, name="Dee Deutsch", country="DE", company={"name": "Berlin GmbH"})
    lead(workspace, name="Fra Nce", country="FR")

    response = save(
        marketer,
        "/segments/new",
        name="Germany",
        description="Leads in Germany",
        refresh_interval="daily",
        automation={"onEnter": [{"action": "tag", "tags": ["de"]}]},
    )

    segment = Segment.objects.get(workspace=workspace)
    assert response.status_code == 302
    assert response["Location"] == f"/segments/{segment.pk}/"
    assert (segment.name, segment.description, segment.refresh_interval, segment.criteria) == (
        "Germany",
        "Leads in Germany",
        "daily",
        GERMANY,
    )
    assert segment.automation == {"onEnter": [{"action": "tag", "tags": ["de"]}], "onExit": []}
    page = text(marketer.get(response["Location"]))
    assert "Saved Germany: 1 lead." in page
    assert MEMBER_COUNT.search(page).group(1) == "1"
    assert f'href="/leads/?lead={dee.pk}"' in page
    assert "Dee Deutsch" in page and "Berlin GmbH" in page and "Fra Nce" not in page
    # The baseline fill ran no automation.
    assert not dee.tags.exists()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"criteria": {"all": [{"field": "company.employees", "operator": "gte", "value": 200}]}}, "criteria.all[0].field"),
        ({"criteria": {"any": [{"field": "score", "operator": "gte"}]}}, "criteria.any[0].value"),
        ({"criteria": '{"all": [ {"field": "score", '}, "criteria"),
        ({"automation": {"onEnter": [{"action": "tag", "tags": ["x"]}, {"action": "call"}]}}, "automation.onEnter[1].action"),
        ({"automation": "{not json"}, "automation"),
        ({"refresh_interval": "weekly"}, "refreshInterval"),
        ({"name": "  "}, "name"),
    ],
    ids=["unknown-field", "missing-value", "broken-json", "automation-action", "automation-json", "interval", "name"],
)
def test_an_invalid_builder_post_shows_the_error_by_its_path_and_keeps_the_input(workspace, marketer, fields, expected):
    response = save(marketer, "/segments/new", **({"name": "My draft"} | fields))

    assert response.status_code == 400
    found = errors(response)
    assert list(found) == [expected], found
    assert not Segment.objects.exists()
    page = text(response)
    if "name" not in fields:
        assert 'value="My draft"' in page
    if isinstance(fields.get("criteria"), str):
        assert "Not valid JSON" in found["criteria"]
        textarea = re.search(r'<textarea id="criteria-json" name="criteria"[^>]*>(.*?)</textarea>', page, re.S).group(1)
        assert html.unescape(textarea) == fields["criteria"]


def test_an_invalid_post_keeps_the_chosen_refresh_interval(workspace, marketer):
    segment = make_segment(workspace, GERMANY, refresh_interval="hourly")
    bad = {"all": [{"field": "nope", "operator": "eq", "value": 1}]}

    for url in ("/segments/new", f"/segments/{segment.pk}/"):
        response = save(marketer, url, refresh_interval="daily", criteria=bad)

        assert response.status_code == 400
        selected = re.findall(r'<option value="([^"]+)" selected>', text(response))
        assert selected == ["daily"], url


def test_editing_the_criteria_on_the_segment_page_refills_it(workspace, marketer):
    dee = lead(workspace, name="Dee", country="DE")
    ari = lead(workspace, name="Ari", country="AT")
    segment = make_segment(workspace, GERMANY, name="Germany")

    response = save(
        marketer, f"/segments/{segment.pk}/", name="Austria", criteria={"all": [{"field": "country", "operator": "eq", "value": "AT"}]}
    )

    assert response.status_code == 302
    segment.refresh_from_db()
    assert (segment.name, member_ids(segment)) == ("Austria", {ari.pk})
    assert dee.pk not in member_ids(segment)


def test_an_invalid_edit_shows_the_error_and_changes_nothing(workspace, marketer):
    segment = make_segment(workspace, GERMANY, name="Germany")

    response = save(
        marketer, f"/segments/{segment.pk}/", name="Renamed", criteria={"none": [{"field": "tags", "operator": "gt", "value": 1}]}
    )

    assert response.status_code == 400
    assert list(errors(response)) == ["criteria.none[0].operator"]
    assert 'value="Renamed"' in text(response)
    segment.refresh_from_db()
    assert (segment.name, segment.criteria) == ("Germany", GERMANY)


# The live count


def test_the_preview_partial_shows_the_live_count_and_first_members(workspace, marketer):
    enterprise_lead(workspace, "Ada Top")
    enterprise_lead(workspace, "Cy Low", title="")

    response = marketer.post("/segments/preview", {"criteria": json.dumps(SCORE_50)})

    assert response.status_code == 200
    page = text(response)
    assert page.lstrip().startswith('<div id="segment-preview"')
    assert PREVIEW_COUNT.search(page).group(1) == "1"
    assert "</strong> lead match now." in page
    assert "Ada Top · Ada Top Corp · score 55" in page
    assert "Cy Low" not in page
    assert not Segment.objects.exists() and not SegmentMembership.objects.exists()


def test_the_preview_partial_names_the_bad_spot(marketer):
    response = marketer.post(
        "/segments/preview", {"criteria": json.dumps({"all": [{"any": [{"field": "score", "operator": "within", "value": "2d"}]}]})}
    )

    assert response.status_code == 200
    assert list(errors(response)) == ["criteria.all[0].any[0].operator"]
    assert PREVIEW_COUNT.search(text(response)) is None
    broken = marketer.post("/segments/preview", {"criteria": "{"})
    assert list(errors(broken)) == ["criteria"]
    assert marketer.get("/segments/preview").status_code == 405


def test_a_viewer_may_use_the_live_count(workspace, viewer):
    enterprise_lead(workspace, "Ada Top")

    response = viewer.post("/segments/preview", {"criteria": json.dumps(SCORE_50)})

    assert PREVIEW_COUNT.search(text(response)).group(1) == "1"


# Members and delete


def test_the_segment_page_lists_the_newest_fifty_members_and_says_how_many_more(workspace, marketer):
    for n in range(52):
        lead(workspace, name=f"Member {n:02d}", country="DE")
    segment = make_segment(workspace, GERMANY)

    page = text(marketer.get(f"/segments/{segment.pk}/"))

    assert MEMBER_COUNT.search(page).group(1) == "52"
    assert len(re.findall(r'<a href="/leads/\?lead=', page)) == 50
    assert "Showing the 50 newest of 52" in page
    assert f"GET /api/v1/segments/{segment.pk}/members" in page


def test_an_empty_segment_says_so(workspace, marketer):
    segment = make_segment(workspace, GERMANY)

    page = text(marketer.get(f"/segments/{segment.pk}/"))

    assert MEMBER_COUNT.search(page).group(1) == "0"
    assert "No members." in page


def test_deleting_a_segment_returns_to_the_list_and_keeps_its_leads(workspace, marketer):
    dee = lead(workspace, name="Dee", country="DE")
    segment = make_segment(workspace, GERMANY, name="Germany")

    response = marketer.post(f"/segments/{segment.pk}/delete")

    assert response.status_code == 302 and response["Location"] == "/segments/"
    assert not Segment.objects.filter(pk=segment.pk).exists()
    assert type(dee).objects.filter(pk=dee.pk, deleted_at__isnull=True).exists()
    page = text(marketer.get("/segments/"))
    assert "Deleted Germany. Its leads are untouched." in page
    assert "No segments yet." in page
    assert marketer.get(f"/segments/{segment.pk}/delete").status_code == 405


# Read-only for a Viewer


def test_a_viewer_sees_a_segment_and_its_members_but_cannot_change_or_delete_it(workspace, viewer):
    lead(workspace, name="Dee Deutsch", country="DE")
    segment = make_segment(workspace, GERMANY, name="Germany")

    page = text(viewer.get(f"/segments/{segment.pk}/"))
    assert "Dee Deutsch" in page
    assert MEMBER_COUNT.search(page).group(1) == "1"
    assert "Save segment" not in page and "Delete segment" not in page

    edit = save(viewer, f"/segments/{segment.pk}/", name="Hijacked", criteria={"all": []})
    delete = viewer.post(f"/segments/{segment.pk}/delete")
    create = save(viewer, "/segments/new", name="Mine")

    assert (edit.status_code, delete.status_code, create.status_code) == (403, 403, 403)
    segment.refresh_from_db()
    assert (segment.name, segment.criteria, Segment.objects.count()) == ("Germany", GERMANY, 1)


def test_another_workspaces_segment_is_not_found(workspace, other_workspace, marketer):
    theirs = make_segment(other_workspace, GERMANY, name="Their segment")

    assert marketer.get(f"/segments/{theirs.pk}/").status_code == 404
    assert save(marketer, f"/segments/{theirs.pk}/", name="Mine now").status_code == 404
    assert marketer.post(f"/segments/{theirs.pk}/delete").status_code == 404
    assert marketer.get("/segments/not-a-uuid/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Their segment"


def test_names_from_users_are_escaped(workspace, marketer):
    xss = "<img src=x onerror=alert(1)>"
    lead(workspace, name=xss, country="DE")
    segment = make_segment(workspace, GERMANY, name=xss)

    for page in (text(marketer.get("/segments/")), text(marketer.get(f"/segments/{segment.pk}/"))):
        assert xss not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
