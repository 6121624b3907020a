"""The one write path for leads, their tags, notes and conversion.

Every change a service makes to a lead writes a LeadActivity in the same transaction.
"""

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, Q, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Upper
from django.utils import timezone

from leads.locks import lock_values
from leads.models import ActivityType, Company, Contact, Lead, LeadActivity, LeadStatus, LeadTag, Note, ProcessingState, SourceType, Tag
from leads.normalization import (
    InvalidValue,
    camel_case_key,
    display_name_for,
    email_kind,
    normalize_email,
    normalize_phone,
    normalize_tag,
    split_full_name,
)
from leadsmgr.bulk import copy_insert, copy_rows, instance_builder
from leadsmgr.db import retry_lock_conflicts
from pipelines.models import Pipeline, Stage
from pipelines.services import pipeline_ensure_default
from workspaces.models import User, Workspace

DISPLAY_NAMES_KEY = "_displayNames"
MAX_TAGS_PER_LEAD = 50
BULK_MAX_LEADS = 5000

# Set by capture (normalization results and where the lead came from), not edited by people.
CAPTURE_FIELDS = ("country", "email_kind", "phone_country", "validation_warnings", "source_webhook")

# Fields that lead_update may change, by their model name, and how an activity shows each.
UPDATABLE_FIELDS = (
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "title",
    "department",
    "status",
    "lifecycle_stage",
    "source_type",
    "source_campaign",
    "source_medium",
    "source_referrer",
    "source_landing_url",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
)


def _activity(*, lead: Lead, type: str, actor: User | None, data: dict | None = None, at=None) -> LeadActivity:
    return instance_builder(LeadActivity).build(
        {
            "workspace_id": lead.workspace_id,
            "lead_id": lead.pk,
            "type": type,
            "actor_id": actor.pk if actor else None,
            "data": data or {},
            "created_at": at or timezone.now(),
        },
        {"lead": lead, "actor": actor},
    )


def _clean_contact_fields(*, workspace: Workspace, data: dict[str, Any]) -> dict[str, Any]:
    """Normalizes email and phone in `data` in place; raises ValidationError naming a bad email."""
    if "email" in data:
        try:
            data["email"] = normalize_email(data["email"] or "")
        except InvalidValue as error:
            raise ValidationError({"email": str(error)}) from None
    if "phone" in data:
        data["phone"], _ = normalize_phone(data["phone"] or "", workspace.default_region)
    return data


def custom_fields_merge(existing: dict, incoming: dict) -> dict:
    """Merges incoming custom fields into existing ones.

    Keys become camelCase; the name the sender used is kept in `_displayNames` unless the sender
    gave display names explicitly. A null value removes the field.
    """
    merged = {key: value for key, value in (existing or {}).items()}
    display_names = dict(merged.pop(DISPLAY_NAMES_KEY, {}) or {})
    given = (incoming or {}).get(DISPLAY_NAMES_KEY)
    given_names = {key: name for key, name in given.items() if isinstance(name, str)} if isinstance(given, dict) else {}
    seen: set[str] = set()
    for raw_key, value in (incoming or {}).items():
        if raw_key == DISPLAY_NAMES_KEY:
            continue
        key = camel_case_key(raw_key) or raw_key
        # Two names for one key in one submission ("budget_range", "Budget Range"): keep both values.
        base, number = key, 2
        while key in seen:
            key, number = f"{base}{number}", number + 1
        seen.add(key)
        if value is None:
            merged.pop(key, None)
            display_names.pop(key, None)
            continue
        merged[key] = value
        display_names[key] = given_names.get(raw_key) or given_names.get(key) or display_names.get(key) or display_name_for(raw_key)
    if merged:
        merged[DISPLAY_NAMES_KEY] = {key: name for key, name in display_names.items() if key in merged}
    return merged


def company_resolve(*, workspace: Workspace, data: dict | None) -> Company | None:
    """Finds the workspace's company by domain, then by name (case-insensitive), or creates it;
    fills its empty attributes from `data`."""
    return companies_resolve(workspace=workspace, items=[data])[0]


def _company_keys(data: dict | None) -> tuple[str, str] | None:
    """(lower-case domain, upper-case name) company_resolve looks a company up by, or None."""
    if not data or not (data.get("name") or data.get("domain")):
        return None
    domain = (data.get("domain") or "").strip().lower()
    return domain, (data.get("name") or domain).strip().upper()


