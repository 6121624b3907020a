"""Capture: the one path by which a submission (webhook, form, import) becomes a lead.

In one transaction: normalize, find an existing lead (email, then phone), apply the dedup
strategy, record consent, write the activity. Processing continues after commit in a task.
"""

from bisect import insort
from copy import copy
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DataError, transaction
from django.db.models import Case, Q, When
from django.utils import timezone

from leads.locks import lock_values
from leads.models import ActivityType, ConsentPurpose, ConsentRecord, Lead, LeadActivity, LeadTag, ProcessingState
from leads.normalization import InvalidValue, assess_phone, email_kind, normalize_country, normalize_email, normalize_tag
from leads.services import (
    DISPLAY_NAMES_KEY,
    MAX_TAGS_PER_LEAD,
    UPDATABLE_FIELDS,
    _activity,
    company_resolve,
    custom_fields_merge,
    enqueue_lead_processing,
    lead_create,
    leads_create_many,
    tags_resolve,
)
from leadsmgr.bulk import copy_insert
from workspaces.models import User, Workspace

CREATED, MERGED, DUPLICATE = "created", "merged", "duplicate"
MERGE, REPLACE, SKIP = "merge", "replace", "skip"

# Core fields a submission may carry (model names): what people may edit, less what capture decides
# itself, plus the country. Their limits are the model's column lengths.
CORE_TEXT_FIELDS = (*(field for field in UPDATABLE_FIELDS if field not in ("status", "lifecycle_stage", "source_type")), "country")


@dataclass
class Submission:
    """What a capture path hands over: core fields in model names, custom fields by the names the
    sender used, and the context of the submission."""

    core: dict[str, Any]
    custom_fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    consents: dict[str, bool] = field(default_factory=dict)
    policy_version: str = ""
    source_type: str = "webhook"
    dedup_strategy: str = MERGE
    webhook: Any = None
    pipeline: Any = None
    stage: Any = None
    fallback_name: str = ""
    ip: str | None = None
    user_agent: str = ""


@dataclass
class CaptureResult:
    lead: Lead
    status: str
    warnings: list[str]


def _normalized(workspace: Workspace, submission: Submission) -> tuple[dict, dict, list[str]]:
    """Returns (core fields, custom fields, warnings); raises ValidationError for what cannot be kept."""
    core = {key: ("" if value is None else str(value).strip()) for key, value in submission.core.items() if key in CORE_TEXT_FIELDS}
    custom = dict(submission.custom_fields)
    warnings: list[str] = []
    try:
        core["email"] = normalize_email(core.get("email", ""))
    except InvalidValue as error:
        raise ValidationError({"email": str(error)}) from None
    core["phone"], phone_country, phone_warnings = assess_phone(core.get("phone", ""), workspace.default_region)
    warnings += phone_warnings
    if core.get("country"):
        try:
            core["country"] = normalize_country(core["country"])
        except InvalidValue:
            warnings.append(f"country {core['country']!r} is not a known country; kept as a custom field")
            custom["country"] = core.pop("country")
    if not any(core.get(key) for key in ("name", "first_name", "last_name", "email", "phone")):
        raise ValidationError({"name": "No usable identity: send at least a name, an email or a phone."})
    # Checked after normalization, so "United States" (→ "US") fits and a long unparseable phone does not.
    too_long = {
        key: f"At most {limit} characters." for key, value in core.items() if len(value) > (limit := Lead._meta.get_field(key).max_length)
    }
    if too_long:
        raise ValidationError(too_long)
    core["phone_country"] = phone_country
    core["email_kind"] = email_kind(core["email"]) if core["email"] else ""
    return {key: value for key, value in core.items() if value != ""}, custom, warnings


def _find_existing(workspace: Workspace, email: str, phone: str) -> Lead | None:
    """The oldest live lead with this email, else the oldest with this phone, locked: one query."""
    if not (email or phone):
        return None
    live = Lead.objects.filter(workspace=workspace).alive().select_for_update(of=("self",)).select_related("stage", "owner", "company")
    if email and phone:
        return live.filter(Q(email=email) | Q(phone=phone)).order_by(Case(When(email=email, then=0), default=1), *OLDEST_FIRST).first()
    return live.filter(email=email).order_by(*OLDEST_FIRST).first() if email else live.filter(phone=phone).order_by(*OLDEST_FIRST).first()


