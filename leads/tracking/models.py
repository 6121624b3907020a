"""Tracking: sites that carry the snippet, visitors, sessions, events, and each lead's engagement.

Events → Sessions → Visitors → Lead (seed 003). A visitor is one browser (a first-party cookie);
several visitors can belong to one lead. Counters on LeadEngagement are maintained incrementally
by the event processor, never recounted per request.
"""

import secrets
import uuid

from django.db import models
from django.utils import timezone

from workspaces.models import TenantModel, Workspace

SITE_KEY_PREFIX = "site_"
DEFAULT_AUTO_CAPTURE_EVENTS = ["form_submitted", "trial_started", "demo_requested", "content_downloaded", "newsletter_subscribed"]
# Seed 000's forms.trackAll defaults.
DEFAULT_FORM_EXCLUDE = ["#search-form", "#login-form", "form[role=search]"]
DEFAULT_FIELD_MAPPING = {
    "email": "email",
    "full_name": "name",
    "company_name": "company",
    "phone_number": "phone",
    "job_title": "title",
}
FORM_EVENTS = ("form_viewed", "field_focused", "field_completed", "form_abandoned", "form_submitted")


def default_auto_capture_events() -> list[str]:
    return list(DEFAULT_AUTO_CAPTURE_EVENTS)


def default_required_fields() -> list[str]:
    return ["email"]


def default_form_include() -> list[str]:
    return ["form"]


def default_form_exclude() -> list[str]:
    return list(DEFAULT_FORM_EXCLUDE)


def default_field_mapping() -> dict[str, str]:
    return dict(DEFAULT_FIELD_MAPPING)


def default_form_events() -> dict[str, bool]:
    return {"formViewed": True, "fieldFocused": True, "fieldCompleted": True, "formAbandoned": True, "formSubmitted": True}


def generate_site_key() -> str:
    return SITE_KEY_PREFIX + secrets.token_urlsafe(18)


class TrackingSite(TenantModel):
    """A website carrying the snippet. Its key is public by design: it can only write events for
    its workspace, from the origins listed here, within its rate limit."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    site_key = models.CharField(max_length=40, unique=True, default=generate_site_key, editable=False)
    allowed_origins = models.JSONField(default=list, blank=True, help_text='e.g. ["https://www.example.com"]')
    form_include = models.JSONField(default=default_form_include, blank=True)
    form_exclude = models.JSONField(default=default_form_exclude, blank=True)
    field_mapping = models.JSONField(default=default_field_mapping, blank=True)
    form_events = models.JSONField(default=default_form_events, blank=True)
    auto_capture_events = models.JSONField(default=default_auto_capture_events, blank=True)
    auto_capture_required_fields = models.JSONField(default=default_required_fields, blank=True)
    dedup_strategy = models.CharField(max_length=10, default="merge")
    rate_limit_per_minute = models.PositiveIntegerField(default=6000)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Visitor(TenantModel):
    """One browser, known by the first-party cookie the snippet sets."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    visitor_key = models.CharField(max_length=64)
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="visitors")
    identified_at = models.DateTimeField(null=True, blank=True)
    # Proven identity (signed email link, a server, a lead its own submission created): only then do
    # pages greet the visitor with the lead's data; anyone can type someone else's email.
    identity_verified = models.BooleanField(default=False)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    user_agent = models.CharField(max_length=300, blank=True)
    is_bot = models.BooleanField(default=False)
    bot_reason = models.CharField(max_length=40, blank=True)
    # First touch of this browser: the campaign that brought it, whatever it does later.
    utm_source = models.CharField(max_length=200, blank=True)
    utm_medium = models.CharField(max_length=200, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    utm_term = models.CharField(max_length=200, blank=True)
    utm_content = models.CharField(max_length=200, blank=True)
    referrer = models.CharField(max_length=1000, blank=True)
    landing_url = models.CharField(max_length=1000, blank=True)
    # A sliding count of recent events: a human does not send hundreds a minute.
    rate_window_start = models.DateTimeField(null=True, blank=True)
    rate_window_events = models.PositiveIntegerField(default=0)
    rate_window_pageviews = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "visitor_key"], name="visitor_unique_key")]
        indexes = [models.Index(fields=["lead"], name="visitor_lead")]

    def __str__(self) -> str:
        return self.visitor_key


class TrackSession(TenantModel):
    """Consecutive activity of one visitor; 30 minutes without an event ends it."""

    id = models.BigAutoField(primary_key=True)
    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="sessions")
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="track_sessions")
    started_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    # Includes the time spent on the last page, reported when the visitor leaves it.
    ended_at = models.DateTimeField()
    pageviews = models.PositiveIntegerField(default=0)
    events = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=200, blank=True)
    medium = models.CharField(max_length=200, blank=True)
    campaign = models.CharField(max_length=200, blank=True)
    referrer = models.CharField(max_length=1000, blank=True)
    landing_url = models.CharField(max_length=1000, blank=True)
    is_bot = models.BooleanField(default=False)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["visitor", "-last_event_at"], name="session_visitor_last"),
            models.Index(fields=["lead", "-started_at"], name="session_lead_started"),
        ]

    def __str__(self) -> str:
        return f"session {self.pk} of {self.visitor_id}"

    @property
    def duration_seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