def companies_resolve(*, workspace: Workspace, items: list[dict | None]) -> list[Company | None]:
    """company_resolve for many items at once, in order: an item may find a company an earlier item
    created or filled. At most four queries, whatever the number of items."""
    keys = [_company_keys(item) for item in items]
    domains = sorted({key[0] for key in keys if key and key[0]})
    names = sorted({key[1] for key in keys if key})
    if not names:
        return [None] * len(items)
    by_domain, by_name = _companies_found(workspace, domains, names)
    missing = {key for key in keys if key and not ((key[0] and key[0] in by_domain) or key[1] in by_name)}
    if missing and connection.vendor == "postgresql":
        # Two transactions naming a new company (two workers capturing, an import's parts) would
        # each create it: the second waits here for the first to commit, then finds it. Companies
        # that exist need no lock, so only the first batch naming a company pays for it.
        domain_locks = [f"company:{workspace.pk}:domain:{domain}" for domain, _ in missing if domain]
        lock_values(*domain_locks, *(f"company:{workspace.pk}:name:{name}" for _, name in missing))
        by_domain, by_name = _companies_found(workspace, domains, names)
    created: list[Company] = []
    changed: dict = {}
    resolved: list[Company | None] = []
    for item, key in zip(items, keys, strict=True):
        if key is None:
            resolved.append(None)
            continue
        domain, upper_name = key
        company = (by_domain.get(domain) if domain else None) or by_name.get(upper_name)
        if company is None:
            company = Company(
                workspace=workspace,
                name=(item.get("name") or domain).strip(),
                domain=domain,
                size=item.get("size") or "",
                industry=item.get("industry") or "",
                website=item.get("website") or "",
            )
            created.append(company)
        else:
            for attr in ("domain", "size", "industry", "website"):
                value = domain if attr == "domain" else (item.get(attr) or "")
                if value and not getattr(company, attr):
                    setattr(company, attr, value)
                    if company not in created:
                        changed.setdefault(company.pk, (company, set()))[1].add(attr)
        if company.domain:
            by_domain.setdefault(company.domain, company)
        by_name.setdefault(company.name.upper(), company)
        resolved.append(company)
    Company.objects.bulk_create(created)
    for company, attrs in changed.values():
        company.save(update_fields=sorted(attrs))
    return resolved


def _companies_found(workspace: Workspace, domains: list[str], names: list[str]) -> tuple[dict[str, Company], dict[str, Company]]:
    """The workspace's companies with these domains, and with these upper-case names."""
    by_domain: dict[str, Company] = {}
    by_name: dict[str, Company] = {}
    # Ordered as company_resolve's .first() orders (Company.Meta.ordering) when a name or domain repeats.
    for company in Company.objects.filter(workspace=workspace, domain__in=domains).order_by("name", "pk") if domains else ():
        by_domain.setdefault(company.domain, company)
    for company in _companies_named(workspace, names).order_by("name", "pk"):
        by_name.setdefault(company.name.upper(), company)
    return by_domain, by_name


def _companies_named(workspace: Workspace, names: list[str]):
    """The workspace's companies whose names are among `names`, compared with the database's UPPER
    on both sides, as name__iexact compares (the index company_ws_upper_name). On PostgreSQL the
    names are one array parameter: an IN list of UPPER(%s) expressions cost ~45 ms of Django a
    500-row import batch to build, more than the query."""
    companies = Company.objects.filter(workspace=workspace)
    if connection.vendor == "postgresql":
        matches = RawSQL('UPPER("leads_company"."name") = ANY(ARRAY(SELECT UPPER(n) FROM unnest(%s::text[]) AS n))', [names])
        return companies.filter(ExpressionWrapper(matches, output_field=BooleanField()))
    return companies.annotate(upper_name=Upper("name")).filter(upper_name__in=[Upper(Value(n)) for n in names])


def tags_resolve(*, workspace: Workspace, names: Iterable[str]) -> list[Tag]:
    wanted = sorted({normalize_tag(name) for name in names if normalize_tag(name)})
    if not wanted:
        return []
    Tag.objects.bulk_create([Tag(workspace=workspace, name=name) for name in wanted], ignore_conflicts=True)
    return list(Tag.objects.filter(workspace=workspace, name__in=wanted))


def _placement(*, workspace: Workspace, pipeline: Pipeline | None, stage: Stage | None) -> tuple[Pipeline, Stage]:
    if stage is not None:
        if stage.workspace_id != workspace.pk:
            raise ValidationError({"stageId": "Unknown stage."})
        if pipeline is not None and stage.pipeline_id != pipeline.pk:
            raise ValidationError({"stageId": "This stage belongs to another pipeline."})
        return stage.pipeline, stage
    if pipeline is None:
        # The common case (capture with no pipeline named) in one query.
        first = Stage.objects.select_related("pipeline").filter(workspace=workspace, pipeline__is_default=True).order_by("position").first()
        if first is not None:
            return first.pipeline, first
        pipeline, _ = pipeline_ensure_default(workspace=workspace)
    first = pipeline.stages.order_by("position").first()
    return pipeline, first