# Which of several leads with one email (or phone) a submission merges into: the oldest, and of
# leads created in the same instant (one import batch), the lowest id, so the order is total.
OLDEST_FIRST = ("created_at", "id")


def _age(lead: Lead) -> tuple:
    return lead.created_at, lead.pk


class _LiveLeads:
    """The live leads a batch's repeated submissions may name, fetched and locked in one query and
    found as _find_existing would find them, as the batch changes them: a merge may give a lead an
    email or phone, and a later submission with it then finds that lead.

    Complete by construction: a lead a submission finds either had the submission's email or phone
    when the batch started (so it was fetched), or got it from an earlier submission of the batch
    (which found it, so it was fetched)."""

    def __init__(self, leads: list[Lead]):
        self._by: dict[str, dict[str, list[Lead]]] = {"email": {}, "phone": {}}
        for lead in leads:
            self._add(lead)

    @classmethod
    def locked(cls, workspace: Workspace, items: list["_Prepared"]) -> "_LiveLeads":
        emails = sorted({item.core["email"] for item in items if item.core.get("email")})
        phones = sorted({item.core["phone"] for item in items if item.core.get("phone")})
        if not (emails or phones):
            return cls([])
        leads = list(
            Lead.objects.filter(workspace=workspace)
            .alive()
            .filter(Q(email__in=emails) | Q(phone__in=phones))
            .select_for_update(of=("self",))
            .select_related("stage", "owner", "company")
            .order_by(*OLDEST_FIRST)
        )
        for lead in leads:
            lead.workspace = workspace  # resolving a company or tags for it reads its workspace
        return cls(leads)

    def _add(self, lead: Lead) -> None:
        for kind in ("email", "phone"):
            if value := getattr(lead, kind):
                same = self._by[kind].setdefault(value, [])
                if lead not in same:
                    insort(same, lead, key=_age)

    def _remove(self, lead: Lead, identity: tuple[str, str]) -> None:
        for kind, value in zip(("email", "phone"), identity, strict=True):
            if value and lead in (same := self._by[kind].get(value, [])):
                same.remove(lead)

    def find(self, email: str, phone: str) -> Lead | None:
        for kind, value in (("email", email), ("phone", phone)):
            if value and (same := self._by[kind].get(value)):
                return same[0]
        return None

    def changed(self, lead: Lead, identity_before: tuple[str, str] | None) -> None:
        """After a submission was applied to `lead` (or created it)."""
        if identity_before is not None:
            self._remove(lead, identity_before)
        self._add(lead)

    def reload(self, lead: Lead, identity_before: tuple[str, str]) -> None:
        """After a submission failed in its savepoint: the database kept the lead as it was, but the
        object may hold the failed submission's changes."""
        self._remove(lead, (lead.email, lead.phone))
        self._remove(lead, identity_before)
        lead.refresh_from_db()
        self._add(lead)


@dataclass
class _Prepared:
    """A submission normalized and checked: what capture writes."""

    submission: Submission
    core: dict
    custom: dict
    warnings: list[str]
    tags: list[str]
    workspace_id: Any

    @property
    def identity_locks(self) -> list[str]:
        return [
            f"lead:{self.workspace_id}:{kind}:{value}"
            for kind, value in (("email", self.core.get("email", "")), ("phone", self.core.get("phone", "")))
            if value
        ]

    def new_lead_data(self) -> dict:
        core, submission = self.core, self.submission
        name = core.get("name") or " ".join(p for p in (core.get("first_name"), core.get("last_name")) if p)
        return {
            **core,
            "name": name or core.get("email") or core.get("phone") or submission.fallback_name,
            "company": submission.core.get("company"),
            "custom_fields": self.custom,
            "tags": self.tags,
            "source_type": submission.source_type,
            "pipeline": submission.pipeline,
            "stage": submission.stage,
            "validation_warnings": self.warnings,
            "source_webhook": submission.webhook,
        }


