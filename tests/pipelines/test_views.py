"""The kanban board and pipeline settings pages, as a signed-in person's browser (or htmx) requests them."""

import html
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from leads.models import Lead
from pipelines.models import Pipeline, Stage
from tests.leads.factories import make_lead
from tests.pipelines.factories import default_stage_names, make_pipeline
from tests.workspaces.factories import UserFactory, member
from workspaces.models import Role

BOARD = "/leads/"
HTMX_REFRESH = {"HX-Request": "true", "HX-Target": "board-columns"}

COLUMN = re.compile(r'<section class="column"[^>]*aria-label="([^"]*)">(.*?)</section>', re.S)
COUNT = re.compile(r'<span class="count" data-stage-count="[^"]+"[^>]*>(\d+)</span>')
CARD_ID = re.compile(r'<li class="lead-card" id="card-([0-9a-f-]+)"')
CARD_NAME = re.compile(r'<span class="name">(.*?)</span>')
LOADER = re.compile(r'<li class="more" hx-get="([^"]+)"')
REFRESH = re.compile(r'<div id="board-columns" class="board" hx-get="([^"]+)"')
SETTINGS_STAGE_NAME = re.compile(r'<input id="name-[0-9a-f-]+" name="stage_name" value="([^"]*)"')


def web_client(user, *, csrf_checks: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf_checks)
    client.force_login(user)
    return client


@pytest.fixture
def web_as(workspace):
    """web_as(role, of_workspace=None) → a Client signed in as a new member with `role`."""

    def make(role: str = Role.MARKETER, of_workspace=None) -> Client:
        membership = member(of_workspace or workspace, role=role)
        client = web_client(membership.user)
        client.user = membership.user
        return client

    return make


@pytest.fixture
def marketer(web_as):
    return web_as(Role.MARKETER)


def columns(content: str) -> list[dict]:
    """The board's columns, in page order: name, count badge, card ids, card names and the "more" loader's URL."""
    result = []
    for name, body in COLUMN.findall(content):
        loader = LOADER.search(body)
        result.append(
            {
                "name": html.unescape(name),
                "count": int(COUNT.search(body).group(1)),
                "card_ids": CARD_ID.findall(body),
                "card_names": [html.unescape(n) for n in CARD_NAME.findall(body)],
                "loader": html.unescape(loader.group(1)) if loader else None,
            }
        )
    return result


def column_named(content: str, name: str) -> dict:
    return next(column for column in columns(content) if column["name"] == name)


def all_card_names(content: str) -> set[str]:
    return {html.unescape(name) for name in CARD_NAME.findall(content)}


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def default_pipeline(workspace) -> Pipeline:
    return Pipeline.objects.get(workspace=workspace, is_default=True)


def stage_of(workspace, name: str, pipeline=None) -> Stage:
    return Stage.objects.get(pipeline=pipeline or default_pipeline(workspace), name=name)


def pipeline_state(workspace) -> dict:
    """Everything the settings pages could change, read fresh from the database."""
    return {
        "pipelines": list(Pipeline.objects.filter(workspace=workspace).order_by("pk").values_list("pk", "name", "is_default")),
        "stages": list(
            Stage.objects.filter(workspace=workspace).order_by("pk").values_list("pk", "pipeline_id", "name", "position", "color", "type")
        ),
        "leads": list(Lead.objects.filter(workspace=workspace).order_by("pk").values_list("pk", "pipeline_id", "stage_id")),
    }


def settings_url(pipeline) -> str:
    return f"/pipelines/{pipeline.pk}/settings"


def settings_form(pipeline, **overrides) -> dict:
    """The settings form as the page posts it unchanged: one row per stage in order."""
    stages = list(pipeline.stages.order_by("position"))
    form = {
        "name": pipeline.name,
        "stage_id": [str(s.pk) for s in stages],
        "stage_name": [s.name for s in stages],
        "stage_color": [s.color.lower() for s in stages],
        "stage_type": [s.type for s in stages],
    }
    form.update(overrides)
    return form


