"""The scoring API: a lead's breakdown (now or at another instant) and score history, the workspace's
versioned scoring model with its presets, and rescoring on demand; scoped to the workspace and its roles."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from scoring.models import ScoreChange, ScoringModel
from scoring.presets import THRESHOLD_PRESETS, default_model_json, threshold_preset_json
from tests.leads.factories import make_lead
from tests.scoring.test_services import FIT, FIT_SCORE, create_lead, track
from workspaces.models import Role

pytestmark = pytest.mark.django_db

MODEL = "/api/v1/scoring-model"


def score_url(lead, query: str = "") -> str:
    return f"/api/v1/leads/{lead.pk}/score{query}"


def history_url(lead, query: str = "") -> str:
    return f"/api/v1/leads/{lead.pk}/score-history{query}"


def iso(at) -> str:
    return at.isoformat().replace("+00:00", "Z")


def parts_sum(breakdown: dict) -> int:
    return (
        breakdown["demographic"]["total"]
        + breakdown["behavioral"]["total"]
        + breakdown["decay"]
        + breakdown["negative"]
        + sum(line["points"] for line in breakdown["boosts"])
        + breakdown["cap"]
    )


def error_fields(response) -> dict:
    return response.json()["error"]["fields"]


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def engaged(api, capture):
    """A lead of seed 000's fit (45) who requested a demo (25, never decays) and saw pricing four times
    (3 of them counted at 10, decaying): 100, capped."""
    lead = create_lead(api, capture, **FIT)
    return track(api, capture, lead, "demo_requested", *["pricing_page_viewed"] * 4)


# The breakdown


def test_the_breakdown_explains_the_score_and_names_the_model_version(api, engaged):
    response = api.get(score_url(engaged))

    assert response.status_code == 200
    body = response.json()
    assert body["totalScore"] == engaged.score == 100
    assert parts_sum(body) == body["totalScore"]
    assert (body["band"], body["modelVersion"], body["maxScore"]) == ("sql", 1, 100)
    assert body["demographic"]["total"] == sum(row["points"] for row in body["demographic"]["breakdown"]) == FIT_SCORE
    assert body["behavioral"]["total"] == sum(row["points"] for row in body["behavioral"]["breakdown"]) == 55
    assert {row["factor"]: row["count"] for row in body["behavioral"]["breakdown"]} == {"demo_requested": 1, "pricing_page_viewed": 3}
    assert (body["decay"], body["negative"], body["cap"], body["capped"]) == (0, 0, 0, False)


def test_the_breakdown_ninety_days_ahead_is_lower_from_decay_and_inactivity(api, engaged):
    at = timezone.now() + timedelta(days=90)

    body = api.get(score_url(engaged, f"?at={iso(at)}")).json()

    # Pricing visits decay to an eighth (30 -> 4); the demo request never decays; 90 days idle cost 15.
    assert body["decay"] == -26
    assert body["negative"] == -15
    assert [(row["factor"], row["points"]) for row in body["negativeBreakdown"]] == [("inactivity", -15)]
    assert body["totalScore"] == 45 + 55 - 26 - 15 == parts_sum(body)
    assert body["totalScore"] < api.get(score_url(engaged)).json()["totalScore"]
    assert body["band"] == "hot"
    assert body["at"] == iso(at)
    engaged.refresh_from_db()
    assert engaged.score == 100  # looking ahead changes nothing


def test_at_with_an_offset_is_read_as_given(api, engaged):
    at = (timezone.now() + timedelta(days=90)).astimezone(timezone.get_fixed_timezone(120))
    plus_as_sent_unencoded = at.isoformat()  # "+02:00" in a query string reads as " 02:00"

    body = api.get(score_url(engaged, f"?at={plus_as_sent_unencoded}")).json()

    assert body["totalScore"] == 59


@pytest.mark.parametrize("value", ["tomorrow", "2026-12-01T09:00:00", "2026-02-30T10:00:00Z", "2026-13-01"])
def test_an_unreadable_at_is_400_naming_at(api, engaged, value):
    response = api.get(score_url(engaged, f"?at={value}"))

    assert response.status_code == 400
    assert list(error_fields(response)) == ["at"]


# History


def test_the_history_lists_each_change_with_its_reason_and_model_version(api, capture):
    lead = create_lead(api, capture, **FIT)
    lead = track(api, capture, lead, "demo_requested")
    with capture(execute=True):
        api.patch(f"/api/v1/leads/{lead.pk}", {"title": "Analyst"}, format="json")

    body = api.get(history_url(lead)).json()

    assert (body["score"], body["band"]) == (55, "hot")
    assert [
        (
            row["previousScore"],
            row["newScore"],
            row["previousBand"],
            row["band"],
            row["thresholdCrossed"],
            row["reason"],
            row["modelVersion"],
        )
        for row in body["results"]
    ] == [
        (70, 55, "hot", "hot", None, "fields changed", 1),
        (45, 70, "warm", "hot", "hot", "new activity", 1),
        (0, 45, None, "warm", "warm", "captured", 1),
    ]
    assert all(row["at"].endswith("Z") for row in body["results"])
    latest = api.get(history_url(lead, "?limit=1")).json()["results"]
    assert [row["reason"] for row in latest] == ["fields changed"]


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten"])
def test_a_history_limit_out_of_range_is_400_naming_limit(api, engaged, limit):
    response = api.get(history_url(engaged, f"?limit={limit}"))
    assert response.status_code == 400
    assert list(error_fields(response)) == ["limit"]


# The scoring model


def test_the_active_model_starts_as_seed_000s(api):
    body = api.get(MODEL).json()

    assert (body["version"], body["isActive"], body["createdBy"]) == (1, True, None)
    assert body["config"] == default_model_json()
    assert body["thresholds"] == threshold_preset_json("seed000")


def test_the_presets_offer_the_default_model_and_each_threshold_preset(api):
    body = api.get(f"{MODEL}/presets").json()

    assert body["defaultModel"] == default_model_json()
    assert set(body["thresholdPresets"]) == set(THRESHOLD_PRESETS) >= {"seed000", "three_tier", "leadboxer"}
    assert [stage["stage"] for stage in body["thresholdPresets"]["three_tier"]["stages"]] == ["cold", "warm", "hot"]


def test_saving_the_model_makes_version_2_and_rescores_every_lead_with_it(api, capture, engaged):
    config = default_model_json()
    config["behavioral"]["events"][1]["points"] = 5  # demo_requested 25 -> 5
    quiet = make_lead(engaged.workspace, name="Never scored")  # its processing never ran

    with capture(execute=True):
        response = api.put(MODEL, {"config": config, "version": 99, "isActive": False}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["version"], body["isActive"], body["createdBy"]) == (2, True, api.user.email)
    assert body["config"]["behavioral"]["events"][1] == {"name": "demo_requested", "points": 5}
    versions = api.get(f"{MODEL}/versions").json()
    assert versions["count"] == 2
    assert [(row["version"], row["isActive"]) for row in versions["results"]] == [(2, True), (1, False)]
    assert versions["results"][1]["config"] == default_model_json()
    engaged.refresh_from_db()
    assert engaged.score == 80
    latest = api.get(history_url(engaged, "?limit=1")).json()["results"][0]
    assert (latest["previousScore"], latest["newScore"], latest["reason"], latest["modelVersion"]) == (100, 80, "scoring model v2", 2)
    assert api.get(score_url(engaged)).json()["modelVersion"] == 2
    assert ScoreChange.objects.get(lead=quiet).model_version == 2

    # Later changes carry the version that produced them.
    track(api, capture, engaged, "email_opened")
    assert api.get(history_url(engaged, "?limit=1")).json()["results"][0]["modelVersion"] == 2


def test_an_invalid_model_is_400_naming_the_path_and_saves_no_version(api):
    config = default_model_json()
    config["behavioral"]["events"][0]["points"] = "ten"
    config["behavioral"]["events"][1]["window"] = "a fortnight"

    response = api.put(MODEL, {"config": config}, format="json")

    assert response.status_code == 400
    fields = error_fields(response)
    assert "config.behavioral.events[0].points" in fields
    assert "config.behavioral.events[1].window" in fields
    assert api.get(f"{MODEL}/versions").json()["count"] == 1
    assert api.get(MODEL).json()["version"] == 1


def test_an_unknown_key_in_the_model_is_400_naming_it(api):
    config = default_model_json()
    config["decay"]["halfLifeDays"] = 14

    response = api.put(MODEL, {"config": config}, format="json")

    assert response.status_code == 400
    assert "config.decay.halfLifeDays" in error_fields(response)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "config"),
        ({"thresholdPreset": "seed000", "thresholds": threshold_preset_json("seed000")}, "thresholdPreset"),
        ({"thresholdPreset": "five_star"}, "thresholdPreset"),
        (
            {"thresholds": {"stages": [{"stage": "cold", "minScore": 0, "actions": [{"type": "fax"}]}]}},
            "thresholds.stages[0].actions[0].type",
        ),
    ],
)
def test_a_bad_model_body_is_400_naming_the_field(api, body, field):
    response = api.put(MODEL, body, format="json")

    assert response.status_code == 400
    assert field in error_fields(response)
    assert ScoringModel.objects.filter(workspace=api.workspace).count() <= 1


def test_the_three_tier_preset_changes_the_bands(api, capture):
    lead = create_lead(api, capture, title="Marketing Director", company={"name": "Initech", "industry": "Technology"})
    assert (lead.score, lead.score_band) == (35, "warm")  # seed 000: warm is 20-49

    with capture(execute=True):
        response = api.put(MODEL, {"thresholdPreset": "three_tier"}, format="json")

    assert response.status_code == 200
    assert response.json()["thresholds"] == threshold_preset_json("three_tier")
    assert response.json()["config"] == default_model_json()
    lead.refresh_from_db()
    assert (lead.score, lead.score_band) == (35, "cold")  # three tiers: cold is 0-39
    latest = api.get(history_url(lead, "?limit=1")).json()["results"][0]
    assert (latest["band"], latest["thresholdCrossed"], latest["modelVersion"]) == ("cold", "cold", 2)
    assert api.get(score_url(lead)).json()["band"] == "cold"


def test_rescoring_on_demand_is_accepted_and_scores_the_workspaces_leads(
    api, workspace, other_workspace, django_capture_on_commit_callbacks
):
    lead = make_lead(workspace, **FIT)  # its processing never ran
    theirs = make_lead(other_workspace, **FIT)
    assert lead.score_band == ""

    with django_capture_on_commit_callbacks(execute=True):  # the ranges are queued once planned and committed
        response = api.post(f"{MODEL}/rescore")

    assert response.status_code == 202
    assert response.json() == {"status": "queued"}
    lead.refresh_from_db()  # Celery runs eagerly in the tests
    assert (lead.score, lead.score_band) == (FIT_SCORE, "warm")
    assert ScoreChange.objects.get(lead=lead).reason == "rescore requested"
    theirs.refresh_from_db()
    assert (theirs.score_band, ScoreChange.objects.filter(lead=theirs).exists()) == ("", False)


# Tenants and roles


def test_another_workspaces_lead_is_404_and_shows_nothing(api, other_workspace):
    theirs = make_lead(other_workspace, name="Their Lead", **FIT)

    for url in (score_url(theirs), history_url(theirs), score_url(theirs, "?at=2026-12-01T00:00:00Z")):
        response = api.get(url)
        assert response.status_code == 404, url
        assert b"Their Lead" not in response.content


def test_an_unknown_or_deleted_lead_is_404(api, engaged):
    assert api.get("/api/v1/leads/not-a-uuid/score").status_code == 404
    assert api.get("/api/v1/leads/8d3f0c1e-0000-4000-8000-000000000001/score-history").status_code == 404
    assert api.delete(f"/api/v1/leads/{engaged.pk}").status_code == 204
    assert api.get(score_url(engaged)).status_code == 404


def test_each_workspace_has_its_own_model(api, api_as, other_workspace):
    theirs = api_as(Role.MARKETER, other_workspace)
    assert api.put(MODEL, {"thresholdPreset": "three_tier"}, format="json").status_code == 200

    assert theirs.get(MODEL).json()["version"] == 1
    assert theirs.get(MODEL).json()["thresholds"] == threshold_preset_json("seed000")
    assert theirs.get(f"{MODEL}/versions").json()["count"] == 1
    assert api.get(f"{MODEL}/versions").json()["count"] == 2


def test_a_viewer_reads_scores_and_the_model_but_cannot_change_it(api_as, engaged):
    viewer = api_as(Role.VIEWER)

    for url in (score_url(engaged), history_url(engaged), MODEL, f"{MODEL}/versions", f"{MODEL}/presets"):
        assert viewer.get(url).status_code == 200, url
    assert viewer.put(MODEL, {"thresholdPreset": "three_tier"}, format="json").status_code == 403
    assert viewer.post(f"{MODEL}/rescore").status_code == 403
    assert ScoringModel.objects.filter(workspace=engaged.workspace).count() == 1


def test_a_sales_rep_cannot_change_the_model(api_as, engaged):
    rep = api_as(Role.SALES_REP)
    assert rep.get(score_url(engaged)).status_code == 200
    assert rep.put(MODEL, {"thresholdPreset": "three_tier"}, format="json").status_code == 403


def test_without_a_token_every_endpoint_is_401(engaged):
    anonymous = APIClient()
    for method, url in [
        ("get", score_url(engaged)),
        ("get", history_url(engaged)),
        ("get", MODEL),
        ("put", MODEL),
        ("get", f"{MODEL}/versions"),
        ("get", f"{MODEL}/presets"),
        ("post", f"{MODEL}/rescore"),
    ]:
        assert getattr(anonymous, method)(url).status_code == 401, url