def _prepare(workspace: Workspace, submission: Submission) -> _Prepared:
    """Raises ValidationError for what cannot be kept; writes nothing."""
    core, custom, warnings = _normalized(workspace, submission)
    tags = sorted({normalize_tag(tag) for tag in submission.tags if normalize_tag(tag)})
    if len(tags) > MAX_TAGS_PER_LEAD:
        raise ValidationError({"tags": f"At most {MAX_TAGS_PER_LEAD} tags."})
    return _Prepared(submission=submission, core=core, custom=custom, warnings=warnings, tags=tags, workspace_id=workspace.pk)


def submission_check(*, workspace: Workspace, submission: Submission) -> list[str]:
    """Checks a submission as capture will (normalization, identity, lengths, tags) without writing
    anything: what a queued webhook does before it answers 202. Returns the warnings capture would
    give; raises ValidationError naming the field."""
    return _prepare(workspace, submission).warnings


@transaction.atomic
def lead_capture(*, workspace: Workspace, submission: Submission, actor: User | None = None) -> CaptureResult:
    return _capture_prepared(workspace, _prepare(workspace, submission), actor)


def _capture_prepared(workspace: Workspace, prepared: _Prepared, actor: User | None) -> CaptureResult:
    core = prepared.core
    # Two submissions of one person at once: the second waits, then finds the first's lead.
    lock_values(*prepared.identity_locks)
    existing = _find_existing(workspace, core.get("email", ""), core.get("phone", ""))
    lead, status, activity = _create_or_apply(workspace, prepared, existing, actor)
    if activity is not None:
        activity.save()
    if status == MERGED:
        enqueue_lead_processing(lead_id=lead.pk)
    return CaptureResult(lead=lead, status=status, warnings=prepared.warnings)


def _create_or_apply(workspace: Workspace, prepared: _Prepared, existing: Lead | None, actor: User | None):
    """Creates the submission's lead, or applies it to `existing` by its dedup strategy, and records
    its consent. Returns (lead, status, the returning lead's activity unsaved, or None): the caller
    writes the activity and sends a merged lead to processing."""
    if existing is None:
        lead, status, activity = lead_create(workspace=workspace, actor=actor, data=prepared.new_lead_data()), CREATED, None
    else:
        lead, status, activity = _apply_to_existing(
            existing, prepared.core, prepared.custom, prepared.tags, prepared.submission, prepared.warnings, actor
        )
    _record_consents(lead, prepared.submission, actor)
    return lead, status, activity


def _capture_repeated(workspace: Workspace, items: list[tuple[int, _Prepared]], actor: User | None) -> dict[int, Any]:
    """Captures, in order, a batch's submissions that name a known person (or one an earlier
    submission names), each with the outcome _capture_prepared would give it one by one: the leads
    they may find are fetched and locked in one query, each submission is applied in its own
    savepoint, and their activities are written in one COPY and their processing sent in one
    message at the end. Returns index → CaptureResult, or the error that refused the submission."""
    live = _LiveLeads.locked(workspace, [item for _, item in items])
    outcomes: dict[int, Any] = {}
    activities: list[LeadActivity] = []
    merged_ids: list = []
    for index, item in items:
        existing = live.find(item.core.get("email", ""), item.core.get("phone", ""))
        before = (existing.email, existing.phone) if existing is not None else None
        try:
            with transaction.atomic():
                lead, status, activity = _create_or_apply(workspace, item, existing, actor)
        except (ValidationError, DataError) as error:
            outcomes[index] = error
            if existing is not None:
                live.reload(existing, before)
            continue
        live.changed(lead, before)
        if activity is not None:
            activities.append(activity)
        if status == MERGED:
            merged_ids.append(lead.pk)
        # A copy: a later submission of the batch may change the lead, and this result tells what
        # this one left, as one by one.
        outcomes[index] = CaptureResult(lead=copy(lead), status=status, warnings=item.warnings)
    copy_insert(LeadActivity, activities)
    if merged_ids:
        from leads.tasks import enqueue_processing_many

        transaction.on_commit(lambda: enqueue_processing_many(merged_ids))
    return outcomes