class EventKind(models.TextChoices):
    PAGEVIEW = "pageview", "Page view"
    PAGE_LEAVE = "page_leave", "Page left"
    EVENT = "event", "Event"
    IDENTIFY = "identify", "Identify"
    FORM = "form", "Form"
    EMAIL = "email", "Email"


class TrackEvent(TenantModel):
    """One accepted event, stored before the Track API answers 202 and processed afterwards
    (sessions, identity, counters, auto-capture); `processed_at` is empty until then."""

    id = models.BigAutoField(primary_key=True)
    # The workspace, visitor and lead keys are each indexed by a composite index that starts with
    # them (trackevent_name_lead, trackevent_visitor_time, trackevent_lead_time): an event is
    # written once and updated once (processed), and each index more is written both times.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    site = models.ForeignKey(TrackingSite, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    visitor_key = models.CharField(max_length=64, blank=True)
    visitor = models.ForeignKey(Visitor, null=True, blank=True, on_delete=models.CASCADE, related_name="events", db_index=False)
    session = models.ForeignKey(TrackSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="track_events", db_index=False)
    kind = models.CharField(max_length=12, choices=EventKind.choices)
    name = models.CharField(max_length=100)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    url = models.CharField(max_length=1000, blank=True)
    title = models.CharField(max_length=300, blank=True)
    referrer = models.CharField(max_length=1000, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    # The sender's id for the event: a retried batch is stored once.
    message_id = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    scroll_depth = models.PositiveSmallIntegerField(null=True, blank=True)
    is_bot = models.BooleanField(default=False)
    bot_reason = models.CharField(max_length=40, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "track_events"
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "message_id"], condition=~models.Q(message_id=""), name="trackevent_unique_message"
            )
        ]
        indexes = [
            models.Index(fields=["lead", "-occurred_at"], name="trackevent_lead_time"),
            # Scoring and segments count a lead's events by name, optionally within a window.
            models.Index(fields=["workspace", "name", "lead", "occurred_at"], name="trackevent_name_lead"),
            models.Index(fields=["visitor", "occurred_at"], name="trackevent_visitor_time"),
            # Work still to do, by visitor: tiny, since events are processed within seconds.
            models.Index(
                fields=["workspace", "visitor_key", "received_at"],
                condition=models.Q(processed_at__isnull=True),
                name="trackevent_unprocessed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} at {self.occurred_at:%Y-%m-%d %H:%M}"


class IdentityConflict(TenantModel):
    """A visitor already tied to one lead identified as someone else: recorded, never merged."""

    id = models.BigAutoField(primary_key=True)
    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="identity_conflicts")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="identity_conflicts")
    attempted_email = models.CharField(max_length=254, blank=True)
    attempted_lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=40)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.visitor_id}: {self.attempted_email}"


class LeadEngagement(models.Model):
    """A lead's engagement summary, kept by increments (UPDATE … SET n = n + k) so concurrent
    events never lose a count. Touches are sessions that came from a known source, and email clicks."""

    lead = models.OneToOneField("leads.Lead", primary_key=True, on_delete=models.CASCADE, related_name="engagement")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="+")
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    total_sessions = models.PositiveIntegerField(default=0)
    total_pageviews = models.PositiveIntegerField(default=0)
    total_events = models.PositiveIntegerField(default=0)
    emails_opened = models.PositiveIntegerField(default=0)
    emails_clicked = models.PositiveIntegerField(default=0)
    touch_count = models.PositiveIntegerField(default=0)
    first_touch_at = models.DateTimeField(null=True, blank=True)
    first_touch_source = models.CharField(max_length=200, blank=True)
    first_touch_medium = models.CharField(max_length=200, blank=True)
    first_touch_campaign = models.CharField(max_length=200, blank=True)
    last_touch_at = models.DateTimeField(null=True, blank=True)
    last_touch_source = models.CharField(max_length=200, blank=True)
    last_touch_medium = models.CharField(max_length=200, blank=True)
    last_touch_campaign = models.CharField(max_length=200, blank=True)

    class Meta:
        db_table = "lead_engagement"
        indexes = [models.Index(fields=["workspace", "-last_seen_at"], name="engagement_ws_last_seen")]

    def __str__(self) -> str:
        return f"engagement of {self.lead_id}"


class PersonalizationRule(TenantModel):
    """Changes a page applies for visitors matching the conditions (seed 000, Personalization).

    conditions: {"lifecycleStages": [...], "tags": [...], "scoreMin": n, "scoreMax": n,
    "returningVisitor": bool, "identified": bool}; changes: [{"selector", "content" | "show" | "hide"}]."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    conditions = models.JSONField(default=dict, blank=True)
    changes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "created_at"]

    def __str__(self) -> str:
        return self.name