# Access


@pytest.mark.parametrize(
    "path",
    [BOARD, "/", "/leads/columns/00000000-0000-0000-0000-000000000000", "/pipelines/00000000-0000-0000-0000-000000000000/settings"],
)
def test_anonymous_visitor_is_sent_to_the_login_page(db, path):
    response = Client().get(path)
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == "/accounts/login/"


def test_anonymous_board_redirect_returns_to_the_board_after_login(db):
    response = Client().get(BOARD)
    assert response["Location"] == "/accounts/login/?next=/leads/"


def test_signed_in_user_without_membership_gets_403(workspace):
    make_lead(workspace, name="Secret Lead")
    client = web_client(UserFactory())
    response = client.get(BOARD)
    assert response.status_code == 403
    assert b"Secret Lead" not in response.content
    assert client.get(settings_url(default_pipeline(workspace))).status_code == 403


@pytest.mark.parametrize("role", [Role.VIEWER, Role.SALES_REP, Role.MARKETER, Role.ADMIN])
def test_every_role_sees_the_board(web_as, workspace, role):
    make_lead(workspace, name="Jane Doe")
    response = web_as(role).get(BOARD)
    assert response.status_code == 200
    assert "Jane Doe" in column_named(response.content.decode(), "New")["card_names"]


# Columns, counts and paging


def test_board_shows_one_column_per_stage_in_order_with_exact_counts(marketer, workspace):
    make_lead(workspace, name="Ann", stage=stage_of(workspace, "Qualified"))
    make_lead(workspace, name="Bob", stage=stage_of(workspace, "Qualified"))
    make_lead(workspace, name="Cid", stage=stage_of(workspace, "Won"))
    make_lead(workspace, name="Dee")

    response = marketer.get(BOARD)

    assert response.status_code == 200
    content = response.content.decode()
    assert [(c["name"], c["count"], sorted(c["card_names"])) for c in columns(content)] == [
        ("New", 1, ["Dee"]),
        ("Contacted", 0, []),
        ("Qualified", 2, ["Ann", "Bob"]),
        ("Proposal", 0, []),
        ("Won", 1, ["Cid"]),
        ("Lost", 0, []),
    ]
    assert '<span class="total" id="board-total">4 leads</span>' in content


def test_board_follows_the_pipelines_stage_order(marketer, workspace):
    pipeline = default_pipeline(workspace)
    Stage.objects.filter(pipeline=pipeline, name="Lost").update(position=0)
    Stage.objects.filter(pipeline=pipeline, name="New").update(position=9)
    names = [c["name"] for c in columns(marketer.get(BOARD).content.decode())]
    assert names == ["Lost", "Contacted", "Qualified", "Proposal", "Won", "New"]


def test_deleted_leads_are_not_on_the_board_nor_counted(marketer, workspace):
    make_lead(workspace, name="Alive")
    gone = make_lead(workspace, name="Gone")
    Lead.objects.filter(pk=gone.pk).update(deleted_at="2026-01-01T00:00:00Z")
    new = column_named(marketer.get(BOARD).content.decode(), "New")
    assert (new["count"], new["card_names"]) == (1, ["Alive"])


def test_a_long_column_shows_50_cards_and_loads_the_rest_on_scroll(marketer, workspace):
    leads = [make_lead(workspace, name=f"Bulk {n:02d}") for n in range(60)]
    make_lead(workspace, name="Elsewhere", stage=stage_of(workspace, "Won"))

    new = column_named(marketer.get(BOARD).content.decode(), "New")

    assert new["count"] == 60
    assert len(new["card_ids"]) == 50
    assert new["loader"] is not None
    assert urlsplit(new["loader"]).path == f"/leads/columns/{stage_of(workspace, 'New').pk}"
    assert query_of(new["loader"])["offset"] == ["50"]

    more = marketer.get(new["loader"])

    assert more.status_code == 200
    more_content = more.content.decode()
    rest = CARD_ID.findall(more_content)
    assert len(rest) == 10
    assert LOADER.search(more_content) is None
    assert set(new["card_ids"]) | set(rest) == {str(lead.pk) for lead in leads}
    assert "Elsewhere" not in more_content


