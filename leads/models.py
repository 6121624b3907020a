import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Lower, StrIndex, Substr, Upper
from django.utils import timezone

from pipelines.models import Pipeline, Stage
from workspaces.models import TenantModel, TenantQuerySet, Workspace


class Company(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    domain = models.CharField(max_length=200, blank=True)
    size = models.CharField(max_length=40, blank=True)
    industry = models.CharField(max_length=120, blank=True)
    website = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "companies"
        indexes = [
            # Companies are matched by name without case (name__iexact).
            models.Index(F("workspace"), Upper("name"), name="company_ws_upper_name"),
            models.Index(fields=["workspace", "domain"], name="company_ws_domain"),
        ]

    def __str__(self) -> str:
        return self.name


class Tag(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=60)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="tag_unique_name")]

    def __str__(self) -> str:
        return self.name


class Contact(TenantModel):
    """A person the business works with; created by converting a lead."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    email = models.CharField(max_length=254, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    platform = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["workspace", "email"], name="contact_ws_email"),
            models.Index(fields=["workspace", "phone"], name="contact_ws_phone"),
        ]

    def __str__(self) -> str:
        return self.name


class SourceType(models.TextChoices):
    MANUAL = "manual", "Manual"
    WEBHOOK = "webhook", "Webhook"
    IMPORT = "import", "Import"
    API = "api", "API"
    FORM = "form", "Form"
    TRACKING = "tracking", "Tracking"


class LeadStatus(models.TextChoices):
    NEW = "new", "New"
    WORKING = "working", "Working"
    QUALIFIED = "qualified", "Qualified"
    UNQUALIFIED = "unqualified", "Unqualified"
    CONVERTED = "converted", "Converted"


class LifecycleStage(models.TextChoices):
    VISITOR = "visitor", "Visitor"
    LEAD = "lead", "Lead"
    MQL = "mql", "MQL"
    SQL = "sql", "SQL"
    OPPORTUNITY = "opportunity", "Opportunity"
    CUSTOMER = "customer", "Customer"


class ProcessingState(models.TextChoices):
    """Where a lead is on its way from capture to ready; the sweeper re-enqueues any that stall."""

    RECEIVED = "received", "Received"
    VALIDATED = "validated", "Validated"
    DEDUPLICATED = "deduplicated", "Deduplicated"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class EmailKind(models.TextChoices):
    BUSINESS = "business", "Business"
    FREE = "free", "Free mail"
    DISPOSABLE = "disposable", "Disposable"


def email_domain():
    """The lead's email domain as SQL (what follows the "@", lower-cased; "" without an email). The
    index lead_ws_email_domain is built on this very expression, so a filter on it is an index lookup
    rather than a suffix scan of every lead."""
    return Lower(Substr("email", StrIndex("email", Value("@")) + 1))


class LeadQuerySet(TenantQuerySet):
    def alive(self):
        return self.filter(deleted_at__isnull=True)


class Lead(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index on workspace alone: every index below starts with it, and each index costs every score write.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=200)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.CharField(max_length=254, blank=True)
    phone = models.CharField(max_length=40, blank=True, help_text="E.164 when the number could be parsed.")
    company = models.ForeignKey(Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads")
    title = models.CharField(max_length=200, blank=True)
    department = models.CharField(max_length=120, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166 alpha-2")
    email_kind = models.CharField(max_length=12, choices=EmailKind.choices, blank=True)
    phone_country = models.CharField(max_length=2, blank=True)
    # What capture noticed but accepted: an unparseable phone, an unknown country, ...
    validation_warnings = models.JSONField(default=list, blank=True)

    source_type = models.CharField(max_length=20, choices=SourceType.choices, default=SourceType.MANUAL)
    source_campaign = models.CharField(max_length=200, blank=True)
    source_medium = models.CharField(max_length=120, blank=True)
    source_referrer = models.CharField(max_length=1000, blank=True)
    source_landing_url = models.CharField(max_length=1000, blank=True)
    utm_source = models.CharField(max_length=200, blank=True)
    utm_medium = models.CharField(max_length=200, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    utm_term = models.CharField(max_length=200, blank=True)
    utm_content = models.CharField(max_length=200, blank=True)

    # camelCase keys; `_displayNames` maps each key to the name people see (seed 001, Custom Fields).
    custom_fields = models.JSONField(default=dict, blank=True)
    tags = models.ManyToManyField(Tag, through="LeadTag", related_name="leads", blank=True)

    status = models.CharField(max_length=20, choices=LeadStatus.choices, default=LeadStatus.NEW)
    lifecycle_stage = models.CharField(max_length=20, choices=LifecycleStage.choices, default=LifecycleStage.LEAD)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="leads")
    # Indexed by lead_stage_created, which starts with it.
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="leads", db_index=False)
    score = models.IntegerField(default=0)
    # The scoring band the score falls in (cold, warm, hot, mql, sql, ... per the workspace's thresholds).
    score_band = models.CharField(max_length=40, blank=True)
    qualified_at = models.DateTimeField(null=True, blank=True)
    last_contacted_at = models.DateTimeField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_leads", db_index=False
    )
    # Which inbound webhook created the lead: automations trigger on it.
    source_webhook = models.ForeignKey(
        "integrations.LeadWebhook", null=True, blank=True, on_delete=models.SET_NULL, related_name="leads", db_index=False
    )
    processing_state = models.CharField(max_length=20, choices=ProcessingState.choices, default=ProcessingState.READY)
    processing_state_at = models.DateTimeField(default=timezone.now)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_leads", db_index=False)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads", db_index=False)

    objects = LeadQuerySet.as_manager()

    class Meta:
        db_table = "leads"
        ordering = ["-created_at"]
        indexes = [
            # A stage belongs to one workspace, so the stage alone finds its leads (a board column,
            # newest first); the same index serves the foreign key (what deleting a stage looks up).
            models.Index(fields=["stage", "-created_at"], name="lead_stage_created"),
            models.Index(fields=["workspace", "email", "created_at"], name="lead_ws_email_created"),
            models.Index(fields=["workspace", "phone", "created_at"], name="lead_ws_phone_created"),
            # One entry a lead for its owner: a rep's leads, the unassigned ones (owner IS NULL, then
            # the workspace) and what deleting a user looks up. Each index on `leads` is written again
            # by every write that changes an indexed column (a score, a processing step).
            models.Index(fields=["owner", "workspace"], name="lead_owner_ws"),
            models.Index(fields=["workspace", "-created_at"], name="lead_ws_created"),
            # With id: a list sorted by score breaks ties by id, and a score is shared by ~1% of the leads.
            models.Index(fields=["workspace", "-score", "-id"], name="lead_ws_score_id"),
            models.Index(fields=["workspace", "source_type"], name="lead_ws_source"),
            # The board's per-stage counts, from the index alone (live leads only).
            models.Index(fields=["workspace", "pipeline", "stage"], condition=models.Q(deleted_at__isnull=True), name="lead_board_counts"),
            # Possible duplicates in the drawer are matched by name without case.
            models.Index(F("workspace"), Upper("name"), name="lead_ws_upper_name"),
            # The account roll-up finds the leads of a company's domain.
            models.Index(F("workspace"), email_domain(), name="lead_ws_email_domain"),
            # Foreign keys that are mostly empty (a lead is rarely merged, converted or from a webhook)
            # are indexed only where set: what deleting the row they point to looks up, and no index
            # entry for every empty one that each score write would have to add again.
            models.Index(fields=["source_webhook"], condition=models.Q(source_webhook__isnull=False), name="lead_source_webhook_set"),
            models.Index(fields=["merged_into"], condition=models.Q(merged_into__isnull=False), name="lead_merged_into_set"),
            models.Index(fields=["contact"], condition=models.Q(contact__isnull=False), name="lead_contact_set"),
            models.Index(
                fields=["processing_state", "processing_state_at"],
                condition=~models.Q(processing_state="ready"),
                name="lead_processing_pending",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class LeadTag(models.Model):
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="lead_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="lead_tags")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lead", "tag"], name="leadtag_unique")]
        indexes = [models.Index(fields=["tag", "lead"], name="leadtag_tag_lead")]

    def __str__(self) -> str:
        return f"{self.tag_id} on {self.lead_id}"


class Note(TenantModel):
    """An internal note. Converting a lead links its notes to the contact too."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.CASCADE, related_name="notes")
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.text[:60]


