"""How a submitted payload becomes a lead's parts: pure, no database."""

import pytest

from integrations.mapping import MAPPING_TARGETS, MappingError, map_payload, validate_field_mapping

# Core fields


def test_core_names_are_taken_as_core_fields_whatever_their_case():
    mapped = map_payload(
        {
            "Name": " Jane Doe ",
            "EMAIL": "jane@acme.com",
            "phone": "+1 415 555 0134",
            "company": "Acme",
            "title": "CTO",
            "Country": "Germany",
        }
    )
    assert mapped.core == {
        "name": "Jane Doe",
        "email": "jane@acme.com",
        "phone": "+1 415 555 0134",
        "company": {"name": "Acme"},
        "title": "CTO",
        "country": "Germany",
    }
    assert mapped.custom_fields == {}


def test_numbers_in_core_fields_are_kept_as_text():
    mapped = map_payload({"name": "Jane", "phone": 4155550134})
    assert mapped.core["phone"] == "4155550134"


def test_a_null_core_field_is_empty():
    assert map_payload({"name": "Jane", "title": None}).core["title"] == ""


def test_field_mapping_routes_a_field_to_a_core_field():
    mapped = map_payload({"name": "Jane", "job_title": "Marketing Director"}, {"job_title": "title"})
    assert mapped.core["title"] == "Marketing Director"
    assert "job_title" not in mapped.custom_fields


def test_without_a_mapping_the_same_field_is_a_custom_field():
    mapped = map_payload({"name": "Jane", "job_title": "Marketing Director"})
    assert "title" not in mapped.core
    assert mapped.custom_fields == {"job_title": "Marketing Director"}


def test_field_mapping_names_the_incoming_field_exactly_as_sent():
    mapped = map_payload({"Job Title": "CTO"}, {"job_title": "title"})
    assert "title" not in mapped.core
    assert mapped.custom_fields == {"Job Title": "CTO"}


def test_field_mapping_can_fill_first_and_last_name():
    mapped = map_payload({"fname": "Jane", "lname": "Doe"}, {"fname": "first_name", "lname": "last_name"})
    assert mapped.core == {"first_name": "Jane", "last_name": "Doe"}


def test_field_mapping_overrides_a_default_name():
    mapped = map_payload({"name": "Acme Corp", "contact": "Jane"}, {"name": "company", "contact": "name"})
    assert mapped.core == {"company": {"name": "Acme Corp"}, "name": "Jane"}


def test_ignore_drops_the_field_entirely():
    mapped = map_payload({"name": "Jane", "internal_id": "abc-1", "email": "jane@acme.com"}, {"internal_id": "ignore", "email": "ignore"})
    assert mapped.core == {"name": "Jane"}
    assert mapped.custom_fields == {}


def test_fields_named_in_ignore_are_left_out():
    mapped = map_payload({"name": "Jane", "_hp": ""}, ignore=("_hp",))
    assert mapped.custom_fields == {}


# Source: UTM, referrer, landing page


def test_utm_referrer_and_landing_names_are_source_fields():
    mapped = map_payload(
        {
            "name": "Jane",
            "utm_source": "google",
            "utm_medium": "cpc",
            "utm_campaign": "spring",
            "utm_term": "crm",
            "utm_content": "ad-1",
            "referer": "https://news.example.org/",
            "form_page": "https://acme.com/demo",
        }
    )
    assert mapped.core == {
        "name": "Jane",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "spring",
        "utm_term": "crm",
        "utm_content": "ad-1",
        "source_referrer": "https://news.example.org/",
        "source_landing_url": "https://acme.com/demo",
    }
    assert mapped.custom_fields == {}


@pytest.mark.parametrize("name", ["landing_url", "landing_page", "page_url", "form_page"])
def test_each_landing_page_name_is_the_landing_url(name):
    assert map_payload({name: "https://acme.com/a"}).core["source_landing_url"] == "https://acme.com/a"


@pytest.mark.parametrize("name", ["referrer", "referer", "Referrer"])
def test_each_referrer_spelling_is_the_referrer(name):
    assert map_payload({name: "https://google.com/"}).core["source_referrer"] == "https://google.com/"