def test_loader_pages_chain_until_the_column_ends(marketer, workspace):
    for n in range(101):
        make_lead(workspace, name=f"Many {n}")
    first = column_named(marketer.get(BOARD).content.decode(), "New")
    second = marketer.get(first["loader"]).content.decode()
    assert len(CARD_ID.findall(second)) == 50
    next_loader = html.unescape(LOADER.search(second).group(1))
    assert query_of(next_loader)["offset"] == ["100"]
    third = marketer.get(next_loader).content.decode()
    assert len(CARD_ID.findall(third)) == 1
    assert LOADER.search(third) is None


def test_a_searched_column_pages_newest_first(marketer, workspace):
    """The first page and the loader's pages keep one order, with or without a search."""
    matches = [make_lead(workspace, name=f"Match {n:02d}") for n in range(55)]
    make_lead(workspace, name="Other lead")
    start = timezone.now() - timedelta(days=1)
    for n, lead in enumerate(matches):
        Lead.objects.filter(pk=lead.pk).update(created_at=start + timedelta(minutes=(n * 7) % 55))
    newest_first = [str(lead.pk) for lead in Lead.objects.filter(name__startswith="Match").order_by("-created_at", "-id")]

    new = column_named(marketer.get(f"{BOARD}?search=match").content.decode(), "New")
    rest = CARD_ID.findall(marketer.get(new["loader"]).content.decode())

    assert new["count"] == 55
    assert new["card_ids"] + rest == newest_first
    assert column_named(marketer.get(BOARD).content.decode(), "New")["card_ids"][1:] == newest_first[:49]


def test_a_short_column_has_no_loader(marketer, workspace):
    for _ in range(50):
        make_lead(workspace)
    new = column_named(marketer.get(BOARD).content.decode(), "New")
    assert (new["count"], len(new["card_ids"]), new["loader"]) == (50, 50, None)


def test_loader_of_another_workspaces_stage_is_404(marketer, other_workspace):
    make_lead(other_workspace, name="Their Lead")
    response = marketer.get(f"/leads/columns/{stage_of(other_workspace, 'New').pk}?offset=0")
    assert response.status_code == 404
    assert b"Their Lead" not in response.content


@pytest.mark.parametrize("stage_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_loader_of_an_unknown_stage_is_404(marketer, stage_id):
    assert marketer.get(f"/leads/columns/{stage_id}").status_code == 404


# Filters


@pytest.fixture
def filter_leads(workspace, marketer):
    rep = member(workspace, role=Role.SALES_REP).user
    make_lead(workspace, name="Ann", company={"name": "Acme"}, source_type="webhook", owner=rep, tags=["hot"])
    make_lead(workspace, name="Bob", email="bob@acme.io", source_type="form", tags=["cold"])
    make_lead(workspace, name="Cid", source_type="webhook", owner=marketer.user, tags=["hot", "vip"])
    make_lead(workspace, name="Dee", source_type="manual", phone="+1 415 555 0100")
    return {"rep": rep.pk}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"Ann", "Bob", "Cid", "Dee"}),
        ("search=acme", {"Ann", "Bob"}),
        ("search=%2B14155550100", {"Dee"}),
        ("source=webhook", {"Ann", "Cid"}),
        ("owner={rep}", {"Ann"}),
        ("owner=me", {"Cid"}),
        ("owner=unassigned", {"Bob", "Dee"}),
        ("tag=HOT", {"Ann", "Cid"}),
        ("search=acme&tag=hot", {"Ann"}),
        ("source=webhook&owner=unassigned", set()),
    ],
)
def test_filters_narrow_the_cards_and_counts(marketer, filter_leads, query, expected):
    response = marketer.get(f"{BOARD}?{query.format(**filter_leads)}")
    assert response.status_code == 200
    content = response.content.decode()
    assert all_card_names(content) == expected
    assert column_named(content, "New")["count"] == len(expected)