class ActivityType(models.TextChoices):
    CREATED = "created", "Created"
    FIELD_UPDATED = "field_updated", "Field updated"
    STAGE_MOVED = "stage_moved", "Stage moved"
    ASSIGNED = "assigned", "Assigned"
    TAGGED = "tagged", "Tagged"
    UNTAGGED = "untagged", "Tag removed"
    NOTE_ADDED = "note_added", "Note added"
    CONVERTED = "converted", "Converted"
    DELETED = "deleted", "Deleted"
    MERGED = "merged", "Merged"
    CAPTURED_AGAIN = "captured_again", "Submitted again"
    PROCESSED = "processed", "Processing step"
    CONSENT = "consent", "Consent recorded"
    IDENTIFIED = "identified", "Visitor identified"
    IDENTITY_CONFLICT = "identity_conflict", "Identity conflict"
    SCORE_BAND_CHANGED = "score_band_changed", "Score band changed"
    BAND_ACTIONS = "band_actions", "Band actions"
    SEGMENT_ACTIONS = "segment_actions", "Segment actions"


class LeadActivity(TenantModel):
    """The lead's audit log: one row per change a service made, written in the same transaction."""

    id = models.BigAutoField(primary_key=True)
    # History rows are written with every lead and read by lead: an index is a cost on every write,
    # so only what reads them is indexed. Rows of a workspace are looked up only to delete it.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Indexed by activity_lead_created, which starts with it.
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="activities", db_index=False)
    type = models.CharField(max_length=40, choices=ActivityType.choices)
    # Mostly empty (captures, processing, scoring act alone): indexed only where set (activity_actor_set).
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "lead_activities"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "lead activities"
        indexes = [
            models.Index(fields=["lead", "-created_at"], name="activity_lead_created"),
            models.Index(fields=["actor"], condition=models.Q(actor__isnull=False), name="activity_actor_set"),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} · {self.lead_id}"