def _lead_name_parts(data: dict[str, Any]) -> tuple[str, str, str]:
    """(name, first name, last name) as lead_create stores them; raises ValidationError(name)."""
    name = (data.get("name") or "").strip()
    if not name:
        joined = " ".join(p for p in (data.get("first_name"), data.get("last_name")) if p).strip()
        name = joined or data.get("email") or data.get("phone") or ""
    if not name:
        raise ValidationError({"name": "A lead needs a name, an email or a phone."})
    first_name, last_name = data.get("first_name") or "", data.get("last_name") or ""
    if not (first_name or last_name) and "@" not in name and not name.startswith("+"):
        first_name, last_name = split_full_name(name)
    return name, first_name, last_name


def _check_tag_count(names) -> None:
    if len({normalize_tag(name) for name in names or [] if normalize_tag(name)}) > MAX_TAGS_PER_LEAD:
        raise ValidationError({"tags": f"A lead has at most {MAX_TAGS_PER_LEAD} tags."})


def _new_lead(*, workspace: Workspace, data: dict[str, Any], pipeline: Pipeline, stage: Stage, company: Company | None, now) -> Lead:
    """The unsaved lead lead_create stores for `data` (contact fields already normalized). Built
    positionally (InstanceBuilder): an import builds thousands."""
    name, first_name, last_name = _lead_name_parts(data)
    owner = data.get("owner")
    values = {
        "workspace_id": workspace.pk,
        "name": name[:200],
        "first_name": first_name[:100],
        "last_name": last_name[:100],
        "company_id": company.pk if company else None,
        "custom_fields": custom_fields_merge({}, data.get("custom_fields") or {}),
        "pipeline_id": pipeline.pk if pipeline else None,
        "stage_id": stage.pk if stage else None,
        "owner_id": owner.pk if owner else None,
        "created_at": now,
        "updated_at": now,
        "last_activity_at": now,
        "processing_state": ProcessingState.RECEIVED,
        "processing_state_at": now,
    }
    related = {"workspace": workspace, "company": company, "pipeline": pipeline, "stage": stage, "owner": owner}
    for field in (*UPDATABLE_FIELDS, *CAPTURE_FIELDS):
        value = data.get(field)
        if field in ("name", "first_name", "last_name") or value in (None, ""):
            continue
        if field == "source_webhook":
            values["source_webhook_id"] = value.pk
            related["source_webhook"] = value
        else:
            values[field] = value
    if not values.get("source_type"):
        values["source_type"] = SourceType.MANUAL
    if values.get("email") and not values.get("email_kind"):
        values["email_kind"] = email_kind(values["email"])
    return instance_builder(Lead).build(values, related)


def _created_activity(lead: Lead, actor: User | None, now) -> LeadActivity:
    return _activity(lead=lead, type=ActivityType.CREATED, actor=actor, data=_created_data(lead), at=now)


def _created_data(lead: Lead) -> dict:
    return {"source": lead.source_type, "stage": lead.stage.name, "stageId": str(lead.stage.pk)}


@transaction.atomic
def lead_create(*, workspace: Workspace, actor: User | None, data: dict[str, Any]) -> Lead:
    """Creates a lead from normalized API/UI input (model field names; `company` a dict; `tags` names;
    `custom_fields` a dict; `pipeline`/`stage` objects; `owner` a member)."""
    data = _clean_contact_fields(workspace=workspace, data=dict(data))
    _lead_name_parts(data)  # a lead without any name is refused before anything is written
    pipeline, stage = _placement(workspace=workspace, pipeline=data.get("pipeline"), stage=data.get("stage"))
    now = timezone.now()
    company = company_resolve(workspace=workspace, data=data.get("company"))
    lead = _new_lead(workspace=workspace, data=data, pipeline=pipeline, stage=stage, company=company, now=now)
    _check_tag_count(data.get("tags"))
    tags = tags_resolve(workspace=workspace, names=data.get("tags") or [])
    lead.save()
    LeadTag.objects.bulk_create([LeadTag(lead=lead, tag=tag) for tag in tags])
    _created_activity(lead, actor, now).save()
    enqueue_lead_processing(lead_id=lead.pk)
    return lead


