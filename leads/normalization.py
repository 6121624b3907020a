"""Pure normalizers for what people type into lead fields. No database, no clock."""

import re

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from email_validator.rfc_constants import DOMAIN_MAX_LENGTH, EMAIL_MAX_LENGTH, LOCAL_PART_MAX_LENGTH


class InvalidValue(ValueError):
    pass


def normalize_email(raw: str) -> str:
    """Returns the lower-cased address, or raises InvalidValue naming what is wrong."""
    value = (raw or "").strip()
    if not value:
        return ""
    if plain := _plain_address(value):
        return plain
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidValue(str(error)) from None
    return result.normalized.lower()


# The plain ASCII form most addresses have: dot-separated atoms, then a host name of letters, digits
# and inner hyphens whose last label ends with a letter. validate_email accepts these as they are
# (its normalized form is the address with its domain lower-cased), unless a length limit, a
# "--" label or a special-use domain says otherwise; those, and every other form, go through
# validate_email. It costs ~30 µs an address, a tenth of an import row; this check ~2 µs.
# tests/leads/test_normalization.py checks the two agree on generated addresses.
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_ADDRESS = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@((?:{_LABEL}\.)+{_LABEL})", re.IGNORECASE)


def _plain_address(value: str) -> str | None:
    """The lower-cased address if it has the plain form validate_email takes as it is, else None."""
    if not value.isascii() or len(value) > EMAIL_MAX_LENGTH or not (match := _PLAIN_ADDRESS.fullmatch(value)):
        return None
    local, domain = match.groups()
    domain = domain.lower()
    if len(local) > LOCAL_PART_MAX_LENGTH or len(domain) > DOMAIN_MAX_LENGTH or not domain[-1].isalpha() or "--" in domain:
        return None
    if any(domain == special or domain.endswith("." + special) for special in SPECIAL_USE_DOMAIN_NAMES):
        return None
    return value.lower()


def _possible_number(value: str, default_region: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_possible_number(number) else None


def normalize_phone(raw: str, default_region: str = "US") -> tuple[str, bool]:
    """Returns (E.164 number, True) when the number parses as possible, else (the raw value, False)."""
    value = (raw or "").strip()
    if not value:
        return "", True
    number = _possible_number(value, default_region)
    if number is None:
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


# Free webmail providers (disposable-email-domains lists throwaway domains, not these).
FREE_MAIL_DOMAINS = frozenset(
    [
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "yahoo.de",
        "yahoo.es",
        "yahoo.it",
        "yahoo.co.jp",
        "yahoo.com.br",
        "ymail.com",
        "rocketmail.com",
        "outlook.com",
        "outlook.fr",
        "outlook.de",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "hotmail.de",
        "hotmail.it",
        "hotmail.es",
        "live.com",
        "live.co.uk",
        "live.fr",
        "msn.com",
        "aol.com",
        "aim.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "gmx.at",
        "web.de",
        "mail.com",
        "email.com",
        "zoho.com",
        "zohomail.com",
        "yandex.com",
        "yandex.ru",
        "ya.ru",
        "mail.ru",
        "inbox.ru",
        "list.ru",
        "bk.ru",
        "rambler.ru",
        "qq.com",
        "163.com",
        "126.com",
        "sina.com",
        "sohu.com",
        "naver.com",
        "daum.net",
        "hanmail.net",
        "rediffmail.com",
        "libero.it",
        "virgilio.it",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "laposte.net",
        "sfr.fr",
        "t-online.de",
        "freenet.de",
        "seznam.cz",
        "wp.pl",
        "o2.pl",
        "interia.pl",
        "onet.pl",
        "tutanota.com",
        "tuta.io",
        "fastmail.com",
        "hushmail.com",
        "comcast.net",
        "verizon.net",
        "att.net",
        "sbcglobal.net",
        "bellsouth.net",
        "cox.net",
        "charter.net",
        "earthlink.net",
        "btinternet.com",
        "sky.com",
        "blueyonder.co.uk",
        "shaw.ca",
        "rogers.com",
        "sympatico.ca",
        "bigpond.com",
        "optusnet.com.au",
        "uol.com.br",
        "bol.com.br",
        "terra.com.br",
    ]
)


def email_kind(email: str) -> str:
    """business | free | disposable, from the address's domain; '' without an address."""
    from disposable_email_domains import blocklist

    domain = email.rpartition("@")[2].lower()
    if not domain:
        return ""
    if domain in blocklist:
        return "disposable"
    if domain in FREE_MAIL_DOMAINS:
        return "free"
    return "business"


# Names people write that ISO does not list under that spelling.
COUNTRY_ALIASES = {
    "uk": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "great britain": "GB",
    "usa": "US",
    "u.s.a.": "US",
    "u.s.": "US",
    "america": "US",
}


def normalize_country(raw: str) -> str:
    """ISO 3166 alpha-2 for a country code or name ("USA", "United States" → "US"); raises
    InvalidValue when it names no country."""
    import pycountry

    value = " ".join(str(raw or "").split())
    if not value:
        return ""
    alias = COUNTRY_ALIASES.get(value.lower())
    if alias:
        return alias
    try:
        return pycountry.countries.lookup(value).alpha_2
    except LookupError:
        pass
    try:
        return pycountry.countries.search_fuzzy(value)[0].alpha_2
    except LookupError:
        raise InvalidValue(f"{value!r} is not a country we know.") from None


def flatten(payload: dict, prefix: str = "") -> dict:
    """Nested objects become dotted keys (`contact.first_name`); lists and scalars stay values."""
    flat: dict = {}
    for key, value in payload.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def assess_phone(raw: str, default_region: str) -> tuple[str, str, list[str]]:
    """(stored phone, its country, warnings): an unparseable number is kept as typed, with a warning.
    The number is parsed once: its country comes from the same parse as its E.164 form."""
    value = (raw or "").strip()
    if not value:
        return "", "", []
    number = _possible_number(value, default_region)
    if number is None:
        return value, "", [f"phone {value!r} could not be parsed as a phone number; kept as given"]
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), phonenumbers.region_code_for_number(number) or "", []
