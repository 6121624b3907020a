"""Helpers for the tracking tests: a site with the snippet, and a browser or server posting to the Track API."""

import itertools
import json
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.test import Client
from django.utils import timezone

from leads.tracking.models import TrackingSite
from leads.tracking.services import tracking_site_create
from leadsmgr.celery import app as celery_app

HUMAN_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
ORIGIN = "https://www.example.com"
FOREIGN_ORIGIN = "https://evil.example.net"

_counter = itertools.count(1)


def make_site(workspace, **data) -> TrackingSite:
    """A tracking site through the service, as the settings page creates it; allowed from ORIGIN."""
    data.setdefault("name", f"Site {next(_counter)}")
    data.setdefault("allowed_origins", [ORIGIN])
    return tracking_site_create(workspace=workspace, **data)


def visitor_key(label: str = "") -> str:
    """A visitor id as the snippet makes it (8 to 64 letters, digits, '_' or '-')."""
    return f"v-{label or 'anon'}-{next(_counter):06d}"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ago(**delta) -> datetime:
    """A moment in the past (within the 7 days the Track API accepts), to the microsecond."""
    return timezone.now() - timedelta(**delta)


def pageview(url: str = "https://www.example.com/", **extra) -> dict:
    return {"type": "pageview", "url": url, **extra}


def custom(name: str, properties: dict | None = None, **extra) -> dict:
    """A named event; email engagement has its own type (a server may send it)."""
    event = {"type": "email" if name in ("email_opened", "email_clicked") else "event", "name": name, **extra}
    if properties is not None:
        event["properties"] = properties
    return event


def identify(**traits) -> dict:
    return {"type": "identify", "traits": traits}


class Browser:
    """A browser running the snippet on ORIGIN: one visitor id, a human user agent, context.js=true."""

    def __init__(self, site: TrackingSite, visitor: str | None = None, *, user_agent: str = HUMAN_UA, origin: str | None = ORIGIN):
        self.site = site
        self.visitor = visitor or visitor_key()
        self.user_agent = user_agent
        self.origin = origin
        self.client = Client()

    def send(self, *events: dict, js: bool = True, **body):
        payload = {"visitorId": self.visitor, "events": list(events), **body}
        if js is not None:
            payload.setdefault("context", {"js": js})
        return self.post_raw(json.dumps(payload))

    def post_raw(self, body: str, content_type: str = "text/plain"):
        headers = {"HTTP_USER_AGENT": self.user_agent}
        if self.origin:
            headers["HTTP_ORIGIN"] = self.origin
        return self.client.post(f"/api/v1/track?k={self.site.site_key}", body, content_type=content_type, **headers)


def server_post(api, events: list[dict], **body):
    """A server posting with its bearer token (no site key)."""
    return api.post("/api/v1/track", {"events": events, **body}, format="json", HTTP_USER_AGENT="acme-backend/1.0")


def drop_pools():
    """Celery caches its producer pools: dropped so a changed broker URL takes effect."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def broker_down():
    """Celery publishing for real to a closed port (as tests/leads/test_processing.py does): the app's
    cached producer pools are dropped on the way in and out so the URL change takes effect."""
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.broker_url
    try:
        conf.task_always_eager = False
        conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
        drop_pools()
        yield
    finally:
        conf.task_always_eager, conf.broker_url = saved
        drop_pools()


@contextmanager
def real_broker():
    """Celery publishing for real to Redis (settings.REDIS_URL) on a queue of its own; yields a
    function that tells how many messages wait on it. Tests otherwise run tasks eagerly."""
    import uuid

    import redis
    from django.conf import settings

    conf = celery_app.conf
    saved = conf.task_always_eager, conf.broker_url, conf.task_default_queue
    queue = f"test-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        conf.task_always_eager, conf.broker_url, conf.task_default_queue = False, settings.REDIS_URL, queue
        drop_pools()
        yield lambda: client.llen(queue)
    finally:
        client.delete(queue)
        conf.task_always_eager, conf.broker_url, conf.task_default_queue = saved
        drop_pools()