def leads_create_many(*, workspace: Workspace, actor: User | None, entries: list[dict[str, Any]]) -> list[Lead]:
    """Creates many leads as lead_create would one by one, in a few statements: for capture's
    batches (an import), whose entries are normalized and name people who are not leads yet.

    Raises ValidationError or DataError for the batch as a whole; the caller (in a savepoint)
    then captures the entries one by one to tell which one failed.
    """
    if not entries:
        return []
    now = timezone.now()
    placements: dict[tuple, tuple[Pipeline, Stage]] = {}
    companies = companies_resolve(workspace=workspace, items=[entry.get("company") for entry in entries])
    leads: list[Lead] = []
    for entry, company in zip(entries, companies, strict=True):
        where = (entry.get("pipeline"), entry.get("stage"))
        if where not in placements:
            placements[where] = _placement(workspace=workspace, pipeline=where[0], stage=where[1])
        pipeline, stage = placements[where]
        _check_tag_count(entry.get("tags"))
        leads.append(_new_lead(workspace=workspace, data=entry, pipeline=pipeline, stage=stage, company=company, now=now))
    all_tags = [name for entry in entries for name in entry.get("tags") or []]
    tags = {tag.name: tag for tag in tags_resolve(workspace=workspace, names=all_tags)}
    # COPY: an import's batch of leads is written in a fraction of bulk_create's time.
    copy_insert(Lead, leads)
    copy_insert(
        LeadTag,
        [
            LeadTag(lead=lead, tag=tags[name])
            for lead, entry in zip(leads, entries, strict=True)
            for name in sorted({normalize_tag(raw) for raw in entry.get("tags") or [] if normalize_tag(raw)})
        ],
    )
    actor_id = actor.pk if actor else None
    copy_rows(
        LeadActivity,
        ("workspace_id", "lead_id", "type", "actor_id", "data", "created_at"),
        [(lead.workspace_id, lead.pk, ActivityType.CREATED, actor_id, _created_data(lead), now) for lead in leads],
    )
    ids = [lead.pk for lead in leads]
    from leads.tasks import enqueue_processing_many

    transaction.on_commit(lambda: enqueue_processing_many(ids))
    return leads


def enqueue_lead_processing(*, lead_id) -> None:
    """After commit, hand the lead to the processing task. A broker that is down only delays it:
    the lead is stored, and the sweeper re-enqueues leads that stay in a pending state."""
    from leads.tasks import enqueue_processing

    transaction.on_commit(lambda: enqueue_processing(lead_id))


def _lock(lead: Lead) -> Lead:
    return Lead.objects.select_for_update(of=("self",)).select_related("stage", "pipeline", "company", "owner").get(pk=lead.pk)


def _display(value):
    if value is None:
        return None
    return value if isinstance(value, (str, int, float, bool, list, dict)) else str(value)


@retry_lock_conflicts  # e.g. an import batch that created the new company named here, then waited for this lead
@transaction.atomic
def lead_update(*, lead: Lead, actor: User | None, data: dict[str, Any]) -> Lead:
    """Updates the given fields; records each change (old → new) in one activity. Unchanged values
    are not recorded; an update that changes nothing writes nothing."""
    lead = _lock(lead)
    if lead.is_deleted:
        raise ValidationError({"lead": "This lead is deleted."})
    data = _clean_contact_fields(workspace=lead.workspace, data=dict(data))
    changes: dict[str, dict] = {}
    update_fields: list[str] = []

    if "name" in data and not (data["name"] or "").strip():
        raise ValidationError({"name": "A lead needs a name."})
    for field in UPDATABLE_FIELDS:
        if field not in data:
            continue
        new = (data[field] or "") if isinstance(getattr(lead, field), str) else data[field]
        if isinstance(new, str):
            new = new.strip()
        old = getattr(lead, field)
        if new != old:
            setattr(lead, field, new)
            changes[field] = {"from": old, "to": new}
            update_fields.append(field)

    if "company" in data:
        company = company_resolve(workspace=lead.workspace, data=data["company"])
        if company != lead.company:
            changes["company"] = {
                "from": lead.company.name if lead.company else None,
                "to": company.name if company else None,
            }
            lead.company = company
            update_fields.append("company")

    if "custom_fields" in data:
        merged = custom_fields_merge(lead.custom_fields, data["custom_fields"] or {})
        if merged != lead.custom_fields:
            before = {k: v for k, v in lead.custom_fields.items() if k != DISPLAY_NAMES_KEY}
            after = {k: v for k, v in merged.items() if k != DISPLAY_NAMES_KEY}
            changes["custom_fields"] = {
                "from": {k: before.get(k) for k in set(before) | set(after) if before.get(k) != after.get(k)},
                "to": {k: after.get(k) for k in set(before) | set(after) if before.get(k) != after.get(k)},
            }
            lead.custom_fields = merged
            update_fields.append("custom_fields")

    activities = []
    now = timezone.now()
    if changes:
        activities.append(_activity(lead=lead, type=ActivityType.FIELD_UPDATED, actor=actor, data={"changes": changes}, at=now))
    if "tags" in data and data["tags"] is not None:
        activities += _tags_set(lead=lead, names=data["tags"], actor=actor, at=now)
    if "stage" in data and data["stage"] is not None and data["stage"].pk != lead.stage_id:
        activities.append(_stage_change(lead=lead, stage=data["stage"], actor=actor, at=now))
        update_fields += ["stage", "pipeline"]
    if "owner" in data and (data["owner"].pk if data["owner"] else None) != lead.owner_id:
        activities.append(_owner_change(lead=lead, owner=data["owner"], actor=actor, at=now))
        update_fields.append("owner")

    if activities:
        lead.updated_at = lead.last_activity_at = now
        lead.save(update_fields=[*dict.fromkeys(update_fields), "updated_at", "last_activity_at"])
        LeadActivity.objects.bulk_create(activities)
    # A company's size or industry filled in through the lead changes no lead column, yet the score.
    if changes or "tags" in data or "company" in data:
        _rescore_after_commit(lead, "fields changed")
    return lead