def test_filter_form_keeps_the_chosen_values(marketer, filter_leads):
    content = marketer.get(f"{BOARD}?search=acme&source=webhook&owner={filter_leads['rep']}&tag=hot").content.decode()
    assert 'name="search" value="acme"' in content
    assert '<option value="webhook" selected>' in content
    assert f'<option value="{filter_leads["rep"]}" selected>' in content
    assert 'name="tag" value="hot"' in content


@pytest.mark.parametrize("owner", ["abc", "-1", "99999999999999999999999"])
def test_an_unparseable_owner_filter_is_ignored(marketer, filter_leads, owner):
    """lead_board_queryset promises that invalid filter values are ignored."""
    response = marketer.get(f"{BOARD}?owner={owner}")
    assert response.status_code == 200
    assert all_card_names(response.content.decode()) == {"Ann", "Bob", "Cid", "Dee"}


def test_filters_are_kept_in_the_loader_and_refresh_urls(marketer, workspace):
    owner = marketer.user
    for n in range(52):
        make_lead(workspace, name=f"Zeta {n}", source_type="form", owner=owner, tags=["hot"])
    make_lead(workspace, name="Zeta wrong source", source_type="api", owner=owner, tags=["hot"])
    make_lead(workspace, name="Zeta no owner", source_type="form", tags=["hot"])
    make_lead(workspace, name="Zeta no tag", source_type="form", owner=owner)
    make_lead(workspace, name="Other name", source_type="form", owner=owner, tags=["hot"])
    filters = {"search": ["zeta"], "source": ["form"], "owner": [str(owner.pk)], "tag": ["hot"]}
    query = "search=zeta&source=form&owner=" + str(owner.pk) + "&tag=hot"

    content = marketer.get(f"{BOARD}?{query}").content.decode()

    new = column_named(content, "New")
    assert (new["count"], len(new["card_ids"])) == (52, 50)
    loader_query = query_of(new["loader"])
    assert {key: loader_query[key] for key in filters} == filters
    refresh_query = query_of(html.unescape(REFRESH.search(content).group(1)))
    assert {key: refresh_query[key] for key in filters} == filters

    more = marketer.get(new["loader"]).content.decode()
    assert {html.unescape(n) for n in CARD_NAME.findall(more)} <= {f"Zeta {n}" for n in range(52)}
    assert len(CARD_ID.findall(more)) == 2
    assert LOADER.search(more) is None


def test_owner_me_filter_in_the_loader_means_the_viewer(web_as, workspace):
    rep = web_as(Role.SALES_REP)
    other = member(workspace, role=Role.SALES_REP).user
    for _ in range(51):
        make_lead(workspace, owner=rep.user)
    for _ in range(3):
        make_lead(workspace, owner=other)
    new = column_named(rep.get(f"{BOARD}?owner=me").content.decode(), "New")
    assert new["count"] == 51
    assert len(CARD_ID.findall(rep.get(new["loader"]).content.decode())) == 1


# Pipelines


def test_pipeline_parameter_switches_the_board(marketer, workspace):
    partners = make_pipeline(workspace, name="Partners", stage_names=("Intro", "Trial", "Signed"))
    make_lead(workspace, name="Partner Lead", stage=stage_of(workspace, "Trial", partners))
    make_lead(workspace, name="Sales Lead")

    content = marketer.get(f"{BOARD}?pipeline={partners.pk}").content.decode()

    assert [(c["name"], c["count"]) for c in columns(content)] == [("Intro", 0), ("Trial", 1), ("Signed", 0)]
    assert all_card_names(content) == {"Partner Lead"}
    assert f'<option value="{partners.pk}" selected>Partners</option>' in content

    default_content = marketer.get(BOARD).content.decode()
    assert [c["name"] for c in columns(default_content)] == default_stage_names()
    assert all_card_names(default_content) == {"Sales Lead"}