class ConsentPurpose(models.TextChoices):
    EMAIL_MARKETING = "email_marketing", "Marketing email"
    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"
    PHONE = "phone", "Phone calls"
    DATA_PROCESSING = "data_processing", "Data processing"


class ConsentRecord(TenantModel):
    """Append-only consent history: each grant or withdrawal is a new row, never rewritten."""

    id = models.BigAutoField(primary_key=True)
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="consent_records")
    purpose = models.CharField(max_length=30, choices=ConsentPurpose.choices)
    granted = models.BooleanField()
    source = models.CharField(max_length=40)
    policy_version = models.CharField(max_length=100, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lead", "purpose", "-created_at"], name="consent_lead_purpose")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()}: {'granted' if self.granted else 'withdrawn'}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Consent records are append-only; record a new grant or withdrawal instead.")
        super().save(*args, **kwargs)


class FailedJob(models.Model):
    """A background step that kept failing after its retries; ops replay it from admin."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("workspaces.Workspace", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.CASCADE, related_name="failed_jobs")
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    failed_at = models.DateTimeField(default=timezone.now)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-failed_at"]

    def __str__(self) -> str:
        return f"{self.task_name} {' '.join(self.args)}"


class ImportJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportRun(models.Model):
    """Where a worker's run of an import stands: queued, claimed (running), then done or failed,
    with its report or error."""

    status = models.CharField(max_length=10, choices=ImportJobStatus.choices, default=ImportJobStatus.QUEUED)
    # While running, the report so far (saved with each committed batch); then the final one.
    report = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Set by each claim: a run whose claim was taken over (its worker seemed lost) writes no more.
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The last row counted in `report` and when its batch committed: a run picked up again after its
    # worker was lost resumes after that row (leads.import_jobs).
    resume_after_row = models.PositiveIntegerField(default=0)
    progressed_at = models.DateTimeField(null=True, blank=True)
    # How many times a worker claimed the run.
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        abstract = True


class ImportJob(TenantModel, ImportRun):
    """A CSV import (or dry run) too large to finish inside a web request: a worker runs it and
    people follow its progress; the file stays on the server, never in the database."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    file_name = models.CharField(max_length=80)
    original_name = models.CharField(max_length=200, blank=True)
    rows = models.PositiveIntegerField(default=0)
    mapping = models.JSONField(null=True, blank=True)
    dedup_strategy = models.CharField(max_length=10, default="merge")
    dry_run = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="importjob_status_created")]

    def __str__(self) -> str:
        return f"{'Dry run' if self.dry_run else 'Import'} of {self.original_name or self.file_name} ({self.status})"


