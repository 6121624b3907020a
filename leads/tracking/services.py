"""Writes for tracking sites and personalization rules."""

from urllib.parse import urlparse

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from integrations.mapping import validate_field_mapping
from integrations.models import DedupStrategy
from leads.tracking import personalization
from leads.tracking.ingest import NAME_PATTERN
from leads.tracking.models import PersonalizationRule, TrackingSite, default_form_events, generate_site_key
from leadsmgr.memory import ProcessMemory

SITE_FIELDS = (
    "name",
    "allowed_origins",
    "form_include",
    "form_exclude",
    "field_mapping",
    "form_events",
    "auto_capture_events",
    "auto_capture_required_fields",
    "dedup_strategy",
    "rate_limit_per_minute",
    "is_active",
)
REQUIRED_FIELD_CHOICES = ("email", "name", "phone", "company", "title", "jobTitle", "first_name", "last_name")
MAX_LIST = 50
MAX_NAME = TrackingSite._meta.get_field("name").max_length
MAX_RATE = 1_000_000


def _origin(value) -> str:
    parsed = urlparse(str(value).strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path not in ("", "/") or parsed.query:
        raise ValueError(f"{value!r} is not an origin like https://www.example.com (scheme and host, no path).")
    return f"{parsed.scheme}://{parsed.netloc}".lower()


def _string_list(value, what: str, *, pattern=None, max_length: int = 200) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise ValueError(f"A list of at most {MAX_LIST} {what}.")
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > max_length or (pattern and not pattern.match(item)):
            raise ValueError(f"{item!r} is not a valid {what[:-1]}.")
    return [item.strip() for item in value]


def _api_name(field: str) -> str:
    """Errors name fields as the API spells them (allowed_origins → allowedOrigins)."""
    first, *rest = field.split("_")
    return first + "".join(part.capitalize() for part in rest)


def _clean_site(data: dict) -> dict:
    errors: dict[str, str] = {}
    clean = {}
    checks = {
        "allowed_origins": lambda v: [_origin(item) for item in _string_list(v, "origins", max_length=300)],
        "form_include": lambda v: _string_list(v, "selectors"),
        "form_exclude": lambda v: _string_list(v, "selectors"),
        "field_mapping": validate_field_mapping,
        "form_events": _form_events,
        "auto_capture_events": lambda v: _string_list(v, "event names", pattern=NAME_PATTERN),
        "auto_capture_required_fields": _required_fields,
    }
    for key, value in data.items():
        try:
            clean[key] = checks[key](value) if key in checks else value
        except ValueError as error:
            errors[_api_name(key)] = str(error)
    if "dedup_strategy" in clean and clean["dedup_strategy"] not in DedupStrategy.values:
        errors["dedupStrategy"] = f"One of: {', '.join(DedupStrategy.values)}."
    if "name" in clean and not 1 <= len(str(clean["name"]).strip()) <= MAX_NAME:
        errors["name"] = f"1 to {MAX_NAME} characters."
    rate = clean.get("rate_limit_per_minute", 1)
    if not isinstance(rate, int) or isinstance(rate, bool) or not 1 <= rate <= MAX_RATE:
        errors["rateLimitPerMinute"] = f"A whole number from 1 to {MAX_RATE:,}."
    if errors:
        raise ValidationError(errors)
    return clean


def _form_events(value) -> dict:
    known = set(default_form_events())
    if not isinstance(value, dict) or set(value) - known or any(not isinstance(v, bool) for v in value.values()):
        raise ValueError(f"An object of true/false for: {', '.join(sorted(known))}.")
    return {**default_form_events(), **value}


def _required_fields(value) -> list[str]:
    fields = _string_list(value, "fields")
    unknown = [name for name in fields if name not in REQUIRED_FIELD_CHOICES]
    if unknown:
        raise ValueError(f"{unknown[0]!r} cannot be required; choose from: {', '.join(REQUIRED_FIELD_CHOICES)}.")
    return fields


SITE_CACHE_SECONDS = 30
# This process's copies, in front of the shared cache: every tracked page asks, and asking Redis
# costs ~0.1 ms of CPU. A change made elsewhere reaches this process within SITE_MEMORY_SECONDS.
SITE_MEMORY_SECONDS = 2
_MISSING = "missing"
_sites_in_memory = ProcessMemory(size=1000)  # site key -> site, or _MISSING


def site_for_key(key: str) -> TrackingSite | None:
    """The active site for a public key, cached briefly: every tracked page asks."""
    if not key or not key.startswith("site_") or len(key) > 40:
        return None
    site = _sites_in_memory.get(key)
    if site is None:
        cache_key = f"tracking-site:{key}"
        site = cache.get(cache_key)
        if site is None:
            site = TrackingSite.objects.select_related("workspace").filter(site_key=key, is_active=True).first() or _MISSING
            cache.set(cache_key, site, SITE_CACHE_SECONDS)
        _sites_in_memory.put(key, site, seconds=SITE_MEMORY_SECONDS)
    return None if site == _MISSING else site


def _forget(site: TrackingSite, key: str | None = None) -> None:
    """Drops the cached lookup now and again after commit, so a request in between cannot keep
    serving the old site (a deleted site, an old key) for the cache's lifetime; other processes
    drop their own copies within SITE_MEMORY_SECONDS."""
    site_key = key or site.site_key
    cache_key = f"tracking-site:{site_key}"

    def drop():
        cache.delete(cache_key)
        _sites_in_memory.forget(site_key)

    drop()
    transaction.on_commit(drop)


def tracking_site_create(*, workspace, name: str, **data) -> TrackingSite:
    clean = _clean_site({"name": name, **data})
    clean["name"] = clean["name"].strip()
    return TrackingSite.objects.create(workspace=workspace, **clean)


def tracking_site_update(*, site: TrackingSite, **data) -> TrackingSite:
    clean = _clean_site(data)
    for key, value in clean.items():
        setattr(site, key, value.strip() if key == "name" else value)
    site.save()
    _forget(site)
    return site


def tracking_site_regenerate_key(*, site: TrackingSite) -> TrackingSite:
    _forget(site, site.site_key)
    site.site_key = generate_site_key()
    site.save(update_fields=["site_key"])
    return site


def tracking_site_delete(*, site: TrackingSite) -> None:
    _forget(site)
    site.delete()


def tracking_site_ensure(*, workspace, origins: list[str] | None = None) -> TrackingSite:
    """The workspace's first site, created with defaults when it has none."""
    site = TrackingSite.objects.filter(workspace=workspace).order_by("created_at").first()
    if site is None:
        site = tracking_site_create(workspace=workspace, name="Website", allowed_origins=origins or [])
    return site


def _clean_rule(data: dict) -> dict:
    errors = {}
    for key, check in (("conditions", personalization.validate_conditions), ("changes", personalization.validate_changes)):
        if key in data:
            try:
                check(data[key])
            except ValueError as error:
                path, _, message = str(error).partition(": ")
                errors[path] = message
    if errors:
        raise ValidationError(errors)
    return data


def personalization_rule_create(*, workspace, name: str, changes: list, **data) -> PersonalizationRule:
    clean = _clean_rule({"changes": changes, **data})
    return PersonalizationRule.objects.create(workspace=workspace, name=name.strip(), **clean)


@transaction.atomic
def personalization_rule_update(*, rule: PersonalizationRule, **data) -> PersonalizationRule:
    clean = _clean_rule(data)
    for key, value in clean.items():
        setattr(rule, key, value)
    rule.updated_at = timezone.now()
    rule.save()
    return rule


def personalization_rule_delete(*, rule: PersonalizationRule) -> None:
    rule.delete()