@pytest.mark.parametrize("foreign", [True, False])
def test_unknown_or_foreign_pipeline_falls_back_to_the_default(marketer, workspace, other_workspace, foreign):
    theirs = make_pipeline(other_workspace, name="Their Pipeline", stage_names=("Their Stage", "Their Other Stage"))
    make_lead(other_workspace, name="Their Lead", stage=stage_of(other_workspace, "Their Stage", theirs))
    make_lead(workspace, name="Our Lead")
    pipeline_id = theirs.pk if foreign else "not-a-uuid"

    response = marketer.get(f"{BOARD}?pipeline={pipeline_id}")

    assert response.status_code == 200
    content = response.content.decode()
    assert [c["name"] for c in columns(content)] == default_stage_names()
    assert all_card_names(content) == {"Our Lead"}
    assert "Their" not in content


# htmx partial


def test_htmx_refresh_gets_only_the_columns(marketer, workspace):
    make_lead(workspace, name="Jane Doe", source_type="webhook")

    response = marketer.get(f"{BOARD}?source=webhook", headers=HTMX_REFRESH)

    assert response.status_code == 200
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="board-columns"')
    assert content.count('id="board-columns"') == 1
    assert "<html" not in content
    assert 'class="filters"' not in content
    assert [c["name"] for c in columns(content)] == default_stage_names()
    assert column_named(content, "New")["card_names"] == ["Jane Doe"]
    assert query_of(html.unescape(REFRESH.search(content).group(1)))["source"] == ["webhook"]


def test_full_page_for_a_normal_request(marketer):
    content = marketer.get(BOARD).content.decode()
    assert content.startswith("<!doctype html>")
    assert content.count('id="board-columns"') == 1
    assert 'class="filters"' in content


# Pipeline settings


def test_settings_page_lists_the_stages_in_order(marketer, workspace):
    pipeline = default_pipeline(workspace)
    response = marketer.get(settings_url(pipeline))
    assert response.status_code == 200
    content = response.content.decode()
    names = SETTINGS_STAGE_NAME.findall(content)
    assert names == default_stage_names()
    assert f'value="{pipeline.name}"' in content
    assert "Delete this pipeline" not in content  # the default pipeline cannot be deleted


def test_settings_save_renames_reorders_recolours_retypes_adds_and_removes(marketer, workspace):
    pipeline = default_pipeline(workspace)
    by_name = {s.name: s for s in pipeline.stages.all()}
    qualified_lead = make_lead(workspace, name="In Qualified", stage=by_name["Qualified"])
    new_lead = make_lead(workspace, name="In New")
    order = ["Contacted", "New", "Qualified", "Proposal", "Won", "Lost"]  # Contacted moved up
    rows = [by_name[name] for name in order]
    form = {
        "name": "  Inbound  ",
        "stage_id": [str(s.pk) for s in rows] + [""],
        "stage_name": ["Contacted", "New", "Qualified", "Proposal", "Won!", "Lost", "Negotiation"],
        "stage_color": ["#f59e0b", "#3b82f6", "#8b5cf6", "#abcdef", "#22c55e", "#ef4444", "#0f0f0f"],
        "stage_type": ["open", "open", "open", "won", "won", "lost", "open"],
        "remove": [str(by_name["Qualified"].pk)],
        f"move_to_{by_name['Qualified'].pk}": str(by_name["Proposal"].pk),
    }

    response = marketer.post(settings_url(pipeline), form)

    assert response.status_code == 302
    assert response["Location"] == settings_url(pipeline)
    pipeline.refresh_from_db()
    assert pipeline.name == "Inbound"
    saved = [(s.name, s.color, s.type, s.position) for s in pipeline.stages.order_by("position")]
    assert saved == [
        ("Contacted", "#F59E0B", "open", 0),
        ("New", "#3B82F6", "open", 1),
        ("Proposal", "#ABCDEF", "won", 2),
        ("Won!", "#22C55E", "won", 3),
        ("Lost", "#EF4444", "lost", 4),
        ("Negotiation", "#0F0F0F", "open", 5),
    ]
    assert not Stage.objects.filter(pk=by_name["Qualified"].pk).exists()
    assert Stage.objects.get(pipeline=pipeline, name="Won!").pk == by_name["Won"].pk  # renamed in place, not replaced
    qualified_lead.refresh_from_db()
    new_lead.refresh_from_db()
    assert qualified_lead.stage_id == by_name["Proposal"].pk
    assert new_lead.stage_id == by_name["New"].pk

    page = marketer.get(response["Location"]).content.decode()
    assert "Pipeline saved." in page
    assert SETTINGS_STAGE_NAME.findall(page) == ["Contacted", "New", "Proposal", "Won!", "Lost", "Negotiation"]
    board = marketer.get(BOARD).content.decode()
    assert column_named(board, "Proposal")["card_names"] == ["In Qualified"]