def _stage_change(*, lead: Lead, stage: Stage, actor, at) -> LeadActivity:
    if stage.workspace_id != lead.workspace_id:
        raise ValidationError({"stageId": "Unknown stage."})
    data = {
        "fromStageId": str(lead.stage_id),
        "fromStage": lead.stage.name,
        "toStageId": str(stage.pk),
        "toStage": stage.name,
    }
    if stage.pipeline_id != lead.pipeline_id:
        data["fromPipelineId"], data["toPipelineId"] = str(lead.pipeline_id), str(stage.pipeline_id)
    lead.stage, lead.pipeline = stage, stage.pipeline
    return _activity(lead=lead, type=ActivityType.STAGE_MOVED, actor=actor, data=data, at=at)


def _owner_change(*, lead: Lead, owner: User | None, actor, at) -> LeadActivity:
    data = {
        "fromUserId": lead.owner_id,
        "from": lead.owner.display_name if lead.owner else None,
        "toUserId": owner.pk if owner else None,
        "to": owner.display_name if owner else None,
    }
    lead.owner = owner
    return _activity(lead=lead, type=ActivityType.ASSIGNED, actor=actor, data=data, at=at)


def _tags_set(*, lead: Lead, names: list[str], actor, at) -> list[LeadActivity]:
    wanted = {tag.name: tag for tag in tags_resolve(workspace=lead.workspace, names=names)}
    if len(wanted) > MAX_TAGS_PER_LEAD:
        raise ValidationError({"tags": f"A lead has at most {MAX_TAGS_PER_LEAD} tags."})
    current = {lt.tag.name: lt for lt in LeadTag.objects.filter(lead=lead).select_related("tag")}
    added = sorted(set(wanted) - set(current))
    removed = sorted(set(current) - set(wanted))
    LeadTag.objects.bulk_create([LeadTag(lead=lead, tag=wanted[name]) for name in added], ignore_conflicts=True)
    LeadTag.objects.filter(lead=lead, tag__name__in=removed).delete()
    activities = []
    if added:
        activities.append(_activity(lead=lead, type=ActivityType.TAGGED, actor=actor, data={"tags": added}, at=at))
    if removed:
        activities.append(_activity(lead=lead, type=ActivityType.UNTAGGED, actor=actor, data={"tags": removed}, at=at))
    return activities


