"""Pure normalizers: no database."""

import pytest
from email_validator import validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.normalization import (
    InvalidValue,
    _plain_address,
    assess_phone,
    camel_case_key,
    normalize_email,
    normalize_phone,
    normalize_tag,
    split_full_name,
)
from leads.services import custom_fields_merge


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" Jane.Doe@Acme.COM ", "jane.doe@acme.com"), ("", ""), ("a+tag@sub.example.org", "a+tag@sub.example.org")],
)
def test_normalize_email(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["jane", "jane@", "@acme.com", "jane@@acme.com", "jane doe@acme.com"])
def test_invalid_email_raises(raw):
    with pytest.raises(InvalidValue):
        normalize_email(raw)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1-555-123-4567", "US", ("+15551234567", True)),
        ("(415) 555-0134", "US", ("+14155550134", True)),
        ("020 7946 0958", "GB", ("+442079460958", True)),
        ("call me", "US", ("call me", False)),
        ("12", "US", ("12", False)),
        ("", "US", ("", True)),
    ],
)
def test_normalize_phone(raw, region, expected):
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("budget_range", "budgetRange"),
        ("Budget Range", "budgetRange"),
        ("budgetRange", "budgetRange"),
        ("utm-source", "utmSource"),
        ("contact.first_name", "contact.firstName"),
    ],
)
def test_camel_case_key(raw, expected):
    assert camel_case_key(raw) == expected


def test_split_full_name_and_tags():
    assert split_full_name("Jane van der Berg") == ("Jane", "van der Berg")
    assert split_full_name("Cher") == ("Cher", "")
    assert normalize_tag("  High   Intent ") == "high intent"


def test_custom_fields_keep_original_names_for_display():
    merged = custom_fields_merge({}, {"budget_range": "$10k", "Annual Revenue": 5})
    assert merged == {
        "budgetRange": "$10k",
        "annualRevenue": 5,
        "_displayNames": {"budgetRange": "budget_range", "annualRevenue": "Annual Revenue"},
    }


def test_custom_fields_merge_updates_removes_and_honours_given_display_names():
    existing = {"budget": 1, "timeline": "Q1", "_displayNames": {"budget": "Budget", "timeline": "Timeline"}}
    merged = custom_fields_merge(existing, {"budget": 2, "timeline": None, "seats": 10, "_displayNames": {"seats": "Number of seats"}})
    assert merged == {"budget": 2, "seats": 10, "_displayNames": {"budget": "Budget", "seats": "Number of seats"}}
    assert custom_fields_merge(existing, {"budget": None, "timeline": None}) == {}


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(415) 555-2671", "US", ("+14155552671", "US", [])),
        ("+1 604 555 0134", "US", ("+16045550134", "CA", [])),
        ("+1 787 555 0134", "US", ("+17875550134", "PR", [])),
        ("020 7946 0958", "GB", ("+442079460958", "GB", [])),
        ("+39 02 1234 5678", "US", ("+390212345678", "IT", [])),  # Italian numbers keep their leading zero
        ("(415) 555-2671 ext. 12", "US", ("+14155552671", "US", [])),
        ("+1 800 555 0199", "US", ("+18005550199", "US", [])),
        ("12", "US", ("12", "", ["phone '12' could not be parsed as a phone number; kept as given"])),
        ("call me", "US", ("call me", "", ["phone 'call me' could not be parsed as a phone number; kept as given"])),
        ("  ", "US", ("", "", [])),
    ],
)
def test_assess_phone_gives_the_e164_number_its_country_and_warnings(raw, region, expected):
    assert assess_phone(raw, region) == expected
    if expected[1]:  # the country is the one its E.164 form is read as
        assert assess_phone(expected[0], "GB")[1] == expected[1]


# normalize_email's plain-address shortcut must never disagree with email-validator: on every
# generated address it accepts, validate_email accepts it too and normalizes it the same way.
_LOCAL_CHARS = "aZz09._-+!#$%&'*/=?^`{|}~\"( é"
_LABEL_CHARS = "aZz09-_é"
_TLDS = ["com", "co", "Io", "c0m", "123", "test", "local", "localhost", "arpa", "onion", "invalid", "x--y", "a", ""]
# Near the length limits too: a local part of 64 vs 65 characters, a label of 63 vs 64.
_atoms = st.text(_LOCAL_CHARS, min_size=0, max_size=70) | st.text("ab", min_size=60, max_size=70)
_labels = st.text(_LABEL_CHARS, min_size=0, max_size=66) | st.text("ab", min_size=58, max_size=66)
_domains = st.builds(
    lambda labels, tld: ".".join([*labels, tld]), st.lists(_labels, min_size=0, max_size=4), st.sampled_from(_TLDS) | _labels
)
_addresses = st.builds(lambda local, domain: f"{local}@{domain}", _atoms, _domains) | st.text(_LOCAL_CHARS + "@.", max_size=40)


@settings(max_examples=3000, deadline=None)
@given(_addresses)
def test_the_plain_address_shortcut_agrees_with_email_validator(address):
    shortcut = _plain_address(address)
    if shortcut is None:
        return  # validate_email decides
    assert shortcut == validate_email(address, check_deliverability=False).normalized.lower()


@pytest.mark.parametrize(
    "address",
    ["jane@acme.com", "Jane.Doe+leads@Sub.Acme.CO.uk", "o'brien@acme.io", "x@a-b.example.com", "a" * 64 + "@acme.com"],
)
def test_plain_addresses_take_the_shortcut_and_come_out_as_validate_email_gives_them(address):
    assert _plain_address(address) == normalize_email(address) == validate_email(address, check_deliverability=False).normalized.lower()


@pytest.mark.parametrize(
    "address",
    ["x@localhost", "x@foo.test", "x@a--b.com", "x..y@acme.com", ".x@acme.com", "x@acme.co1", "x@-acme.com", "a" * 65 + "@acme.com",
     "é@acme.com", '"quoted"@acme.com', "x@[127.0.0.1]", "x@acme.123"],
)  # fmt: skip
def test_other_addresses_go_through_email_validator(address):
    assert _plain_address(address) is None
