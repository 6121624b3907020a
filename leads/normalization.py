"""Pure normalizers for what people type into lead fields. No database, no clock."""

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class InvalidValue(ValueError):
    pass


def normalize_email(raw: str) -> str:
    """Returns the lower-cased address, or raises InvalidValue naming what is wrong."""
    value = (raw or "").strip()
    if not value:
        return ""
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidValue(str(error)) from None
    return result.normalized.lower()


def normalize_phone(raw: str, default_region: str = "US") -> tuple[str, bool]:
    """Returns (E.164 number, True) when the number parses as possible, else (the raw value, False)."""
    value = (raw or "").strip()
    if not value:
        return "", True
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        return value, False
    if not phonenumbers.is_possible_number(number):
        return value, False
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), True


_WORD_SPLIT = re.compile(r"[^0-9a-zA-Z]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def camel_case_key(raw: str) -> str:
    """`budget_range`, `Budget Range` and `budgetRange` all become `budgetRange`; dots separate nested
    keys (`contact.first_name` → `contact.firstName`)."""
    parts = []
    for segment in str(raw).split("."):
        words = [w for w in _WORD_SPLIT.split(_CAMEL_BOUNDARY.sub(" ", segment)) if w]
        if not words:
            continue
        parts.append(words[0].lower() + "".join(w[:1].upper() + w[1:].lower() for w in words[1:]))
    return ".".join(parts)


def display_name_for(raw: str) -> str:
    return str(raw).strip()


def split_full_name(name: str) -> tuple[str, str]:
    parts = (name or "").strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def normalize_tag(raw: str) -> str:
    return " ".join(str(raw).split()).lower()[:60]