@transaction.atomic
def lead_tags_change(*, lead: Lead, actor: User | None, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Lead:
    lead = _lock(lead)
    if lead.is_deleted:
        raise ValidationError({"lead": "This lead is deleted."})
    current = set(lead.tags.values_list("name", flat=True))
    wanted = (current | {normalize_tag(n) for n in add if normalize_tag(n)}) - {normalize_tag(n) for n in remove}
    activities = _tags_set(lead=lead, names=sorted(wanted), actor=actor, at=timezone.now())
    if activities:
        _touch(lead)
        LeadActivity.objects.bulk_create(activities)
        _rescore_after_commit(lead, "tags changed")
    return lead


def _rescore_after_commit(lead: Lead, reason: str) -> None:
    """Fields and tags feed the score: rescore once this change has committed, in the same request."""
    from scoring.services import lead_rescore_after_commit

    lead_rescore_after_commit(lead=lead, reason=reason)


def _touch(lead: Lead) -> None:
    now = timezone.now()
    Lead.objects.filter(pk=lead.pk).update(updated_at=now, last_activity_at=now)
    lead.updated_at = lead.last_activity_at = now


@transaction.atomic
def lead_stage_move(*, lead: Lead, stage: Stage, actor: User | None) -> Lead:
    """Moves the lead to `stage` (any pipeline of its workspace). Moving to its current stage is a no-op."""
    lead = _lock(lead)
    if lead.is_deleted:
        raise ValidationError({"lead": "This lead is deleted."})
    if stage.pk == lead.stage_id:
        return lead
    # Lock the target: a stage being removed at this moment is refused cleanly, not half-used.
    if not Stage.objects.select_for_update().filter(pk=stage.pk).exists():
        raise ValidationError({"stageId": "This stage no longer exists."})
    activity = _stage_change(lead=lead, stage=stage, actor=actor, at=timezone.now())
    lead.updated_at = lead.last_activity_at = activity.created_at
    lead.save(update_fields=["stage", "pipeline", "updated_at", "last_activity_at"])
    activity.save()
    return lead


@transaction.atomic
def lead_assign(*, lead: Lead, owner: User | None, actor: User | None) -> Lead:
    """Sets the lead's owner (None unassigns); the caller has checked `owner` is a member."""
    lead = _lock(lead)
    if lead.is_deleted:
        raise ValidationError({"lead": "This lead is deleted."})
    if (owner.pk if owner else None) == lead.owner_id:
        return lead
    activity = _owner_change(lead=lead, owner=owner, actor=actor, at=timezone.now())
    lead.updated_at = lead.last_activity_at = activity.created_at
    lead.save(update_fields=["owner", "updated_at", "last_activity_at"])
    activity.save()
    _rescore_after_commit(lead, "owner changed")
    return lead


@transaction.atomic
def lead_note_add(*, lead: Lead, author: User | None, text: str) -> Note:
    text = (text or "").strip()
    if not text:
        raise ValidationError({"value": "A note needs some text."})
    lead = _lock(lead)
    if lead.is_deleted:
        raise ValidationError({"lead": "This lead is deleted."})
    note = Note.objects.create(workspace_id=lead.workspace_id, lead=lead, author=author, text=text)
    _activity(
        lead=lead, type=ActivityType.NOTE_ADDED, actor=author, data={"noteId": str(note.pk), "preview": text[:140]}, at=note.created_at
    ).save()
    _touch(lead)
    return note


@transaction.atomic
def lead_delete(*, lead: Lead, actor: User | None) -> Lead:
    """Soft delete: the lead leaves lists and the board; its history stays."""
    lead = _lock(lead)
    if lead.is_deleted:
        return lead
    now = timezone.now()
    lead.deleted_at = lead.updated_at = now
    lead.save(update_fields=["deleted_at", "updated_at"])
    _activity(lead=lead, type=ActivityType.DELETED, actor=actor, at=now).save()
    # A deleted lead leaves its segments at once.
    _rescore_after_commit(lead, "deleted")
    return lead


@transaction.atomic
def lead_convert(*, lead: Lead, actor: User | None, name: str | None = None, platform: str = "") -> tuple[Contact, bool]:
    """Converts the lead to a contact. Returns (contact, created).

    Converting twice returns the same contact; a contact of the workspace with the same email or
    phone is linked instead of creating a duplicate. Name, email, phone, custom fields and notes
    carry over.
    """
    lead = _lock(lead)
    if lead.is_deleted:
        raise ValidationError({"lead": "This lead is deleted."})
    if lead.contact_id is not None:
        return lead.contact, False

    match = Q()
    if lead.email:
        match |= Q(email=lead.email)
    if lead.phone:
        match |= Q(phone=lead.phone)
    contact = Contact.objects.filter(Q(workspace_id=lead.workspace_id) & match).order_by("created_at").first() if match else None
    created = contact is None
    if created:
        contact = Contact.objects.create(
            workspace_id=lead.workspace_id,
            name=(name or lead.name).strip()[:200] or lead.name,
            email=lead.email,
            phone=lead.phone,
            custom_fields=lead.custom_fields,
            platform=platform,
        )
    else:
        contact.custom_fields = custom_fields_merge(
            {k: v for k, v in lead.custom_fields.items()}, {k: v for k, v in contact.custom_fields.items() if k != DISPLAY_NAMES_KEY}
        )
        contact.save(update_fields=["custom_fields"])
    Note.objects.filter(lead=lead, contact__isnull=True).update(contact=contact)

    now = timezone.now()
    lead.contact, lead.converted_at, lead.status = contact, now, LeadStatus.CONVERTED
    lead.updated_at = lead.last_activity_at = now
    lead.save(update_fields=["contact", "converted_at", "status", "updated_at", "last_activity_at"])
    _activity(
        lead=lead,
        type=ActivityType.CONVERTED,
        actor=actor,
        data={"contactId": str(contact.pk), "contactName": contact.name, "linkedExisting": not created},
        at=now,
    ).save()
    _rescore_after_commit(lead, "converted")
    return contact, created


def leads_move_stage_bulk(*, workspace: Workspace, source_stage: Stage, target_stage: Stage, actor, reason: str) -> int:
    """Moves every lead of `source_stage` (deleted ones too, so none is orphaned) to `target_stage`."""
    lead_ids = list(Lead.objects.filter(workspace=workspace, stage=source_stage).values_list("pk", flat=True))
    return _bulk_move(
        workspace=workspace, lead_ids=lead_ids, stage=target_stage, actor=actor, extra={"reason": reason}, from_stage=source_stage
    )


def _bulk_move(
    *, workspace: Workspace, lead_ids: list, stage: Stage, actor, extra: dict | None = None, from_stage: Stage | None = None
) -> int:
    if not lead_ids:
        return 0
    now = timezone.now()
    rows = list(Lead.objects.filter(workspace=workspace, pk__in=lead_ids).exclude(stage=stage).values_list("pk", "stage_id", "stage__name"))
    Lead.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(
        stage=stage, pipeline=stage.pipeline_id, updated_at=now, last_activity_at=now
    )
    LeadActivity.objects.bulk_create(
        LeadActivity(
            workspace=workspace,
            lead_id=pk,
            type=ActivityType.STAGE_MOVED,
            actor=actor,
            created_at=now,
            data={
                "fromStageId": str(stage_id),
                "fromStage": stage_name,
                "toStageId": str(stage.pk),
                "toStage": stage.name,
                **(extra or {}),
            },
        )
        for pk, stage_id, stage_name in rows
    )
    return len(rows)


@transaction.atomic
def leads_bulk_action(
    *,
    workspace: Workspace,
    actor: User | None,
    action: str,
    lead_ids: list,
    stage: Stage | None = None,
    owner: User | None = None,
    tags: list[str] | None = None,
) -> dict:
    """Applies one action to many leads in one transaction, set-based. Ids that are not live leads
    of this workspace are reported as not found, never touched."""
    if len(lead_ids) > BULK_MAX_LEADS:
        raise ValidationError({"leadIds": f"At most {BULK_MAX_LEADS} leads per request."})
    live = Lead.objects.filter(workspace=workspace, pk__in=lead_ids).alive()
    found = {str(pk) for pk in live.select_for_update().values_list("pk", flat=True)}
    not_found = [str(lead_id) for lead_id in dict.fromkeys(str(i) for i in lead_ids) if str(lead_id) not in found]
    now = timezone.now()

    if action == "move_stage":
        if stage is None:
            raise ValidationError({"stageId": "move_stage needs a stageId."})
        changed = _bulk_move(workspace=workspace, lead_ids=list(found), stage=stage, actor=actor, extra={"bulk": True})
    elif action == "assign":
        rows = (
            list(live.exclude(owner=owner).values_list("pk", "owner_id"))
            if owner
            else list(live.filter(owner__isnull=False).values_list("pk", "owner_id"))
        )
        Lead.objects.filter(pk__in=[pk for pk, _ in rows]).update(owner=owner, updated_at=now, last_activity_at=now)
        LeadActivity.objects.bulk_create(
            _activity(
                lead=Lead(pk=pk, workspace=workspace),
                type=ActivityType.ASSIGNED,
                actor=actor,
                at=now,
                data={
                    "fromUserId": old,
                    "toUserId": owner.pk if owner else None,
                    "to": owner.display_name if owner else None,
                    "bulk": True,
                },
            )
            for pk, old in rows
        )
        changed = len(rows)
    elif action == "delete":
        ids = list(found)
        live.update(deleted_at=now, updated_at=now)
        LeadActivity.objects.bulk_create(
            _activity(lead=Lead(pk=pk, workspace=workspace), type=ActivityType.DELETED, actor=actor, at=now, data={"bulk": True})
            for pk in ids
        )
        changed = len(ids)
    elif action == "tag":
        resolved = tags_resolve(workspace=workspace, names=tags or [])
        if not resolved:
            raise ValidationError({"tags": "tag needs at least one tag."})
        existing = {
            (str(lead_id), tag_id)
            for lead_id, tag_id in LeadTag.objects.filter(lead_id__in=found, tag__in=resolved).values_list("lead_id", "tag_id")
        }
        new_links = [LeadTag(lead_id=pk, tag=tag) for pk in sorted(found) for tag in resolved if (pk, tag.pk) not in existing]
        LeadTag.objects.bulk_create(new_links, ignore_conflicts=True)
        tagged: dict[str, list[str]] = {}
        for link in new_links:
            tagged.setdefault(str(link.lead_id), []).append(link.tag.name)
        Lead.objects.filter(pk__in=list(tagged)).update(updated_at=now, last_activity_at=now)
        LeadActivity.objects.bulk_create(
            _activity(
                lead=Lead(pk=pk, workspace=workspace),
                type=ActivityType.TAGGED,
                actor=actor,
                at=now,
                data={"tags": sorted(names), "bulk": True},
            )
            for pk, names in tagged.items()
        )
        changed = len(tagged)
    else:
        raise ValidationError({"action": "Choose one of: move_stage, assign, delete, tag."})
    if changed and action != "move_stage":
        from leads.segments.services import leads_reevaluate

        ids = list(found)
        transaction.on_commit(lambda: leads_reevaluate(workspace_id=workspace.pk, lead_ids=ids, reason=f"bulk {action}"), robust=True)
    return {"action": action, "requested": len(set(map(str, lead_ids))), "matched": len(found), "updated": changed, "notFound": not_found}


@transaction.atomic
def lead_merge(*, survivor: Lead, other: Lead, actor: User | None) -> Lead:
    """Merges `other` into `survivor`: empty fields are filled, tags and custom fields united; notes,
    activities, consent, submissions and tracking history (visitors, sessions, events) move to the
    survivor, whose engagement is recounted; `other` is soft-deleted with a link."""
    from integrations.models import WebhookSubmission
    from leads.models import ConsentRecord
    from leads.tracking.models import IdentityConflict, LeadEngagement, TrackEvent, TrackSession, Visitor
    from leads.tracking.processing import lead_engagement_rebuild

    if survivor.pk == other.pk:
        raise ValidationError({"otherLeadId": "A lead cannot be merged into itself."})
    if survivor.workspace_id != other.workspace_id:
        raise ValidationError({"otherLeadId": "Unknown lead."})
    first, second = sorted([survivor, other], key=lambda lead: str(lead.pk))
    locked = {lead.pk: _lock(lead) for lead in (first, second)}
    survivor, other = locked[survivor.pk], locked[other.pk]
    if survivor.is_deleted or other.is_deleted:
        raise ValidationError({"otherLeadId": "Both leads must be live (not deleted)."})

    changes: dict[str, dict] = {}
    for field in UPDATABLE_FIELDS:
        mine, theirs = getattr(survivor, field), getattr(other, field)
        if not mine and theirs and field not in ("status", "lifecycle_stage", "source_type"):
            changes[field] = {"from": mine, "to": theirs}
            setattr(survivor, field, theirs)
    for field in ("company", "owner", "contact"):
        if getattr(survivor, field) is None and getattr(other, field) is not None:
            changes[field] = {"from": None, "to": str(getattr(other, field))}
            setattr(survivor, field, getattr(other, field))
    missing_custom = {k: v for k, v in other.custom_fields.items() if k != DISPLAY_NAMES_KEY and k not in survivor.custom_fields}
    if missing_custom:
        names = other.custom_fields.get(DISPLAY_NAMES_KEY, {})
        survivor.custom_fields = custom_fields_merge(
            survivor.custom_fields, {**missing_custom, DISPLAY_NAMES_KEY: {k: names.get(k, k) for k in missing_custom}}
        )
        changes["custom_fields"] = {"from": None, "to": missing_custom}
    survivor_tags = set(LeadTag.objects.filter(lead=survivor).values_list("tag_id", flat=True))
    moved_tags = [link for link in LeadTag.objects.filter(lead=other).select_related("tag") if link.tag_id not in survivor_tags]
    LeadTag.objects.bulk_create([LeadTag(lead=survivor, tag_id=link.tag_id) for link in moved_tags], ignore_conflicts=True)
    if moved_tags:
        changes["tags"] = {"from": None, "to": sorted(link.tag.name for link in moved_tags)}

    Note.objects.filter(lead=other).update(lead=survivor)
    LeadActivity.objects.filter(lead=other).update(lead=survivor)
    ConsentRecord.objects.filter(lead=other).update(lead=survivor)
    WebhookSubmission.objects.filter(lead=other).update(lead=survivor)
    for tracked in (Visitor, TrackSession, TrackEvent, IdentityConflict):
        tracked.objects.filter(lead=other).update(lead=survivor)
    LeadEngagement.objects.filter(lead=other).delete()
    lead_engagement_rebuild(lead=survivor)

    now = timezone.now()
    other.deleted_at, other.merged_into, other.updated_at = now, survivor, now
    other.save(update_fields=["deleted_at", "merged_into", "updated_at"])
    survivor.updated_at = survivor.last_activity_at = now
    survivor.save()
    LeadActivity.objects.bulk_create(
        [
            _activity(
                lead=survivor,
                type=ActivityType.MERGED,
                actor=actor,
                at=now,
                data={"strategy": "manual", "mergedLeadId": str(other.pk), "mergedLeadName": other.name, "changes": changes},
            ),
            _activity(
                lead=other,
                type=ActivityType.MERGED,
                actor=actor,
                at=now,
                data={"mergedInto": str(survivor.pk), "mergedIntoName": survivor.name},
            ),
        ]
    )
    from leads.segments.services import leads_reevaluate

    transaction.on_commit(
        lambda: leads_reevaluate(workspace_id=survivor.workspace_id, lead_ids=[survivor.pk, other.pk], reason="merged"), robust=True
    )
    return survivor


# Folds the deltas appended by the PostgreSQL stage-count trigger into the stage counts. A delta
# row is deleted (and summed) by exactly one compaction: a concurrent one waits on the deleted rows
# and then skips them; rows of transactions still open are not visible yet and wait for the next.
_COMPACT_STAGE_COUNTS = """
WITH moved AS (DELETE FROM lead_stage_count_deltas RETURNING stage_id, workspace_id, delta)
INSERT INTO lead_stage_counts AS c (stage_id, workspace_id, lead_count)
SELECT stage_id, workspace_id, SUM(delta) FROM moved GROUP BY stage_id, workspace_id ORDER BY stage_id
ON CONFLICT (stage_id) DO UPDATE SET lead_count = c.lead_count + EXCLUDED.lead_count
"""


def stage_counts_compact() -> int:
    """Folds pending stage-count deltas into the counts; returns how many stages it changed."""
    if connection.vendor != "postgresql":
        return 0  # SQLite's triggers update the counts directly
    with transaction.atomic(), connection.cursor() as cursor:
        # One compaction at a time, so two never lock the same count rows in turn.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended('lead_stage_counts_compact', 0))")
        cursor.execute(_COMPACT_STAGE_COUNTS)
        return cursor.rowcount