def test_campaign_is_reachable_through_a_mapping():
    assert map_payload({"cmp": "launch"}, {"cmp": "campaign"}).core["source_campaign"] == "launch"


def test_utm_parameters_are_taken_from_the_landing_url_query():
    mapped = map_payload({"name": "Jane", "landing_url": "https://acme.com/demo?utm_source=linkedin&utm_campaign=q1&x=1"})
    assert mapped.core["utm_source"] == "linkedin"
    assert mapped.core["utm_campaign"] == "q1"
    assert "utm_medium" not in mapped.core


def test_utm_fields_sent_explicitly_win_over_the_landing_url():
    mapped = map_payload({"utm_source": "newsletter", "landing_url": "https://acme.com/?utm_source=linkedin&utm_medium=social"})
    assert mapped.core["utm_source"] == "newsletter"
    assert mapped.core["utm_medium"] == "social"


def test_the_page_a_form_was_posted_from_is_the_landing_page():
    mapped = map_payload({"name": "Jane"}, page_url="https://acme.com/pricing?utm_source=google")
    assert mapped.core["source_landing_url"] == "https://acme.com/pricing?utm_source=google"
    assert mapped.core["utm_source"] == "google"


def test_a_landing_page_in_the_payload_wins_over_the_posting_page():
    mapped = map_payload({"landing_url": "https://acme.com/a"}, page_url="https://acme.com/b")
    assert mapped.core["source_landing_url"] == "https://acme.com/a"


# Country, tags


def test_country_is_passed_on_as_sent_for_capture_to_normalize():
    assert map_payload({"country": "United States"}).core["country"] == "United States"


def test_tags_as_a_list():
    assert map_payload({"tags": ["Enterprise", "high-intent"]}).tags == ["Enterprise", "high-intent"]


def test_tags_as_a_comma_separated_string_skipping_blanks():
    assert map_payload({"tags": "enterprise, high-intent,, ,webinar"}).tags == ["enterprise", "high-intent", "webinar"]


def test_tags_from_two_mapped_fields_add_up():
    mapped = map_payload({"tags": "a", "labels": ["b"]}, {"labels": "tags"})
    assert sorted(mapped.tags) == ["a", "b"]


def test_a_tag_that_is_not_text_is_refused_naming_the_field():
    with pytest.raises(MappingError) as caught:
        map_payload({"tags": ["ok", {"nested": "no"}]})
    assert caught.value.field == "tags"


# Consent


@pytest.mark.parametrize("value", [True, "true", "TRUE", "yes", "on", "1", "y", "granted", "opt-in", "optin", 1])
def test_consent_true_spellings(value):
    assert map_payload({"consent.email_marketing": value}).consents == {"email_marketing": True}


@pytest.mark.parametrize("value", [False, "false", "no", "off", "0", "n", "withdrawn", "opt-out", "optout", "", 0])
def test_consent_false_spellings(value):
    assert map_payload({"consent_sms": value}).consents == {"sms": False}


def test_consent_as_a_nested_object_and_with_an_underscore():
    mapped = map_payload({"consent": {"email_marketing": "yes", "whatsapp": "no"}, "Consent_Data_Processing": True})
    assert mapped.consents == {"email_marketing": True, "whatsapp": False, "data_processing": True}
    assert mapped.custom_fields == {}


def test_consent_for_an_unknown_purpose_is_a_custom_field():
    mapped = map_payload({"consent_newsletter_weekly": "yes"})
    assert mapped.consents == {}
    assert mapped.custom_fields == {"consent_newsletter_weekly": "yes"}


def test_a_consent_value_that_is_neither_true_nor_false_is_refused_naming_the_field():
    with pytest.raises(MappingError) as caught:
        map_payload({"consent.sms": "maybe"})
    assert caught.value.field == "consent.sms"


@pytest.mark.parametrize("name", ["privacy_policy_version", "privacyPolicyVersion", "policy_version"])
def test_privacy_policy_version(name):
    mapped = map_payload({name: " 2024-05 "})
    assert mapped.policy_version == "2024-05"
    assert mapped.custom_fields == {}


# Company


