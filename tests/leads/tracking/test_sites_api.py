"""Tracking sites through the API (the key a site's snippet carries, its origins and form settings),
the snippet's configuration endpoint and the snippet itself."""

import json
import time

import pytest
from django.core.cache import cache
from django.test import Client

from leads.tracking import services as tracking_services
from leads.tracking.models import DEFAULT_FIELD_MAPPING, DEFAULT_FORM_EXCLUDE, TrackingSite
from leads.tracking.services import tracking_site_create
from workspaces.models import Role

pytestmark = pytest.mark.django_db
HUMAN_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
ORIGIN = "https://www.example.com"


def track(key: str, *, origin: str = ORIGIN, visitor: str = "visitor-site-0001"):
    body = {"visitorId": visitor, "events": [{"type": "pageview", "url": f"{ORIGIN}/"}], "context": {"js": True}}
    return Client().post(
        f"/api/v1/track?k={key}", json.dumps(body), content_type="text/plain", HTTP_USER_AGENT=HUMAN_UA, HTTP_ORIGIN=origin
    )


def config(key: str, **headers):
    return Client().get(f"/api/v1/track/config?k={key}", HTTP_USER_AGENT=HUMAN_UA, **headers)


def create(api, **data):
    response = api.post("/api/v1/tracking-sites", {"name": "Marketing site", **data}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def assert_refused(response, field: str):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"], error


# --- create, read, update, delete ----------------------------------------------------------------


def test_create_returns_a_public_key_and_the_tag_to_install(api):
    site = create(api, allowedOrigins=["https://WWW.Example.com/", "http://localhost:3000"])

    assert site["name"] == "Marketing site"
    assert site["siteKey"].startswith("site_")
    assert len(site["siteKey"]) > len("site_") + 16
    assert "/t.js" in site["snippet"]
    assert site["siteKey"] in site["snippet"]
    assert site["snippet"].lstrip().startswith("<script")
    # Origins are kept as scheme://host[:port], lower case.
    assert site["allowedOrigins"] == ["https://www.example.com", "http://localhost:3000"]
    # Seed 000's forms.trackAll defaults.
    assert site["formInclude"] == ["form"]
    assert site["formExclude"] == DEFAULT_FORM_EXCLUDE
    assert site["fieldMapping"] == DEFAULT_FIELD_MAPPING
    assert site["isActive"] is True
    stored = TrackingSite.objects.get(pk=site["id"])
    assert stored.workspace == api.workspace
    assert stored.site_key == site["siteKey"]


def test_each_site_gets_its_own_key(api):
    assert create(api)["siteKey"] != create(api, name="Docs")["siteKey"]


def test_a_new_sites_key_accepts_events_from_its_origin_only(api):
    key = create(api, allowedOrigins=[ORIGIN])["siteKey"]

    assert track(key).status_code == 202
    refused = track(key, origin="https://evil.example.net")
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused


def test_list_and_get_show_the_workspaces_sites_only(api, api_as, other_workspace):
    mine = create(api)
    foreign = create(api_as(Role.MARKETER, other_workspace), name="Theirs")

    listed = api.get("/api/v1/tracking-sites").json()
    assert listed["count"] == 1
    assert [site["id"] for site in listed["results"]] == [mine["id"]]
    assert listed["results"][0]["siteKey"] == mine["siteKey"]

    got = api.get(f"/api/v1/tracking-sites/{mine['id']}")
    assert got.status_code == 200
    assert got.json() == mine

    for method in ("get", "patch", "delete"):
        response = getattr(api, method)(f"/api/v1/tracking-sites/{foreign['id']}", {"name": "Mine now"}, format="json")
        assert response.status_code == 404, method
        assert response.json()["error"]["code"] == "not_found"
    assert api.post(f"/api/v1/tracking-sites/{foreign['id']}/regenerate-key").status_code == 404
    untouched = TrackingSite.objects.get(pk=foreign["id"])
    assert (untouched.name, untouched.site_key) == ("Theirs", foreign["siteKey"])
    assert api.get("/api/v1/tracking-sites/not-a-uuid").status_code == 404


def test_patch_changes_the_given_fields(api):
    site = create(api, allowedOrigins=[ORIGIN])

    response = api.patch(
        f"/api/v1/tracking-sites/{site['id']}",
        {
            "allowedOrigins": [ORIGIN, "https://app.example.com"],
            "formInclude": ["#demo-form", ".signup"],
            "formExclude": ["#search-form"],
            "fieldMapping": {"work_email": "email", "full_name": "name", "role": "jobTitle"},
            "formEvents": {"fieldFocused": False},
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "Marketing site"
    assert body["siteKey"] == site["siteKey"]
    assert body["allowedOrigins"] == [ORIGIN, "https://app.example.com"]
    assert body["formInclude"] == ["#demo-form", ".signup"]
    assert body["fieldMapping"] == {"work_email": "email", "full_name": "name", "role": "jobTitle"}
    assert body["formEvents"]["fieldFocused"] is False
    assert body["formEvents"]["formSubmitted"] is True
    assert api.get(f"/api/v1/tracking-sites/{site['id']}").json() == body


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"allowedOrigins": ["ftp://x"]}, "allowedOrigins"),
        ({"allowedOrigins": ["https://x.com/path"]}, "allowedOrigins"),
        ({"allowedOrigins": ["https://x.com?a=1"]}, "allowedOrigins"),
        ({"allowedOrigins": ["www.example.com"]}, "allowedOrigins"),
        ({"allowedOrigins": "https://x.com"}, "allowedOrigins"),
        ({"fieldMapping": {"full_name": "nickname"}}, "fieldMapping"),
        ({"fieldMapping": ["email"]}, "fieldMapping"),
        ({"formInclude": "form"}, "formInclude"),
        ({"formExclude": [""]}, "formExclude"),
        ({"formEvents": {"formClicked": True}}, "formEvents"),
        ({"autoCaptureEvents": ["has spaces"]}, "autoCaptureEvents"),
        ({"autoCaptureRequiredFields": ["shoe_size"]}, "autoCaptureRequiredFields"),
        ({"dedupStrategy": "sometimes"}, "dedupStrategy"),
        ({"rateLimitPerMinute": 0}, "rateLimitPerMinute"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_settings_are_refused_naming_the_field_and_nothing_changes(api, data, field):
    site = create(api, allowedOrigins=[ORIGIN])

    assert_refused(api.patch(f"/api/v1/tracking-sites/{site['id']}", data, format="json"), field)

    assert api.get(f"/api/v1/tracking-sites/{site['id']}").json() == site


def test_create_validates_like_patch(api):
    assert_refused(api.post("/api/v1/tracking-sites", {"name": "X", "allowedOrigins": ["ftp://x"]}, format="json"), "allowedOrigins")
    assert_refused(api.post("/api/v1/tracking-sites", {"allowedOrigins": [ORIGIN]}, format="json"), "name")
    assert_refused(api.post("/api/v1/tracking-sites", {"name": "X", "fieldMapping": {"a": "b"}}, format="json"), "fieldMapping")
    assert not TrackingSite.objects.filter(workspace=api.workspace).exists()


def test_server_owned_fields_sent_back_are_ignored(api):
    site = create(api)

    response = api.patch(
        f"/api/v1/tracking-sites/{site['id']}", {**site, "siteKey": "site_chosen_by_client", "name": "Renamed"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["siteKey"] == site["siteKey"]
    assert response.json()["name"] == "Renamed"


def test_regenerating_the_key_retires_the_old_one(api):
    site = create(api, allowedOrigins=[ORIGIN])
    old_key = site["siteKey"]
    assert track(old_key).status_code == 202  # and the site is now in the lookup cache

    response = api.post(f"/api/v1/tracking-sites/{site['id']}/regenerate-key")

    assert response.status_code == 200, response.content
    new_key = response.json()["siteKey"]
    assert new_key.startswith("site_")
    assert new_key != old_key
    assert new_key in response.json()["snippet"]
    old = track(old_key)
    assert old.status_code == 404
    assert old.json()["error"]["code"] == "not_found"
    assert config(old_key, HTTP_ORIGIN=ORIGIN).status_code == 404
    assert track(new_key).status_code == 202
    assert config(new_key, HTTP_ORIGIN=ORIGIN).status_code == 200


def test_deactivating_a_site_stops_its_key_at_once(api):
    site = create(api, allowedOrigins=[ORIGIN])
    assert track(site["siteKey"]).status_code == 202

    api.patch(f"/api/v1/tracking-sites/{site['id']}", {"isActive": False}, format="json")
    assert track(site["siteKey"]).status_code == 404

    api.patch(f"/api/v1/tracking-sites/{site['id']}", {"isActive": True}, format="json")
    assert track(site["siteKey"]).status_code == 202


def test_a_site_deactivated_by_another_process_stops_its_key_within_the_memory_window(api, monkeypatch):
    """Each web process keeps the sites it served for SITE_MEMORY_SECONDS in front of the shared
    cache; a change made by another process (which clears the shared cache, not this process's
    memory) applies here once that window has passed."""
    monkeypatch.setattr(tracking_services, "SITE_MEMORY_SECONDS", 0.2)
    site = create(api, allowedOrigins=[ORIGIN])
    assert track(site["siteKey"]).status_code == 202

    TrackingSite.objects.filter(pk=site["id"]).update(is_active=False)
    cache.delete(f"tracking-site:{site['siteKey']}")  # the other process's _forget
    time.sleep(0.25)

    assert track(site["siteKey"]).status_code == 404


def test_changing_allowed_origins_applies_at_once(api):
    site = create(api, allowedOrigins=[ORIGIN])
    assert track(site["siteKey"]).status_code == 202

    api.patch(f"/api/v1/tracking-sites/{site['id']}", {"allowedOrigins": ["https://new.example.com"]}, format="json")

    assert track(site["siteKey"]).status_code == 403
    assert track(site["siteKey"], origin="https://new.example.com").status_code == 202


def test_delete_removes_the_site_and_its_key(api):
    site = create(api, allowedOrigins=[ORIGIN])
    assert track(site["siteKey"]).status_code == 202

    response = api.delete(f"/api/v1/tracking-sites/{site['id']}")

    assert response.status_code == 204
    assert api.get(f"/api/v1/tracking-sites/{site['id']}").status_code == 404
    assert api.get("/api/v1/tracking-sites").json()["count"] == 0
    assert track(site["siteKey"]).status_code == 404


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.VIEWER])
def test_sales_reps_and_viewers_cannot_see_or_change_sites(api, api_as, role):
    site = create(api, allowedOrigins=[ORIGIN])
    client = api_as(role)

    calls = [
        client.get("/api/v1/tracking-sites"),
        client.post("/api/v1/tracking-sites", {"name": "Mine"}, format="json"),
        client.get(f"/api/v1/tracking-sites/{site['id']}"),
        client.patch(f"/api/v1/tracking-sites/{site['id']}", {"name": "Renamed"}, format="json"),
        client.post(f"/api/v1/tracking-sites/{site['id']}/regenerate-key"),
        client.delete(f"/api/v1/tracking-sites/{site['id']}"),
    ]

    for response in calls:
        assert response.status_code == 403, response.request
        assert response.json()["error"]["code"] == "permission_denied"
    assert api.get(f"/api/v1/tracking-sites/{site['id']}").json() == site
    assert TrackingSite.objects.filter(workspace=api.workspace).count() == 1


def test_an_admin_manages_sites(api_as):
    admin = api_as(Role.ADMIN)

    site = create(admin)

    assert admin.delete(f"/api/v1/tracking-sites/{site['id']}").status_code == 204


def test_without_a_token_sites_are_not_listed():
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/tracking-sites").status_code == 401


# --- the snippet's configuration -----------------------------------------------------------------


@pytest.fixture
def configured(workspace) -> TrackingSite:
    return tracking_site_create(
        workspace=workspace,
        name="Configured",
        allowed_origins=[ORIGIN],
        form_include=["#demo-form"],
        form_exclude=["#login-form"],
        field_mapping={"work_email": "email", "full_name": "name"},
        form_events={"fieldFocused": False},
    )


def test_config_gives_the_snippet_its_form_settings_with_cors_for_an_allowed_origin(configured):
    response = config(configured.site_key, HTTP_ORIGIN=ORIGIN)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in response["Vary"]
    forms = response.json()["forms"]
    assert forms["include"] == ["#demo-form"]
    assert forms["exclude"] == ["#login-form"]
    assert forms["fieldMapping"] == {"work_email": "email", "full_name": "name"}
    assert forms["trackEvents"] == {
        "formViewed": True,
        "fieldFocused": False,
        "fieldCompleted": True,
        "formAbandoned": True,
        "formSubmitted": True,
    }


def test_config_follows_changes_made_through_the_api(api, configured):
    config(configured.site_key, HTTP_ORIGIN=ORIGIN)  # cached lookup

    api.patch(f"/api/v1/tracking-sites/{configured.pk}", {"formInclude": ["form.signup"]}, format="json")

    assert config(configured.site_key, HTTP_ORIGIN=ORIGIN).json()["forms"]["include"] == ["form.signup"]


def test_config_refuses_other_origins_without_cors_headers(configured):
    response = config(configured.site_key, HTTP_ORIGIN="https://evil.example.net")

    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    assert response.json()["error"]["code"] == "origin_not_allowed"


def test_config_preflight_allows_only_the_sites_origins(configured):
    allowed = Client().options(f"/api/v1/track/config?k={configured.site_key}", HTTP_ORIGIN=ORIGIN)
    refused = Client().options(f"/api/v1/track/config?k={configured.site_key}", HTTP_ORIGIN="https://evil.example.net")

    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == ORIGIN
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused


def test_config_without_an_origin_has_no_cors_header(configured):
    response = config(configured.site_key)

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.parametrize("key", ["", "site_doesnotexist", "nope"])
def test_config_of_an_unknown_key_is_not_found(key):
    response = config(key, HTTP_ORIGIN=ORIGIN)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- the snippet ---------------------------------------------------------------------------------


def test_the_snippet_is_served_as_cacheable_javascript_that_posts_to_the_track_api():
    response = Client().get("/t.js")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "max-age=" in response["Cache-Control"]
    assert "public" in response["Cache-Control"]
    body = response.content.decode()
    assert "/api/v1/track" in body
    assert "/api/v1/personalization" in body
    assert "data-site-key" in body or "siteKey" in body


def test_the_snippet_is_get_only():
    assert Client().post("/t.js").status_code == 405