class ImportJobPart(ImportRun):
    """One worker's share of a large import: the rows of a part file (people who share an email or
    a phone are in the same part, in file order), imported at the same time as the other parts. The
    last part to finish writes the job's report."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="parts")
    index = models.PositiveSmallIntegerField()
    file_name = models.CharField(max_length=100)
    rows = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="importjobpart_unique_index")]
        indexes = [models.Index(fields=["status", "created_at"], name="importjobpart_status_created")]

    def __str__(self) -> str:
        return f"Part {self.index + 1} of {self.job} ({self.status})"


# Tracking models live in their own module; importing them here registers them with the app.
from leads.segments.models import RefreshInterval, Segment, SegmentEvent, SegmentEventKind, SegmentMembership  # noqa: E402, F401
from leads.tracking.models import (  # noqa: E402, F401
    EventKind,
    IdentityConflict,
    LeadEngagement,
    PersonalizationRule,
    TrackEvent,
    TrackingSite,
    TrackSession,
    Visitor,
)


class StageLeadCount(models.Model):
    """How many live leads each stage holds, kept by database triggers on the leads table (see
    migrations 0013 and 0015), so the board's first paint reads a few rows instead of counting a
    million: the count here plus the stage's StageLeadCountDelta rows not yet folded in.

    Triggers rather than services: every path that changes a lead's stage or deleted state (ORM,
    bulk UPDATEs, raw SQL, admin) is counted the same. No foreign keys, so a cascade that deletes
    stages before their leads cannot fail; a deleted stage's row is simply never read again.
    """

    stage = models.OneToOneField(Stage, on_delete=models.DO_NOTHING, db_constraint=False, primary_key=True, related_name="+")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    lead_count = models.BigIntegerField(default=0)

    class Meta:
        db_table = "lead_stage_counts"

    def __str__(self) -> str:
        return f"{self.stage_id}: {self.lead_count}"


class StageLeadCountDelta(models.Model):
    """+1 / -1 for a lead entering or leaving a stage's live count, appended by the PostgreSQL
    trigger; stage_counts_compact folds them into StageLeadCount every few seconds. Appending
    instead of updating the stage's count row means concurrent captures into one stage never wait
    for each other's transactions (a single counter row would be locked until each commit).
    SQLite, one writer at a time, updates StageLeadCount directly and leaves this table empty."""

    id = models.BigAutoField(primary_key=True)
    stage = models.ForeignKey(Stage, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    delta = models.IntegerField()

    class Meta:
        db_table = "lead_stage_count_deltas"

    def __str__(self) -> str:
        return f"{self.stage_id}: {self.delta:+d}"


class LeadSearchEntry(models.Model):
    """A lead's searchable text (name, email, phone), kept by PostgreSQL triggers on `leads` and
    searched through its trigram index (leads.selectors.lead_search_matches).

    Its own table rather than a trigram index on `leads`: every write to a lead row that changes an
    indexed column (score, stage, processing state) adds an entry to every index of the row, and a
    trigram index takes dozens of entries a lead. With that index on `leads`, changing the score of
    100,000 of 1M leads took 27.6 s instead of 13.3. Here a row is written only when a lead is
    created or its name, email, phone or source changes, or its tags change. SQLite searches by
    scanning and leaves this table empty.

    On PostgreSQL the table also has `source_type` and `tag_ids` (uuid[]), in the same GIN index as
    the text, so a search filtered by source and tag is narrowed inside the index (leads 0021). They
    are not fields here: only the triggers write them and only lead_search_matches reads them, and
    an array column has no SQLite type."""

    lead = models.OneToOneField(Lead, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    # Not indexed: a search reads the rows its trigram index finds, and checks the workspace there.
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    name = models.TextField(default="")
    email = models.TextField(default="")
    phone = models.TextField(default="")

    class Meta:
        db_table = "lead_search"

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.name}"