def test_company_parts_through_mapping_make_one_company_object():
    mapped = map_payload(
        {"org": "Acme Corp", "org_domain": "acme.com", "headcount": "50-200", "sector": "Technology", "site": "https://acme.com"},
        {"org": "company", "org_domain": "company_domain", "headcount": "company_size", "sector": "industry", "site": "website"},
    )
    assert mapped.core == {
        "company": {"name": "Acme Corp", "domain": "acme.com", "size": "50-200", "industry": "Technology", "website": "https://acme.com"}
    }


def test_a_company_domain_alone_is_a_company():
    assert map_payload({"d": "acme.com"}, {"d": "company_domain"}).core == {"company": {"domain": "acme.com"}}


def test_company_details_without_a_name_or_domain_make_no_company():
    assert "company" not in map_payload({"sector": "Tech"}, {"sector": "industry"}).core


# Nesting and custom fields


def test_nested_objects_arrive_flattened_with_dots():
    mapped = map_payload({"contact": {"first_name": "Jane", "last_name": "Doe"}, "metadata": {"source": {"id": 7}}, "empty": {}})
    assert mapped.custom_fields == {"contact.first_name": "Jane", "contact.last_name": "Doe", "metadata.source.id": 7, "empty": {}}


def test_a_flattened_name_can_be_mapped():
    mapped = map_payload({"contact": {"email": "jane@acme.com", "first_name": "Jane"}}, {"contact.email": "email"})
    assert mapped.core == {"email": "jane@acme.com"}
    assert mapped.custom_fields == {"contact.first_name": "Jane"}


def test_custom_fields_keep_the_senders_names_and_values():
    mapped = map_payload({"Budget Range": "$10k", "product_interest": ["analytics", "attribution"], "seats": 12})
    assert mapped.custom_fields == {"Budget Range": "$10k", "product_interest": ["analytics", "attribution"], "seats": 12}


# Values that cannot be used


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"email": ["a@acme.com", "b@acme.com"]}, "email"),
        ({"phone": True}, "phone"),
        ({"Title": ["CTO"]}, "Title"),
        ({"country": 49.5, "utm_source": ["a", "b"]}, "utm_source"),
        ({"cv": {}}, "cv"),
    ],
)
def test_non_text_values_in_core_fields_raise_naming_the_field(payload, field):
    mapping = {"cv": "title"}
    with pytest.raises(MappingError) as caught:
        map_payload(payload, mapping)
    assert caught.value.field == field
    assert field in str(caught.value)


def test_an_object_under_a_core_name_is_flattened_to_custom_fields():
    mapped = map_payload({"name": {"first": "Jane"}, "email": "jane@acme.com"})
    assert mapped.core == {"email": "jane@acme.com"}
    assert mapped.custom_fields == {"name.first": "Jane"}


def test_a_list_in_a_mapped_company_field_raises_naming_the_field():
    with pytest.raises(MappingError) as caught:
        map_payload({"org": ["Acme"]}, {"org": "company"})
    assert caught.value.field == "org"


# Validating a webhook's field mapping


def test_a_valid_mapping_is_returned_clean():
    assert validate_field_mapping({"job_title": "title", "junk": "ignore"}) == {"job_title": "title", "junk": "ignore"}


def test_every_mapping_target_is_accepted():
    assert validate_field_mapping({f"f{i}": target for i, target in enumerate(MAPPING_TARGETS)}) == {
        f"f{i}": target for i, target in enumerate(MAPPING_TARGETS)
    }


@pytest.mark.parametrize("target", ["salary", "Title", "", None, 3, ["title"], "source_landing_url"])
def test_an_invalid_target_is_refused(target):
    with pytest.raises(ValueError, match="choose one of"):
        validate_field_mapping({"job_title": target})


@pytest.mark.parametrize("mapping", [["job_title", "title"], "job_title=title", 7])
def test_a_mapping_that_is_not_an_object_is_refused(mapping):
    with pytest.raises(ValueError):
        validate_field_mapping(mapping)


@pytest.mark.parametrize("incoming", ["", "   ", "x" * 201])
def test_incoming_names_are_1_to_200_characters(incoming):
    with pytest.raises(ValueError):
        validate_field_mapping({incoming: "title"})
