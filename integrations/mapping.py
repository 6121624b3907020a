"""Turns a submitted payload into a capture Submission's parts. Pure: no database, no request.

Core fields are taken by name (seed 001: name, email, phone, company, title) or through the
webhook's field mapping; UTM parameters, referrer, landing page, country, tags and consent flags
are recognised by their usual names; everything else becomes a custom field under the name the
sender used. Nested objects arrive flattened with dots (`contact.first_name`).
"""

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from leads.models import ConsentPurpose
from leads.normalization import flatten

# Targets a field mapping may name, and what each becomes.
MAPPING_TARGETS = {
    "name": "name",
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "phone": "phone",
    "company": "company",
    "company_domain": "company_domain",
    "company_size": "company_size",
    "industry": "industry",
    "website": "website",
    "title": "title",
    "department": "department",
    "country": "country",
    "tags": "tags",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
    "referrer": "source_referrer",
    "landing_url": "source_landing_url",
    "campaign": "source_campaign",
    # Seed 000's camelCase spellings (forms.trackAll fieldMapping).
    "jobTitle": "title",
    "firstName": "first_name",
    "lastName": "last_name",
    "ignore": "",
}
# Names recognised without a mapping (compared lower-case).
DEFAULT_NAMES = {
    "name": "name",
    "email": "email",
    "phone": "phone",
    "company": "company",
    "title": "title",
    "country": "country",
    "tags": "tags",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
    "referrer": "referrer",
    "referer": "referrer",
    "landing_url": "landing_url",
    "landing_page": "landing_url",
    "page_url": "landing_url",
    "form_page": "landing_url",
}
CONSENT_PREFIXES = ("consent.", "consent_")
POLICY_VERSION_NAMES = {"privacy_policy_version", "privacypolicyversion", "policy_version"}
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
TRUE_VALUES = {"1", "true", "yes", "on", "y", "granted", "opt-in", "optin"}
FALSE_VALUES = {"0", "false", "no", "off", "n", "withdrawn", "opt-out", "optout", ""}


class MappingError(ValueError):
    """A value that cannot be used where it is mapped; `field` names it as the sender spelled it."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name


@dataclass
class MappedPayload:
    core: dict[str, Any] = field(default_factory=dict)
    custom_fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    consents: dict[str, bool] = field(default_factory=dict)
    policy_version: str = ""


def _as_text(key: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise MappingError(key, f"{key} must be text, not {type(value).__name__}.")
    return str(value).strip()


def _as_bool(key: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_VALUES:
        return True
    if text in FALSE_VALUES:
        return False
    raise MappingError(key, f"{key} must be true or false.")


def map_payload(
    payload: dict, field_mapping: dict[str, str] | None = None, *, ignore: tuple[str, ...] = (), page_url: str = ""
) -> MappedPayload:
    """`page_url` is the page a plain HTML form was posted from: the landing page unless the payload names one."""
    flat = flatten(payload)
    mapping = field_mapping or {}
    result = MappedPayload()
    company: dict[str, str] = {}
    for key, value in flat.items():
        if key in ignore:
            continue
        lowered = key.strip().lower()
        target = mapping.get(key)
        if target is None:
            target = DEFAULT_NAMES.get(lowered)
        if target == "ignore":
            continue
        if target is None and lowered.startswith(CONSENT_PREFIXES):
            purpose = lowered.split(".", 1)[1] if lowered.startswith("consent.") else lowered[len("consent_") :]
            if purpose in ConsentPurpose.values:
                result.consents[purpose] = _as_bool(key, value)
                continue
        if target is None and lowered in POLICY_VERSION_NAMES:
            result.policy_version = _as_text(key, value)[:100]
            continue
        if target is None:
            result.custom_fields[key] = value
            continue
        if target == "tags":
            items = value if isinstance(value, list) else str(value or "").split(",")
            result.tags += [_as_text(key, item) for item in items if _as_text(key, item)]
        elif target in ("company", "company_domain", "company_size", "industry", "website"):
            company[{"company": "name", "company_domain": "domain", "company_size": "size"}.get(target, target)] = _as_text(key, value)
        else:
            result.core[MAPPING_TARGETS[target]] = _as_text(key, value)
    if company.get("name") or company.get("domain"):
        result.core["company"] = {k: v for k, v in company.items() if v}
    if page_url and not result.core.get("source_landing_url"):
        result.core["source_landing_url"] = page_url[:1000]
    _utm_from_landing_url(result.core)
    return result


def _utm_from_landing_url(core: dict) -> None:
    """A landing URL often carries the UTM parameters the payload left out."""
    landing = core.get("source_landing_url")
    if not landing:
        return
    query = parse_qs(urlparse(landing).query)
    for name in UTM_FIELDS:
        if not core.get(name) and query.get(name):
            core[name] = query[name][0][:200]


def validate_field_mapping(mapping) -> dict[str, str]:
    """A webhook's field mapping: incoming name → one of MAPPING_TARGETS. Raises ValueError."""
    if not isinstance(mapping, dict):
        raise ValueError("Give an object: incoming field name → core field.")
    clean = {}
    for incoming, target in mapping.items():
        if not isinstance(target, str) or target not in MAPPING_TARGETS:
            raise ValueError(f"{incoming!r} maps to {target!r}; choose one of: {', '.join(MAPPING_TARGETS)}.")
        if not str(incoming).strip() or len(str(incoming)) > 200:
            raise ValueError("Incoming field names are 1 to 200 characters.")
        clean[str(incoming)] = target
    return clean
