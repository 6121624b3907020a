"""Helpers for the segment tests (not the criteria compiler's): leads built through capture and scored by
the workspace's default model (seed 000's), events posted through the real Track API, segments made by
the service, and a fake Slack that speaks HTTP.

The default model gives: title "CEO" 20, company size 500+ 20 (100-499: 15), industry Software 15,
demo_requested 25 (never decays), pricing_page_viewed 10 each (max 3, decays); pricing_viewed scores nothing.
"""

import itertools
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.test import TestCase

from leads.models import Lead
from leads.segments.models import Segment
from leads.segments.services import segment_create
from tests.leads.factories import make_lead

_counter = itertools.count(1)

# Seed 000's "Lead Segmentation" example, as JSON.
SEED_CRITERIA = {
    "all": [
        {"field": "company.size", "operator": "gte", "value": 200},
        {"field": "score", "operator": "gte", "value": 50},
        {
            "any": [
                {"field": "events.demo_requested", "operator": "exists"},
                {"field": "events.pricing_viewed", "operator": "gte", "value": 2},
            ]
        },
        {"field": "lastSeenAt", "operator": "within", "value": "14d"},
    ],
    "none": [
        {"field": "status", "operator": "eq", "value": "disqualified"},
        {"field": "tags", "operator": "contains", "value": "competitor"},
    ],
}
SEED_SEGMENT = {
    "name": "High-Intent Enterprise Leads",
    "description": "Enterprise leads showing strong buying signals",
    "criteria": SEED_CRITERIA,
    "refreshInterval": "hourly",
}
# Seed 000's "Segment-Based Automation" example; the Slack action gets its webhookUrl in the tests.
SEED_AUTOMATION = {
    "onEnter": [
        {"action": "enroll_sequence", "sequence": "enterprise_nurture", "delay": 0},
        {"action": "tag", "tags": ["enterprise-prospect"]},
        {"action": "notify", "channel": "slack", "message": "New enterprise lead: {{lead.name}} from {{lead.company.name}}"},
    ],
    "onExit": [
        {"action": "untag", "tags": ["enterprise-prospect"]},
        {"action": "remove_from_sequence", "sequence": "enterprise_nurture"},
    ],
}
SCORE_50 = {"all": [{"field": "score", "operator": "gte", "value": 50}]}


def committed():
    """Runs the transaction.on_commit callbacks of the block (processing, rescoring, automations) as a commit
    would; in a transaction=True test they run at once anyway."""
    return TestCase.captureOnCommitCallbacks(execute=True)


def lead(workspace, *, company=None, **data) -> Lead:
    """A lead through capture, processed (scored, segments re-evaluated) as the worker does after commit."""
    n = next(_counter)
    data.setdefault("name", f"Segment Lead {n}")
    data.setdefault("email", f"segment-lead-{n}@example.com")
    if company is not None:
        data["company"] = company
    with committed():
        created = make_lead(workspace, **data)
    created.refresh_from_db()
    return created


def enterprise_lead(workspace, name: str, *, size: str = "500-1000", title: str = "CEO", industry: str = "Software", **data) -> Lead:
    """Score 55 by the default model with the defaults (CEO 20 + 500+ employees 20 + Software 15)."""
    return lead(workspace, name=name, title=title, company={"name": f"{name} Corp", "size": size, "industry": industry}, **data)


def track(api, target: Lead, *names: str, **extra):
    """A server posting events for the lead through the Track API (bearer token); the events are processed,
    the lead rescored and its segments re-evaluated in this request, and what commit sets off runs."""
    events = [{"type": "event", "name": name, "leadId": str(target.pk), **extra} for name in names]
    with committed():
        response = api.post("/api/v1/track", {"events": events}, format="json", HTTP_USER_AGENT="acme-backend/1.0")
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == len(names), response.content
    return response


def make_segment(workspace, criteria=None, *, name=None, automation=None, refresh_interval="hourly") -> Segment:
    with committed():
        return segment_create(
            workspace=workspace,
            name=name or f"Segment {next(_counter)}",
            criteria=criteria if criteria is not None else SCORE_50,
            automation=automation,
            refresh_interval=refresh_interval,
        )


def member_ids(segment: Segment) -> set:
    return set(segment.memberships.values_list("lead_id", flat=True))


@dataclass
class SlackPost:
    path: str
    content_type: str
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class FakeSlack:
    """An incoming-webhook receiver on 127.0.0.1: records each POST and answers `status` (200 "ok" as Slack does)."""

    def __init__(self, status: int = 200):
        self.posts: list[SlackPost] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append(SlackPost(self.path, self.headers.get("Content-Type", ""), body))
                answer = b"ok" if receiver.status == 200 else b"internal_error"
                self.send_response(receiver.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXXX"

    @property
    def texts(self) -> list[str]:
        return [post.json()["text"] for post in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