def leads_capture_many(
    *, workspace: Workspace, submissions: list[Submission], actor: User | None = None
) -> list[CaptureResult | ValidationError | DataError]:
    """Captures a batch of submissions (an import's rows) with the outcome lead_capture would give
    each in order, but writes the new people in a few statements instead of ~15 per row.

    Returns, per submission, its CaptureResult or the error that refused it (nothing of it is
    written). Run it in a transaction. A submission naming a person that is already a lead, or that
    an earlier submission of the batch names (by email or phone), goes through lead_capture in its
    own savepoint after the new ones are written, so it merges exactly as it would one by one: no
    earlier submission can affect a new person's row (they share no email or phone), and the
    new leads exist before any later submission that repeats them.
    """
    outcomes: list[CaptureResult | ValidationError | DataError | None] = [None] * len(submissions)
    prepared: dict[int, _Prepared] = {}
    for index, submission in enumerate(submissions):
        try:
            prepared[index] = _prepare(workspace, submission)
        except ValidationError as error:
            outcomes[index] = error
    lock_values(*(key for item in prepared.values() for key in item.identity_locks))

    identities = {index: _identities(item.core) for index, item in prepared.items()}
    emails = {value for keys in identities.values() for kind, value in keys if kind == "email"}
    phones = {value for keys in identities.values() for kind, value in keys if kind == "phone"}
    known: set[tuple[str, str]] = set()
    if emails or phones:
        # Locked now, before the new people's companies are created (under their locks): a save or
        # a capture locks a lead before its company, so the batch takes its locks in the same order
        # and cannot deadlock with one of them.
        known_leads = Lead.objects.filter(workspace=workspace).alive().filter(Q(email__in=emails) | Q(phone__in=phones))
        for email, phone in known_leads.select_for_update().order_by("pk").values_list("email", "phone"):
            known.update({("email", email), ("phone", phone)})
    new, repeated, seen = [], [], set()
    for index in sorted(prepared):
        keys = identities[index]
        (repeated if keys & known or keys & seen else new).append(index)
        seen |= keys

    try:
        with transaction.atomic():
            leads = leads_create_many(workspace=workspace, actor=actor, entries=[prepared[index].new_lead_data() for index in new])
    except (ValidationError, DataError):
        # Something in the batch does not fit: capture them one by one, which names the culprit.
        repeated, leads = sorted(new + repeated), []
        new = []
    for index, lead in zip(new, leads, strict=True):
        _record_consents(lead, prepared[index].submission, actor)
        outcomes[index] = CaptureResult(lead=lead, status=CREATED, warnings=prepared[index].warnings)
    for index, outcome in _capture_repeated(workspace, [(index, prepared[index]) for index in repeated], actor).items():
        outcomes[index] = outcome
    return outcomes


def _identities(core: dict) -> set[tuple[str, str]]:
    return {(kind, core[kind]) for kind in ("email", "phone") if core.get(kind)}


