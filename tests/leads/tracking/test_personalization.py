"""Personalization rules (seed 000): written through the API, asked for by the snippet for a visitor."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from leads.models import Lead
from leads.services import lead_delete, lead_tags_change, lead_update
from leads.tracking.models import PersonalizationRule, TrackingSite
from leads.tracking.services import tracking_site_create
from workspaces.models import Role

pytestmark = pytest.mark.django_db
HUMAN_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
ORIGIN = "https://www.example.com"
VISITOR = "visitor-pers-0001"


@pytest.fixture
def site(workspace) -> TrackingSite:
    return tracking_site_create(workspace=workspace, name="Example", allowed_origins=[ORIGIN])


def track(site, events, *, visitor=VISITOR):
    body = json.dumps({"visitorId": visitor, "events": events, "context": {"js": True}})
    response = Client().post(
        f"/api/v1/track?k={site.site_key}", body, content_type="text/plain", HTTP_USER_AGENT=HUMAN_UA, HTTP_ORIGIN=ORIGIN
    )
    assert response.status_code == 202, response.content
    assert response.json()["rejected"] == 0, response.content


def visit(site, at=None, *, visitor=VISITOR, page="/"):
    track(site, [{"type": "pageview", "url": f"{ORIGIN}{page}", "timestamp": (at or timezone.now()).isoformat()}], visitor=visitor)


def identify(site, email, name, *, visitor=VISITOR, at=None, **traits):
    event = {"type": "identify", "traits": {"email": email, "name": name, **traits}}
    if at is not None:
        event["timestamp"] = at.isoformat()
    track(site, [event], visitor=visitor)
    return Lead.objects.get(workspace=site.workspace, email=email.lower())


def ask(site, visitor: str | None = VISITOR, *, origin: str = ORIGIN):
    query = f"?k={site.site_key}" + (f"&visitor={visitor}" if visitor is not None else "")
    return Client().get(f"/api/v1/personalization{query}", HTTP_ORIGIN=origin, HTTP_USER_AGENT=HUMAN_UA)


def changes(site, visitor: str = VISITOR) -> dict[str, dict]:
    """The page changes for the visitor, by selector."""
    response = ask(site, visitor)
    assert response.status_code == 200, response.content
    found = response.json()["changes"]
    by_selector = {change["selector"]: change for change in found}
    assert len(by_selector) == len(found), "one change per selector"
    return by_selector


def rule(api, conditions=None, changes_=None, **extra) -> dict:
    data = {"name": extra.pop("name", "Rule"), "changes": changes_ or [{"selector": ".hero", "content": "Hello"}], **extra}
    if conditions is not None:
        data["conditions"] = conditions
    response = api.post("/api/v1/personalization-rules", data, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def assert_refused(response, field: str):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"], error


# --- the rules API -------------------------------------------------------------------------------


def test_rules_are_created_listed_changed_and_deleted(api):
    created = rule(
        api,
        {"lifecycleStages": ["mql", "sql"], "scoreMin": 60},
        [{"selector": ".hero-headline", "content": "Enterprise Analytics at Scale"}, {"selector": ".pricing-cta", "hide": True}],
        name="Enterprise",
        position=2,
    )

    assert created["name"] == "Enterprise"
    assert created["position"] == 2
    assert created["isActive"] is True
    assert created["conditions"] == {"lifecycleStages": ["mql", "sql"], "scoreMin": 60}
    assert created["changes"][1] == {"selector": ".pricing-cta", "hide": True}
    listed = api.get("/api/v1/personalization-rules").json()
    assert listed["count"] == 1
    assert listed["results"] == [created]
    assert api.get(f"/api/v1/personalization-rules/{created['id']}").json() == created

    patched = api.patch(f"/api/v1/personalization-rules/{created['id']}", {"isActive": False, "name": "Enterprise (paused)"}, format="json")
    assert patched.status_code == 200, patched.content
    assert (patched.json()["isActive"], patched.json()["name"]) == (False, "Enterprise (paused)")
    assert patched.json()["changes"] == created["changes"]

    assert api.delete(f"/api/v1/personalization-rules/{created['id']}").status_code == 204
    assert api.get(f"/api/v1/personalization-rules/{created['id']}").status_code == 404


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"changes": [{"content": "Hi"}]}, "changes[0].selector"),
        ({"changes": [{"selector": "   ", "content": "Hi"}]}, "changes[0].selector"),
        ({"changes": [{"selector": ".a", "content": "ok"}, {"selector": ".b" * 101, "content": "x"}]}, "changes[1].selector"),
        ({"changes": [{"selector": ".a", "html": "<b>hi</b>"}]}, "changes[0].html"),
        ({"changes": [{"selector": ".a", "content": "x" * 2001}]}, "changes[0].content"),
        ({"changes": [{"selector": ".a", "content": 5}]}, "changes[0].content"),
        ({"changes": [{"selector": ".a"}]}, "changes[0]"),
        ({"changes": [{"selector": ".a", "content": "x", "hide": True}]}, "changes[0]"),
        ({"changes": [{"selector": ".a", "hide": "yes"}]}, "changes[0]"),
        ({"changes": ["hide .a"]}, "changes[0]"),
        ({"changes": []}, "changes"),
        ({"changes": {"selector": ".a", "hide": True}}, "changes"),
        ({"conditions": {"lifecycleStages": ["prospect"]}}, "conditions.lifecycleStages"),
        ({"conditions": {"lifecycleStages": "lead"}}, "conditions.lifecycleStages"),
        ({"conditions": {"segment": "enterprise_leads"}}, "conditions.segment"),
        ({"conditions": {"tags": "vip"}}, "conditions.tags"),
        ({"conditions": {"scoreMin": "50"}}, "conditions.scoreMin"),
        ({"conditions": {"scoreMax": True}}, "conditions.scoreMax"),
        ({"conditions": {"returningVisitor": "yes"}}, "conditions.returningVisitor"),
        ({"conditions": {"identified": 1}}, "conditions.identified"),
        ({"conditions": ["lead"]}, "conditions"),
        ({"name": ""}, "name"),
        ({"position": -1}, "position"),
        ({"segment": "enterprise_leads"}, "segment"),
    ],
)
def test_invalid_rules_are_refused_naming_the_path(api, data, field):
    body = {"name": "Rule", "changes": [{"selector": ".hero", "content": "Hi"}], **data}

    assert_refused(api.post("/api/v1/personalization-rules", body, format="json"), field)

    assert not PersonalizationRule.objects.exists()


def test_a_rule_without_changes_is_refused(api):
    assert_refused(api.post("/api/v1/personalization-rules", {"name": "Empty"}, format="json"), "changes")


def test_errors_in_conditions_and_changes_are_reported_together(api):
    body = {"name": "Rule", "conditions": {"lifecycleStages": ["x"]}, "changes": [{"selector": ".a", "show": False}]}

    fields = api.post("/api/v1/personalization-rules", body, format="json").json()["error"]["fields"]

    assert {"conditions.lifecycleStages", "changes[0]"} <= set(fields)


def test_an_invalid_patch_leaves_the_rule_as_it_was(api):
    created = rule(api, {"tags": ["vip"]})

    response = api.patch(f"/api/v1/personalization-rules/{created['id']}", {"changes": [{"selector": ""}]}, format="json")

    assert_refused(response, "changes[0].selector")
    assert api.get(f"/api/v1/personalization-rules/{created['id']}").json() == created


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.VIEWER])
def test_sales_reps_and_viewers_cannot_manage_rules(api, api_as, role):
    created = rule(api)
    client = api_as(role)

    for response in (
        client.get("/api/v1/personalization-rules"),
        client.post("/api/v1/personalization-rules", {"name": "R", "changes": [{"selector": ".a", "hide": True}]}, format="json"),
        client.patch(f"/api/v1/personalization-rules/{created['id']}", {"isActive": False}, format="json"),
        client.delete(f"/api/v1/personalization-rules/{created['id']}"),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    assert PersonalizationRule.objects.get(pk=created["id"]).is_active is True


def test_another_workspaces_rules_are_not_found(api, api_as, other_workspace):
    foreign = rule(api_as(Role.MARKETER, other_workspace), name="Theirs")

    assert api.get("/api/v1/personalization-rules").json()["count"] == 0
    for method in ("get", "patch", "delete"):
        response = getattr(api, method)(f"/api/v1/personalization-rules/{foreign['id']}", {"name": "Mine"}, format="json")
        assert response.status_code == 404, method
    assert PersonalizationRule.objects.get(pk=foreign["id"]).name == "Theirs"


# --- what a visitor gets -------------------------------------------------------------------------


@pytest.fixture
def rules(api) -> None:
    """One rule per kind of condition, each changing its own selector."""
    rule(api, {"identified": False}, [{"selector": ".hero", "content": "See how teams grow"}], name="Anonymous")
    rule(api, {"lifecycleStages": ["visitor"]}, [{"selector": ".newsletter", "show": True}], name="Visitors")
    rule(api, {}, [{"selector": ".footer-note", "content": "Thanks for stopping by"}], name="Everyone")
    rule(api, {"identified": True}, [{"selector": ".login", "hide": True}], name="Known")
    rule(api, {"lifecycleStages": ["lead"]}, [{"selector": ".cta", "content": "Talk to sales, {{firstName}}"}], name="Leads")
    rule(api, {"lifecycleStages": ["customer"]}, [{"selector": ".upsell", "show": True}], name="Customers")
    rule(api, {"tags": ["vip", "partner"]}, [{"selector": ".vip", "show": True}], name="VIPs")
    rule(api, {"scoreMin": 50}, [{"selector": ".enterprise", "content": "Enterprise Analytics at Scale"}], name="Hot")
    rule(api, {"identified": True, "scoreMax": 49}, [{"selector": ".nurture", "show": True}], name="Cool")


def test_an_unknown_visitor_gets_only_the_rules_for_anonymous_visitors(site, rules):
    response = ask(site, "visitor-never-seen")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "no-store" in response["Cache-Control"]
    assert response.json()["changes"] == [
        {"selector": ".hero", "content": "See how teams grow"},
        {"selector": ".newsletter", "show": True},
        {"selector": ".footer-note", "content": "Thanks for stopping by"},
    ]


def test_a_visitor_seen_but_not_identified_is_still_anonymous(site, rules):
    visit(site)

    assert set(changes(site)) == {".hero", ".newsletter", ".footer-note"}


def test_once_identified_the_leads_stage_tags_and_score_decide(site, rules):
    visit(site)
    lead = identify(site, "Jane.Doe@Acme.io", "Jane Doe")

    found = changes(site)
    assert set(found) == {".footer-note", ".login", ".cta", ".nurture"}
    assert found[".cta"]["content"] == "Talk to sales, Jane"

    lead_tags_change(lead=lead, actor=None, add=["VIP"])
    assert ".vip" in changes(site)

    Lead.objects.filter(pk=lead.pk).update(score=75)
    found = changes(site)
    assert found[".enterprise"]["content"] == "Enterprise Analytics at Scale"
    assert ".nurture" not in found

    lead_update(lead=lead, actor=None, data={"lifecycle_stage": "customer"})
    found = changes(site)
    assert ".upsell" in found
    assert ".cta" not in found


def test_score_bounds_are_inclusive(api, site):
    rule(api, {"scoreMin": 50, "scoreMax": 60}, [{"selector": ".band", "show": True}])
    visit(site)
    lead = identify(site, "band@acme.io", "Band Person")

    seen = {}
    for score in (49, 50, 60, 61):
        Lead.objects.filter(pk=lead.pk).update(score=score)
        seen[score] = ".band" in changes(site)

    assert seen == {49: False, 50: True, 60: True, 61: False}


def test_lead_data_is_filled_in_as_plain_text(api, site):
    rule(
        api,
        {"identified": True},
        [
            {"selector": ".greeting", "content": "Hi {{ firstName }} from {{lead.company.name}}{{unknownField}}!"},
            {"selector": ".name", "content": "{{lead.name}}"},
        ],
    )
    visit(site)
    identify(site, "mallory@evil.io", "<script>alert(1)</script> Mallory", company="Evil <b>Corp</b>")

    response = ask(site)

    assert response["Content-Type"].startswith("application/json")
    found = {change["selector"]: change["content"] for change in response.json()["changes"]}
    # Returned literally, not escaped: the snippet sets textContent, so it shows as text.
    assert found[".greeting"] == "Hi <script>alert(1)</script> from Evil <b>Corp</b>!"
    assert found[".name"] == "<script>alert(1)</script> Mallory"
    snippet = Path(__file__).resolve().parents[3].joinpath("leads/tracking/t.js").read_text()
    assert "el.textContent = change.content" in snippet
    assert "innerHTML" not in snippet


def test_placeholders_are_empty_for_an_anonymous_visitor(api, site):
    rule(api, {}, [{"selector": ".hero", "content": "Welcome{{firstName}}!"}])

    assert changes(site)[".hero"]["content"] == "Welcome!"


def test_returning_visitor_only_after_a_second_session(api, site):
    rule(api, {"returningVisitor": True}, [{"selector": ".hero", "content": "Welcome back, {{firstName}}!"}], name="Back")
    rule(api, {"returningVisitor": False}, [{"selector": ".first-visit", "show": True}], name="First")
    first = timezone.now() - timedelta(hours=2)
    visit(site, first)
    identify(site, "jane@acme.io", "Jane Doe", at=first + timedelta(minutes=1))
    assert set(changes(site)) == {".first-visit"}

    # Twenty minutes later is the same session.
    visit(site, first + timedelta(minutes=21), page="/pricing")
    assert set(changes(site)) == {".first-visit"}

    # Over thirty minutes after the last event: a second session.
    visit(site, first + timedelta(minutes=55), page="/docs")
    found = changes(site)
    assert set(found) == {".hero"}
    assert found[".hero"]["content"] == "Welcome back, Jane!"


def test_a_later_rules_change_to_the_same_selector_wins(api, site):
    # Created first, but placed last.
    rule(api, {}, [{"selector": ".hero", "content": "Last word"}], name="Late", position=5)
    rule(
        api, {}, [{"selector": ".hero", "content": "First word"}, {"selector": ".cta", "content": "Book a demo"}], name="Early", position=1
    )
    rule(api, {}, [{"selector": ".hero", "hide": True}, {"selector": ".banner", "show": True}], name="Middle", position=3)

    found = changes(site)

    assert found[".hero"] == {"selector": ".hero", "content": "Last word"}
    assert found[".cta"]["content"] == "Book a demo"
    assert found[".banner"]["show"] is True


def test_of_two_rules_at_the_same_position_the_newer_wins(api, site):
    rule(api, {}, [{"selector": ".hero", "content": "Older"}], position=1)
    rule(api, {}, [{"selector": ".hero", "content": "Newer"}], position=1)

    assert changes(site)[".hero"]["content"] == "Newer"


def test_inactive_rules_are_ignored(api, site):
    paused = rule(api, {}, [{"selector": ".promo", "show": True}], isActive=False)
    assert ".promo" not in changes(site)

    api.patch(f"/api/v1/personalization-rules/{paused['id']}", {"isActive": True}, format="json")
    assert ".promo" in changes(site)

    api.patch(f"/api/v1/personalization-rules/{paused['id']}", {"isActive": False}, format="json")
    assert ".promo" not in changes(site)


def test_a_deleted_lead_is_an_anonymous_visitor_again(api, site, rules):
    visit(site)
    lead = identify(site, "gone@acme.io", "Gone Person")
    assert ".login" in changes(site)

    lead_delete(lead=lead, actor=None)

    assert set(changes(site)) == {".hero", ".newsletter", ".footer-note"}


def test_no_rules_no_changes(site):
    visit(site)

    assert ask(site).json() == {"changes": []}


@pytest.mark.parametrize("visitor", [None, "", "short", "has spaces in it", "x" * 65])
def test_a_missing_or_malformed_visitor_is_refused(site, visitor):
    response = ask(site, visitor)

    assert response.status_code == 400
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "visitor" in error["fields"]


def test_an_unknown_key_or_a_foreign_origin_is_refused(site):
    unknown = Client().get(f"/api/v1/personalization?k=site_unknown&visitor={VISITOR}", HTTP_ORIGIN=ORIGIN)
    foreign = ask(site, origin="https://evil.example.net")

    assert unknown.status_code == 404
    assert foreign.status_code == 403
    assert "Access-Control-Allow-Origin" not in foreign


def test_rules_and_identities_of_another_workspace_never_apply(api, api_as, site, other_workspace):
    other_site = tracking_site_create(workspace=other_workspace, name="Theirs", allowed_origins=[ORIGIN])
    other_api = api_as(Role.MARKETER, other_workspace)
    rule(other_api, {}, [{"selector": ".hero", "content": "Their headline"}, {"selector": ".theirs", "show": True}])
    rule(api, {"identified": True}, [{"selector": ".known", "show": True}])
    rule(api, {"identified": False}, [{"selector": ".hero", "content": "Our headline"}])
    # The same browser cookie value, identified in the other workspace only.
    visit(other_site)
    identify(other_site, "them@other.io", "Them There")

    ours = changes(site)
    theirs = changes(other_site)

    assert ours == {".hero": {"selector": ".hero", "content": "Our headline"}}
    assert theirs == {".hero": {"selector": ".hero", "content": "Their headline"}, ".theirs": {"selector": ".theirs", "show": True}}


def test_a_rule_for_a_segment_applies_to_its_members_only(api, site):
    segment = api.post(
        "/api/v1/segments",
        {"name": "Enterprise", "criteria": {"all": [{"field": "company.name", "operator": "eq", "value": "Bigco"}]}},
        format="json",
    ).json()
    rule(api, {"segments": [segment["id"]]}, [{"selector": ".enterprise-banner", "show": True}])
    visit(site)
    lead = identify(site, "cio@bigco.io", "Cio Person")
    assert ".enterprise-banner" not in changes(site)

    api.patch(f"/api/v1/leads/{lead.pk}", {"company": "Bigco"}, format="json")
    api.post(f"/api/v1/segments/{segment['id']}/refresh")

    assert changes(site)[".enterprise-banner"] == {"selector": ".enterprise-banner", "show": True}


def test_a_segment_condition_must_list_segment_ids(api):
    assert_refused(
        api.post(
            "/api/v1/personalization-rules",
            {"name": "x", "conditions": {"segments": ["enterprise"]}, "changes": [{"selector": "a", "hide": True}]},
            format="json",
        ),
        "conditions.segments",
    )


def test_typing_someone_elses_email_does_not_reveal_their_name(api, site, workspace):
    """Anyone can identify as an email they know: the page then gets the lead's rules, never its data."""
    from tests.leads.factories import make_lead

    make_lead(workspace, name="Jane Secret", email="jane@victim.io")
    rule(api, {"identified": True}, [{"selector": ".hero", "content": "Welcome back, {{firstName}}!"}])

    identify(site, "jane@victim.io", "Whoever", visitor="visitor-intruder-01")

    assert changes(site, "visitor-intruder-01")[".hero"]["content"] == "Welcome back, !"