def test_removed_stage_without_a_choice_sends_its_leads_to_the_first_stage(marketer, workspace):
    pipeline = default_pipeline(workspace)
    lost = stage_of(workspace, "Lost")
    lead = make_lead(workspace, stage=lost)
    response = marketer.post(settings_url(pipeline), {**settings_form(pipeline), "remove": [str(lost.pk)]})
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.stage_id == stage_of(workspace, "New").pk
    assert [s.name for s in pipeline.stages.order_by("position")] == default_stage_names()[:-1]


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.VIEWER])
def test_settings_are_refused_to_roles_without_manage(web_as, workspace, role):
    pipeline = default_pipeline(workspace)
    make_lead(workspace, stage=stage_of(workspace, "Won"))
    client = web_as(role)
    before = pipeline_state(workspace)
    won = stage_of(workspace, "Won")

    assert client.get(settings_url(pipeline)).status_code == 403
    response = client.post(
        settings_url(pipeline), {**settings_form(pipeline), "name": "Hijacked", "remove": [str(won.pk)], "stage_name": ["X"] * 6}
    )

    assert response.status_code == 403
    assert pipeline_state(workspace) == before


def test_settings_of_another_workspaces_pipeline_is_404(marketer, other_workspace):
    theirs = default_pipeline(other_workspace)
    before = pipeline_state(other_workspace)
    assert marketer.get(settings_url(theirs)).status_code == 404
    response = marketer.post(settings_url(theirs), {**settings_form(theirs), "name": "Hijacked"})
    assert response.status_code == 404
    assert b"Hijacked" not in response.content
    assert pipeline_state(other_workspace) == before


def test_settings_of_an_unknown_pipeline_is_404(marketer):
    assert marketer.get("/pipelines/not-a-uuid/settings").status_code == 404


def test_fewer_than_two_stages_is_refused_with_the_error_shown(marketer, workspace):
    pipeline = default_pipeline(workspace)
    make_lead(workspace, stage=stage_of(workspace, "Won"))
    before = pipeline_state(workspace)
    stages = list(pipeline.stages.order_by("position"))
    form = {**settings_form(pipeline), "name": "Renamed", "remove": [str(s.pk) for s in stages[1:]]}

    response = marketer.post(settings_url(pipeline), form)

    assert response.status_code == 400
    assert "A pipeline needs at least 2 stages." in response.content.decode()
    assert pipeline_state(workspace) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stage_name": ["New", "   ", "Qualified", "Proposal", "Won", "Lost"]}, "A stage needs a name."),
        ({"stage_color": ["red"] * 6}, "Use a hex colour such as #3B82F6."),
        ({"stage_type": ["open", "open", "open", "open", "won", "maybe"]}, "Choose one of: open, won, lost."),
        ({"name": "   "}, "A pipeline needs a name."),
    ],
)
def test_invalid_settings_are_refused_with_the_error_shown(marketer, workspace, change, message):
    pipeline = default_pipeline(workspace)
    before = pipeline_state(workspace)
    response = marketer.post(settings_url(pipeline), {**settings_form(pipeline), **change})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert pipeline_state(workspace) == before


