"""A visitor browses three pages from a campaign, submits a tracked form, and becomes one lead."""

import json

import pytest
from django.test import Client

from leads.models import Lead
from leads.tracking.models import TrackEvent, TrackingSite, Visitor
from leads.tracking.services import tracking_site_create

pytestmark = pytest.mark.django_db
HUMAN_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
ORIGIN = "https://www.example.com"


@pytest.fixture
def site(workspace) -> TrackingSite:
    return tracking_site_create(workspace=workspace, name="Example", allowed_origins=[ORIGIN])


def post(client, site, events, visitor="visitor-0001", **extra):
    body = json.dumps({"visitorId": visitor, "events": events, "context": {"js": True}})
    return client.post(
        f"/api/v1/track?k={site.site_key}", body, content_type="text/plain", HTTP_USER_AGENT=HUMAN_UA, HTTP_ORIGIN=ORIGIN, **extra
    )


def test_three_pageviews_and_a_form_make_one_lead_with_its_history(site, api):
    client = Client()
    pages = [
        "https://www.example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=nov",
        "https://www.example.com/pricing",
        "https://www.example.com/demo",
    ]
    for index, url in enumerate(pages):
        response = post(client, site, [{"type": "pageview", "url": url, "messageId": f"pv-{index}", "title": f"Page {index}"}])
        assert response.status_code == 202, response.content
        assert response["Access-Control-Allow-Origin"] == ORIGIN
    response = post(
        client,
        site,
        [
            {"type": "form", "name": "form_viewed", "properties": {"formId": "demo-form"}},
            {
                "type": "form",
                "name": "form_submitted",
                "properties": {"formId": "demo-form", "fields": {"email": "Jane@Acme.io", "full_name": "Jane Doe"}},
            },
        ],
    )
    assert response.status_code == 202, response.content

    lead = Lead.objects.get(workspace=site.workspace, email="jane@acme.io")
    assert lead.name == "Jane Doe"
    assert lead.source_type == "form"
    assert lead.utm_source == "newsletter"
    assert Visitor.objects.get(visitor_key="visitor-0001").lead == lead
    assert TrackEvent.objects.filter(lead=lead).count() == 5

    profile = api.get(f"/api/v1/leads/{lead.pk}/profile").json()
    assert profile["engagement"]["totalPageviews"] == 3
    assert profile["engagement"]["totalSessions"] == 1
    assert profile["attribution"]["firstTouch"]["source"] == "newsletter"
    timeline = api.get(f"/api/v1/leads/{lead.pk}/timeline?types=form,pageview").json()["items"]
    assert [item["type"] for item in timeline].count("pageview") == 3
    assert {item["data"]["action"] for item in timeline if item["type"] == "form"} == {"form_viewed", "form_submitted"}