def _apply_to_existing(lead: Lead, core: dict, custom: dict, tags: list[str], submission: Submission, warnings, actor):
    """Applies the dedup strategy to a returning lead and saves it. Its owner and stage never change
    here. Returns (lead, status, its activity unsaved): the caller writes the activity and, for a
    merge, sends the lead to processing (one by one, or once for a batch)."""
    strategy = submission.dedup_strategy
    changes: dict[str, dict] = {}
    now = timezone.now()
    if strategy != SKIP:
        for key, value in core.items():
            old = getattr(lead, key)
            if value != old and (strategy == REPLACE or not old):
                changes[key] = {"from": old, "to": value}
                setattr(lead, key, value)
        company = submission.core.get("company")
        if company and (strategy == REPLACE or lead.company is None):
            resolved = company_resolve(workspace=lead.workspace, data=company)
            if resolved != lead.company:
                changes["company"] = {"from": lead.company.name if lead.company else None, "to": resolved.name}
                lead.company = resolved
        merged_custom = _merge_custom(lead.custom_fields, custom, overwrite=strategy == REPLACE)
        if merged_custom != lead.custom_fields:
            before = {k: v for k, v in lead.custom_fields.items() if k != DISPLAY_NAMES_KEY}
            after = {k: v for k, v in merged_custom.items() if k != DISPLAY_NAMES_KEY}
            keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            changes["custom_fields"] = {"from": {k: before.get(k) for k in keys}, "to": {k: after.get(k) for k in keys}}
            lead.custom_fields = merged_custom
        added_tags = _union_tags(lead, tags)
        if added_tags:
            changes["tags"] = {"from": None, "to": added_tags}
        if warnings:
            lead.validation_warnings = [*lead.validation_warnings, *[w for w in warnings if w not in lead.validation_warnings]]
    status = MERGED if changes else DUPLICATE
    activity_data = {"strategy": strategy, "source": submission.source_type, "changes": changes}
    if submission.webhook is not None:
        activity_data["webhookId"] = str(submission.webhook.pk)
    lead.updated_at = lead.last_activity_at = now
    written = {"updated_at", "last_activity_at", *(key for key in changes if key != "tags")}
    if warnings and strategy != SKIP:
        written.add("validation_warnings")
    if changes:
        lead.processing_state, lead.processing_state_at = ProcessingState.RECEIVED, now
        written |= {"processing_state", "processing_state_at"}
    # Only what changed: the row is locked, and a whole-row UPDATE costs more to build than to run.
    lead.save(update_fields=sorted(written))
    activity = LeadActivity(
        workspace_id=lead.workspace_id,
        lead=lead,
        type=ActivityType.MERGED if changes else ActivityType.CAPTURED_AGAIN,
        actor=actor,
        data=activity_data,
        created_at=now,
    )
    return lead, status, activity


def _merge_custom(existing: dict, incoming: dict, *, overwrite: bool) -> dict:
    if overwrite:
        return custom_fields_merge(existing, incoming)
    present = set(existing) - {DISPLAY_NAMES_KEY}
    from leads.normalization import camel_case_key

    new_only = {key: value for key, value in incoming.items() if (camel_case_key(key) or key) not in present and value is not None}
    return custom_fields_merge(existing, new_only) if new_only else existing


def _union_tags(lead: Lead, names: list[str]) -> list[str]:
    if not names:
        return []
    current = set(lead.tags.values_list("name", flat=True))
    wanted = [name for name in names if name not in current]
    if len(current) + len(wanted) > MAX_TAGS_PER_LEAD:
        raise ValidationError({"tags": f"A lead has at most {MAX_TAGS_PER_LEAD} tags."})
    resolved = tags_resolve(workspace=lead.workspace, names=wanted)
    LeadTag.objects.bulk_create([LeadTag(lead=lead, tag=tag) for tag in resolved], ignore_conflicts=True)
    return sorted(tag.name for tag in resolved)


def _record_consents(lead: Lead, submission: Submission, actor) -> None:
    """Appends one ConsentRecord per purpose the submission speaks of; history is never rewritten."""
    if not submission.consents:
        return
    now = timezone.now()
    ConsentRecord.objects.bulk_create(
        ConsentRecord(
            workspace_id=lead.workspace_id,
            lead=lead,
            purpose=purpose,
            granted=granted,
            source=submission.source_type,
            policy_version=submission.policy_version[:100],
            ip=submission.ip,
            user_agent=submission.user_agent[:400],
            created_at=now,
        )
        for purpose, granted in sorted(submission.consents.items())
    )
    _activity(
        lead=lead,
        type=ActivityType.CONSENT,
        actor=actor,
        data={"consents": dict(sorted(submission.consents.items())), "policyVersion": submission.policy_version},
        at=now,
    ).save()


CONSENT_PURPOSES = frozenset(ConsentPurpose.values)