@pytest.mark.parametrize("field", ["name", "stage_name"])
def test_too_long_names_in_settings_are_refused_with_the_error_shown(marketer, workspace, field):
    """The page's inputs say maxlength 120 (pipeline) and 80 (stage); a longer value must be an error, not a crash."""
    pipeline = default_pipeline(workspace)
    before = pipeline_state(workspace)
    form = settings_form(pipeline)
    form["name" if field == "name" else "stage_name"] = "x" * 121 if field == "name" else ["x" * 81, *form["stage_name"][1:]]
    response = marketer.post(settings_url(pipeline), form)
    assert response.status_code == 400
    assert '<div class="error" role="alert">' in response.content.decode()
    assert pipeline_state(workspace) == before


def test_leads_of_a_removed_stage_cannot_move_to_another_pipeline(marketer, workspace):
    pipeline = default_pipeline(workspace)
    partners = make_pipeline(workspace)
    lost = stage_of(workspace, "Lost")
    make_lead(workspace, stage=lost)
    before = pipeline_state(workspace)
    form = {**settings_form(pipeline), "remove": [str(lost.pk)], f"move_to_{lost.pk}": str(partners.stages.first().pk)}
    response = marketer.post(settings_url(pipeline), form)
    assert response.status_code == 400
    assert "must move to a stage kept in this pipeline" in response.content.decode()
    assert pipeline_state(workspace) == before


def test_a_stage_of_another_pipeline_cannot_be_adopted(marketer, workspace, other_workspace):
    pipeline = default_pipeline(workspace)
    foreign = stage_of(other_workspace, "New")
    before = pipeline_state(workspace), pipeline_state(other_workspace)
    form = settings_form(pipeline)
    form["stage_id"] = [*form["stage_id"], str(foreign.pk)]
    form["stage_name"] = [*form["stage_name"], "Stolen"]
    form["stage_color"] = [*form["stage_color"], "#000000"]
    form["stage_type"] = [*form["stage_type"], "open"]
    response = marketer.post(settings_url(pipeline), form)
    assert response.status_code == 400
    assert (pipeline_state(workspace), pipeline_state(other_workspace)) == before


# Create and delete pipelines


def test_create_pipeline_with_the_default_stages(marketer, workspace):
    response = marketer.post("/pipelines/new", {"name": "Partners"})
    created = Pipeline.objects.get(workspace=workspace, name="Partners")
    assert response.status_code == 302
    assert response["Location"] == settings_url(created)
    assert not created.is_default
    assert [s.name for s in created.stages.order_by("position")] == default_stage_names()
    page = marketer.get(response["Location"]).content.decode()
    assert "Created pipeline Partners." in page
    assert "Delete this pipeline" in page
    assert f'<option value="{created.pk}"' in marketer.get(BOARD).content.decode()


def test_create_pipeline_without_a_name_creates_nothing(marketer, workspace):
    before = pipeline_state(workspace)
    response = marketer.post("/pipelines/new", {"name": "   "}, follow=True)
    assert response.redirect_chain[-1][0] == "/leads/"
    assert "A pipeline needs a name." in response.content.decode()
    assert pipeline_state(workspace) == before


def test_create_pipeline_with_a_too_long_name_is_refused(marketer, workspace):
    before = pipeline_state(workspace)
    response = marketer.post("/pipelines/new", {"name": "x" * 121}, follow=True)
    assert response.redirect_chain[-1][0] == "/leads/"
    assert 'class="flash-error"' in response.content.decode()
    assert pipeline_state(workspace) == before


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.VIEWER])
def test_create_pipeline_is_refused_to_roles_without_manage(web_as, workspace, role):
    before = pipeline_state(workspace)
    assert web_as(role).post("/pipelines/new", {"name": "Partners"}).status_code == 403
    assert pipeline_state(workspace) == before


def test_create_pipeline_needs_post(marketer, workspace):
    assert marketer.get("/pipelines/new").status_code == 405


def test_delete_pipeline_moves_its_leads_to_the_default_pipeline(marketer, workspace):
    partners = make_pipeline(workspace)
    intro, signed = stage_of(workspace, "Intro", partners), stage_of(workspace, "Signed", partners)
    leads = [make_lead(workspace, name="P1", stage=intro), make_lead(workspace, name="P2", stage=signed)]
    gone = make_lead(workspace, name="P3", stage=signed)
    Lead.objects.filter(pk=gone.pk).update(deleted_at="2026-01-01T00:00:00Z")

    response = marketer.post(f"/pipelines/{partners.pk}/delete", follow=True)

    assert response.redirect_chain[-1][0] == "/leads/"
    assert "Deleted pipeline Partners; 3 lead(s) moved to the default pipeline." in response.content.decode()
    assert not Pipeline.objects.filter(pk=partners.pk).exists()
    assert not Stage.objects.filter(pipeline_id=partners.pk).exists()
    new = stage_of(workspace, "New")
    for lead in [*leads, gone]:
        lead.refresh_from_db()
        assert (lead.pipeline_id, lead.stage_id) == (new.pipeline_id, new.pk)
    assert set(column_named(response.content.decode(), "New")["card_names"]) == {"P1", "P2"}


def test_default_pipeline_cannot_be_deleted(marketer, workspace):
    pipeline = default_pipeline(workspace)
    make_lead(workspace)
    before = pipeline_state(workspace)
    response = marketer.post(f"/pipelines/{pipeline.pk}/delete", follow=True)
    assert response.redirect_chain[-1][0] == settings_url(pipeline)
    assert "The default pipeline cannot be deleted." in response.content.decode()
    assert pipeline_state(workspace) == before


def test_delete_of_another_workspaces_pipeline_is_404(marketer, other_workspace):
    theirs = make_pipeline(other_workspace)
    make_lead(other_workspace, stage=theirs.stages.first())
    before = pipeline_state(other_workspace)
    assert marketer.post(f"/pipelines/{theirs.pk}/delete").status_code == 404
    assert pipeline_state(other_workspace) == before


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.VIEWER])
def test_delete_pipeline_is_refused_to_roles_without_manage(web_as, workspace, role):
    partners = make_pipeline(workspace)
    before = pipeline_state(workspace)
    assert web_as(role).post(f"/pipelines/{partners.pk}/delete").status_code == 403
    assert pipeline_state(workspace) == before


# CSRF


@pytest.fixture
def strict_marketer(workspace):
    return web_client(member(workspace, role=Role.MARKETER).user, csrf_checks=True)


@pytest.mark.parametrize("action", ["settings", "new", "delete"])
def test_pipeline_posts_without_csrf_token_are_refused(strict_marketer, workspace, action):
    pipeline = default_pipeline(workspace)
    partners = make_pipeline(workspace)
    make_lead(workspace, stage=partners.stages.first())
    path, data = {
        "settings": (settings_url(pipeline), {**settings_form(pipeline), "name": "Renamed"}),
        "new": ("/pipelines/new", {"name": "Sneaky"}),
        "delete": (f"/pipelines/{partners.pk}/delete", {}),
    }[action]
    before = pipeline_state(workspace)

    response = strict_marketer.post(path, data)

    assert response.status_code == 403
    assert pipeline_state(workspace) == before


def test_pipeline_post_with_the_pages_csrf_token_is_accepted(strict_marketer, workspace):
    pipeline = default_pipeline(workspace)
    strict_marketer.get(settings_url(pipeline))
    token = strict_marketer.cookies["csrftoken"].value
    response = strict_marketer.post(settings_url(pipeline), {**settings_form(pipeline), "name": "Renamed", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    pipeline.refresh_from_db()
    assert pipeline.name == "Renamed"
