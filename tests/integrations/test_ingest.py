"""POST /webhooks/leads/<key>, as a landing page, a form or Zapier sends it."""

import json
import time
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.utils import timezone

from integrations.models import LeadWebhook, SubmissionOutcome, WebhookSubmission
from integrations.services import webhook_regenerate_key, webhook_update
from leads.models import ActivityType, ConsentRecord, Lead, LeadActivity
from leads.services import lead_assign, lead_stage_move
from pipelines.models import Stage
from tests.integrations.factories import ingest_path, make_webhook
from tests.pipelines.factories import make_pipeline
from tests.workspaces.factories import member
from workspaces.models import Role

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Rate-limit counters live in the cache (Redis when REDIS_URL is set): start every test at zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def hook(workspace):
    return make_webhook(workspace, name="Landing Page Form")


def post_json(client, key, payload, **extra):
    body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    return client.post(ingest_path(key), data=body, content_type="application/json", **extra)


def post_form(client, key, fields, **extra):
    return client.post(ingest_path(key), data=urlencode(fields, doseq=True), content_type=FORM, **extra)


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def only_lead() -> Lead:
    leads = list(Lead.objects.all())
    assert len(leads) == 1, leads
    return leads[0]


def stage_named(workspace, name) -> Stage:
    return Stage.objects.get(workspace=workspace, pipeline__is_default=True, name=name)


# Accepted submissions


def test_json_submission_creates_a_webhook_lead(client, hook, workspace):
    webhook, key = hook
    response = post_json(
        client,
        key,
        {"name": "Jane Doe", "email": " Jane.Doe@Acme.COM ", "phone": "+1 (415) 555-0134", "company": "Acme Corp", "title": "CTO"},
        REMOTE_ADDR="203.0.113.9",
        HTTP_USER_AGENT="Zapier",
    )
    assert response.status_code == 200, response.content
    lead = only_lead()
    assert response.json() == {"ok": True, "leadId": str(lead.pk), "status": "created"}
    assert (lead.name, lead.email, lead.phone, lead.title) == ("Jane Doe", "jane.doe@acme.com", "+14155550134", "CTO")
    assert lead.company.name == "Acme Corp"
    assert lead.workspace == workspace
    assert lead.source_type == "webhook"
    assert lead.source_webhook_id == webhook.pk
    assert lead.stage == stage_named(workspace, "New")
    assert lead.processing_state == "received"
    submission = WebhookSubmission.objects.get()
    assert submission.outcome == SubmissionOutcome.CREATED and submission.lead == lead
    assert (submission.ip, submission.user_agent) == ("203.0.113.9", "Zapier")
    assert submission.payload["title"] == "CTO"


@pytest.mark.parametrize("multipart", [False, True], ids=["urlencoded", "multipart"])
def test_a_plain_html_form_creates_a_lead_with_its_page_as_landing_page(client, hook, multipart):
    _, key = hook
    fields = {"name": "Jane Doe", "email": "jane@acme.com", "tags": ["webinar", "pricing"], "Budget": "10k"}
    referer = "https://acme.com/demo?utm_source=google&utm_campaign=spring"
    if multipart:
        response = client.post(ingest_path(key), data=fields, HTTP_REFERER=referer)
    else:
        response = post_form(client, key, fields, HTTP_REFERER=referer)
    assert response.status_code == 200, response.content
    lead = only_lead()
    assert response.json() == {"ok": True, "leadId": str(lead.pk), "status": "created"}
    assert (lead.name, lead.email, lead.source_type) == ("Jane Doe", "jane@acme.com", "webhook")
    assert lead.source_landing_url == referer
    assert (lead.utm_source, lead.utm_campaign) == ("google", "spring")
    assert sorted(lead.tags.values_list("name", flat=True)) == ["pricing", "webinar"]
    assert lead.custom_fields["budget"] == "10k"


def test_a_landing_page_field_in_the_form_wins_over_the_referer(client, hook):
    _, key = hook
    post_form(client, key, {"email": "a@acme.com", "landing_page": "https://acme.com/real"}, HTTP_REFERER="https://cdn.acme.com/frame")
    assert only_lead().source_landing_url == "https://acme.com/real"


def test_json_charset_parameter_is_accepted(client, hook):
    _, key = hook
    response = client.post(ingest_path(key), data=json.dumps({"name": "Zoë"}).encode(), content_type="application/json; charset=utf-8")
    assert response.status_code == 200
    assert only_lead().name == "Zoë"


# Keys


def test_unknown_key_is_404_with_the_json_error_shape(client, hook):
    response = post_json(client, "whk_not-a-real-key", {"name": "Jane"})
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert not Lead.objects.exists()


def test_a_regenerated_key_retires_the_old_url_at_once(client, hook):
    webhook, old_key = hook
    new_key = webhook_regenerate_key(webhook=webhook)
    assert post_json(client, old_key, {"name": "Old"}).status_code == 404
    assert post_json(client, new_key, {"name": "New"}).status_code == 200
    assert list(Lead.objects.values_list("name", flat=True)) == ["New"]


def test_an_inactive_webhook_is_404(client, hook):
    webhook, key = hook
    webhook_update(webhook=webhook, is_active=False)
    assert post_json(client, key, {"name": "Jane"}).status_code == 404
    assert not Lead.objects.exists()
    webhook.refresh_from_db()
    assert webhook.total_received == 0


def test_only_post_is_allowed(client, hook):
    _, key = hook
    assert client.get(ingest_path(key)).status_code == 405


# Mapping, custom fields, names


def test_unmapped_fields_become_custom_fields_with_the_senders_names_as_display_names(client, hook):
    _, key = hook
    post_json(client, key, {"name": "Jane", "Budget Range": "$10k-$50k", "product_interest": ["analytics"], "job_title": "CTO"})
    lead = only_lead()
    assert lead.title == ""
    assert lead.custom_fields == {
        "budgetRange": "$10k-$50k",
        "productInterest": ["analytics"],
        "jobTitle": "CTO",
        "_displayNames": {"budgetRange": "Budget Range", "productInterest": "product_interest", "jobTitle": "job_title"},
    }


def test_the_webhooks_field_mapping_routes_fields_to_core_fields(client, workspace):
    _, key = make_webhook(workspace, field_mapping={"job_title": "title", "internal_ref": "ignore", "full_name": "name"})
    post_json(client, key, {"full_name": "Jane Doe", "job_title": "CTO", "internal_ref": "x-1", "team": "Growth"})
    lead = only_lead()
    assert (lead.name, lead.title) == ("Jane Doe", "CTO")
    assert lead.custom_fields == {"team": "Growth", "_displayNames": {"team": "team"}}


def test_nested_objects_become_dotted_custom_fields(client, hook):
    _, key = hook
    post_json(client, key, {"email": "jane@acme.com", "contact": {"first_name": "Jane", "last_name": "Doe"}, "metadata": {"source": "fb"}})
    custom = only_lead().custom_fields
    assert custom == {
        "contact.firstName": "Jane",
        "contact.lastName": "Doe",
        "metadata.source": "fb",
        "_displayNames": {
            "contact.firstName": "contact.first_name",
            "contact.lastName": "contact.last_name",
            "metadata.source": "metadata.source",
        },
    }


def test_two_names_for_one_custom_field_lose_neither_value(client, hook):
    """`budget_range` and `Budget Range` are one custom field (budgetRange): the API refuses such a
    body naming the field; a webhook must not keep one value silently under the other's name."""
    _, key = hook
    response = post_json(client, key, {"name": "Jane", "budget_range": "$10k", "Budget Range": "$50k"})
    if response.status_code == 400:
        assert {"budget_range", "Budget Range"} & set(error_of(response)["fields"])
        assert not Lead.objects.exists()
    else:
        values = [value for name, value in only_lead().custom_fields.items() if name != "_displayNames"]
        assert sorted(values) == ["$10k", "$50k"]


@pytest.mark.parametrize(
    "payload, name",
    [
        ({"email": "Solo@Acme.com"}, "solo@acme.com"),
        ({"phone": "+44 20 7946 0958"}, "+442079460958"),
        ({"email": "solo@acme.com", "phone": "+44 20 7946 0958"}, "solo@acme.com"),
        ({"name": "  ", "email": "solo@acme.com"}, "solo@acme.com"),
    ],
)
def test_a_lead_without_a_name_is_named_by_its_email_then_its_phone(client, hook, payload, name):
    _, key = hook
    assert post_json(client, key, payload).status_code == 200
    assert only_lead().name == name


def test_mapped_first_and_last_names_make_the_name(client, workspace):
    _, key = make_webhook(workspace, field_mapping={"fn": "first_name", "ln": "last_name"})
    post_json(client, key, {"fn": "Jane", "ln": "Doe", "email": "jane@acme.com"})
    lead = only_lead()
    assert (lead.name, lead.first_name, lead.last_name) == ("Jane Doe", "Jane", "Doe")


# Bad input: a clear 4xx, and nothing written


def _nested(depth: int) -> dict:
    """A JSON object whose containers nest `depth` levels deep (the top-level object is level 1)."""
    value: dict = {"leaf": "x"}
    for _ in range(depth - 1):
        value = {"n": value}
    value["name"] = "Deep"
    return value


BAD_INPUTS = {
    "malformed JSON": ('{"name": "Jane",', "application/json", 400),
    "empty body": ("", "application/json", 400),
    "NaN": ('{"name": NaN}', "application/json", 400),
    "a number beyond a double": ('{"name": "Jane", "budget": 1e400}', "application/json", 400),
    "a NUL character": ('{"name": "Ja\\u0000ne", "email": "jane@acme.com"}', "application/json", 400),
    "a NUL in a key": ('{"name": "Jane", "note\\u0000": "x"}', "application/json", 400),
    "a lone surrogate": ('{"name": "Ja\\ud800ne", "email": "jane@acme.com"}', "application/json", 400),
    "a NUL in a form field": ("name=Ja%00ne&email=jane%40acme.com", "application/x-www-form-urlencoded", 400),
    "JSON array": ('[{"name": "Jane"}]', "application/json", 400),
    "JSON string": ('"Jane"', "application/json", 400),
    "body over 256 KB": (json.dumps({"name": "Jane", "blob": "x" * (256 * 1024)}), "application/json", 413),
    "33 levels deep": (json.dumps(_nested(33)), "application/json", 400),
    "thousands of levels deep": ('{"a":' * 5000 + "1" + "}" * 5000, "application/json", 400),
    "no identity": (json.dumps({"company": "Acme", "message": "hi"}), "application/json", 400),
    "invalid email": (json.dumps({"name": "Jane", "email": "not-an-email"}), "application/json", 400),
    "a list as the email": (json.dumps({"name": "Jane", "email": ["a@acme.com"]}), "application/json", 400),
    "plain text": ("name=Jane", "text/plain", 415),
    "XML": ("<lead><name>Jane</name></lead>", "application/xml", 415),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_and_writes_nothing(client, hook, case):
    webhook, key = hook
    body, content_type, status = BAD_INPUTS[case]
    response = client.post(ingest_path(key), data=body, content_type=content_type)
    assert response.status_code == status, response.content
    assert error_of(response)["message"]
    assert not Lead.objects.exists()
    assert not WebhookSubmission.objects.exists()
    webhook.refresh_from_db()
    assert webhook.total_received == 0


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"company": "Acme", "message": "hi"}, "name"),
        ({"name": "Jane", "email": "not-an-email"}, "email"),
        ({"name": "Jane", "email": "jane@@acme"}, "email"),
        ({"name": "Jane", "phone": ["1", "2"]}, "phone"),
        ({"name": "x" * 201}, "name"),
    ],
)
def test_a_refusal_names_the_field(client, hook, payload, field):
    _, key = hook
    response = post_json(client, key, payload)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert field in error["fields"]


def test_a_form_with_too_many_fields_gets_the_json_error_shape_and_writes_nothing(client, hook):
    _, key = hook
    fields = {"name": "Bot", **{f"field_{i}": "x" for i in range(1001)}}
    response = post_form(client, key, fields)
    assert response.status_code in (400, 413)
    assert response["Content-Type"] == "application/json"
    assert error_of(response)["message"]
    assert not Lead.objects.exists()


def test_too_large_body_is_413_and_one_at_the_limit_is_accepted(client, hook, settings):
    _, key = hook
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    assert limit == 256 * 1024
    skeleton = json.dumps({"name": "Jane", "blob": ""})
    at_limit = json.dumps({"name": "Jane", "blob": "x" * (limit - len(skeleton))})
    assert len(at_limit.encode()) == limit
    assert post_json(client, key, at_limit + " ").status_code == 413
    assert post_json(client, key, at_limit).status_code == 200
    assert Lead.objects.count() == 1


def test_nesting_of_exactly_32_levels_is_accepted(client, hook):
    _, key = hook
    assert post_json(client, key, _nested(32)).status_code == 200
    assert only_lead().name == "Deep"


# Validation and normalization


def test_an_unparseable_phone_is_kept_as_given_with_a_warning(client, hook):
    _, key = hook
    response = post_json(client, key, {"name": "Pat", "phone": "call me maybe"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "created"
    assert len(body["warnings"]) == 1 and "call me maybe" in body["warnings"][0]
    lead = only_lead()
    assert lead.phone == "call me maybe"
    assert lead.validation_warnings == body["warnings"]


@pytest.mark.parametrize(
    "email, kind", [("ceo@acme-industries.com", "business"), ("jane@gmail.com", "free"), ("tmp@mailinator.com", "disposable")]
)
def test_email_kind_is_recorded(client, hook, email, kind):
    _, key = hook
    post_json(client, key, {"email": email})
    assert only_lead().email_kind == kind


@pytest.mark.parametrize(
    "country, code", [("United States", "US"), ("USA", "US"), ("germany", "DE"), ("UK", "GB"), ("fr", "FR"), ("Viet Nam", "VN")]
)
def test_country_names_become_iso_codes(client, hook, country, code):
    _, key = hook
    post_json(client, key, {"name": "Jane", "country": country})
    assert only_lead().country == code


def test_an_unknown_country_is_kept_as_a_custom_field_with_a_warning(client, hook):
    _, key = hook
    response = post_json(client, key, {"name": "Jane", "country": "Narnia"})
    assert response.status_code == 200
    assert any("Narnia" in warning for warning in response.json()["warnings"])
    lead = only_lead()
    assert lead.country == ""
    assert lead.custom_fields["country"] == "Narnia"


# Deduplication


def _capture(client, key, payload) -> dict:
    response = post_json(client, key, payload)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def returning_lead(client, hook, workspace):
    """A lead captured once, then assigned to a rep and moved on by sales."""
    _, key = hook
    first = _capture(
        client, key, {"name": "Jane Doe", "email": "jane@acme.com", "tags": ["webinar"], "budget": "10k", "source_detail": {"ad": "A"}}
    )
    lead = Lead.objects.get(pk=first["leadId"])
    rep = member(workspace, Role.SALES_REP).user
    lead_assign(lead=lead, owner=rep, actor=None)
    lead_stage_move(lead=lead, stage=stage_named(workspace, "Qualified"), actor=None)
    lead.refresh_from_db()
    return lead


SECOND_SUBMISSION = {
    "name": "J. Doe",
    "email": "JANE@acme.com",
    "title": "CTO",
    "phone": "+1 415 555 0134",
    "tags": "enterprise",
    "budget": "20k",
    "timeline": "Q3",
}


def test_merge_fills_empty_fields_unions_tags_and_custom_fields_and_keeps_owner_and_stage(client, hook, returning_lead):
    webhook, key = hook
    answer = _capture(client, key, SECOND_SUBMISSION)
    assert answer == {"ok": True, "leadId": str(returning_lead.pk), "status": "merged"}
    assert Lead.objects.count() == 1
    lead = Lead.objects.get()
    assert lead.name == "Jane Doe"  # set: kept
    assert (lead.title, lead.phone) == ("CTO", "+14155550134")  # empty: filled
    assert sorted(lead.tags.values_list("name", flat=True)) == ["enterprise", "webinar"]
    assert lead.custom_fields["budget"] == "10k"
    assert lead.custom_fields["timeline"] == "Q3"
    assert lead.custom_fields["_displayNames"]["timeline"] == "timeline"
    assert (lead.owner_id, lead.stage_id) == (returning_lead.owner_id, returning_lead.stage_id)
    merged = LeadActivity.objects.get(lead=lead, type=ActivityType.MERGED)
    changes = merged.data["changes"]
    assert merged.data["strategy"] == "merge" and merged.data["webhookId"] == str(webhook.pk)
    assert changes["title"] == {"from": "", "to": "CTO"}
    assert changes["phone"] == {"from": "", "to": "+14155550134"}
    assert changes["custom_fields"] == {"from": {"timeline": None}, "to": {"timeline": "Q3"}}
    assert changes["tags"]["to"] == ["enterprise"]
    assert "name" not in changes


def test_replace_overwrites_with_the_new_values_but_keeps_owner_and_stage(client, workspace, returning_lead, hook):
    webhook, key = hook
    webhook_update(webhook=webhook, dedup_strategy="replace")
    answer = _capture(client, key, SECOND_SUBMISSION)
    assert answer["status"] == "merged" and answer["leadId"] == str(returning_lead.pk)
    lead = Lead.objects.get()
    assert (lead.name, lead.title, lead.phone) == ("J. Doe", "CTO", "+14155550134")
    assert lead.custom_fields["budget"] == "20k"
    assert lead.custom_fields["sourceDetail.ad"] == "A"  # a field the new submission did not send is kept
    assert (lead.owner_id, lead.stage_id) == (returning_lead.owner_id, returning_lead.stage_id)
    changes = LeadActivity.objects.get(lead=lead, type=ActivityType.MERGED).data["changes"]
    assert changes["name"] == {"from": "Jane Doe", "to": "J. Doe"}
    assert changes["custom_fields"]["from"]["budget"] == "10k" and changes["custom_fields"]["to"]["budget"] == "20k"


def test_skip_keeps_the_original_and_answers_duplicate(client, returning_lead, hook):
    webhook, key = hook
    webhook_update(webhook=webhook, dedup_strategy="skip")
    answer = _capture(client, key, SECOND_SUBMISSION)
    assert answer == {"ok": True, "leadId": str(returning_lead.pk), "status": "duplicate"}
    lead = Lead.objects.get()
    assert (lead.name, lead.title, lead.phone) == ("Jane Doe", "", "")
    assert list(lead.tags.values_list("name", flat=True)) == ["webinar"]
    assert lead.custom_fields == returning_lead.custom_fields
    assert not LeadActivity.objects.filter(lead=lead, type=ActivityType.MERGED).exists()
    assert LeadActivity.objects.filter(lead=lead, type=ActivityType.CAPTURED_AGAIN).count() == 1
    assert WebhookSubmission.objects.filter(outcome=SubmissionOutcome.DUPLICATE, lead=lead).count() == 1


def test_a_merge_that_changes_nothing_is_a_duplicate(client, hook, returning_lead):
    _, key = hook
    answer = _capture(client, key, {"email": "jane@acme.com", "name": "Jane Doe"})
    assert answer["status"] == "duplicate"
    assert not LeadActivity.objects.filter(type=ActivityType.MERGED).exists()


def test_dedup_finds_a_lead_by_phone_when_there_is_no_email_match(client, hook):
    _, key = hook
    first = _capture(client, key, {"name": "Pat", "phone": "(415) 555-0134"})
    second = _capture(client, key, {"phone": "+1 415-555-0134", "email": "pat@acme.com"})
    assert second["status"] == "merged" and second["leadId"] == first["leadId"]
    lead = only_lead()
    assert (lead.name, lead.email, lead.phone) == ("Pat", "pat@acme.com", "+14155550134")


def test_dedup_prefers_the_email_match_over_the_phone_match(client, hook):
    _, key = hook
    by_email = _capture(client, key, {"name": "Alex", "email": "alex@acme.com"})
    by_phone = _capture(client, key, {"name": "Sam", "phone": "+14155550134"})
    answer = _capture(client, key, {"email": "alex@acme.com", "phone": "+14155550134", "title": "CFO"})
    assert answer["leadId"] == by_email["leadId"]
    assert Lead.objects.get(pk=by_email["leadId"]).title == "CFO"
    assert Lead.objects.get(pk=by_phone["leadId"]).title == ""
    assert Lead.objects.count() == 2


def test_dedup_ignores_deleted_leads_and_other_workspaces(client, hook, other_workspace):
    _, key = hook
    _, their_key = make_webhook(other_workspace)
    ours = _capture(client, key, {"email": "jane@acme.com"})
    theirs = _capture(client, their_key, {"email": "jane@acme.com"})
    assert theirs["status"] == "created" and theirs["leadId"] != ours["leadId"]
    Lead.objects.filter(pk=ours["leadId"]).update(deleted_at=timezone.now())
    again = _capture(client, key, {"email": "jane@acme.com"})
    assert again["status"] == "created" and again["leadId"] not in (ours["leadId"], theirs["leadId"])


def test_the_webhook_counts_what_it_received(client, hook):
    webhook, key = hook
    before = timezone.now()
    _capture(client, key, {"email": "jane@acme.com"})
    _capture(client, key, {"email": "jane@acme.com", "title": "CTO"})
    _capture(client, key, {"email": "jane@acme.com"})
    _capture(client, key, {"email": "other@acme.com"})
    webhook.refresh_from_db()
    assert (webhook.total_received, webhook.duplicates_received) == (4, 2)
    assert webhook.last_received_at >= before
    assert webhook.duplicate_rate == 0.5
    outcomes = sorted(WebhookSubmission.objects.values_list("outcome", flat=True))
    assert outcomes == ["created", "created", "duplicate", "merged"]


# Consent


def test_consent_is_recorded_per_purpose_and_a_withdrawal_adds_history(client, hook, api):
    _, key = hook
    first = _capture(
        client,
        key,
        {"email": "jane@acme.com", "consent": {"email_marketing": "yes", "sms": True}, "privacy_policy_version": "2024-05"},
    )
    post_json(
        client,
        key,
        {"email": "jane@acme.com", "consent_email_marketing": "false", "privacy_policy_version": "2024-09"},
        REMOTE_ADDR="198.51.100.4",
        HTTP_USER_AGENT="Mozilla/5.0 (withdrawal)",
    )
    records = list(
        ConsentRecord.objects.order_by("created_at", "id").values_list("purpose", "granted", "policy_version", "ip", "user_agent")
    )
    assert records[:2] == [("email_marketing", True, "2024-05", "127.0.0.1", ""), ("sms", True, "2024-05", "127.0.0.1", "")]
    assert records[2] == ("email_marketing", False, "2024-09", "198.51.100.4", "Mozilla/5.0 (withdrawal)")
    assert len(records) == 3
    assert set(ConsentRecord.objects.values_list("source", flat=True)) == {"webhook"}

    detail = api.get(f"/api/v1/leads/{first['leadId']}").json()
    current = {entry["purpose"]: (entry["granted"], entry["policyVersion"]) for entry in detail["consent"]}
    assert current == {"email_marketing": (False, "2024-09"), "sms": (True, "2024-05")}
    history = [(entry["purpose"], entry["granted"]) for entry in detail["consentHistory"]]
    assert history[0] == ("email_marketing", False)
    assert sorted(history) == [("email_marketing", False), ("email_marketing", True), ("sms", True)]
    assert [a["type"] for a in detail["activities"]].count("consent") == 2


def test_a_withdrawal_is_recorded_even_when_the_webhook_skips_duplicates(client, workspace):
    _, key = make_webhook(workspace, dedup_strategy="skip")
    _capture(client, key, {"email": "jane@acme.com", "consent_sms": "yes"})
    answer = _capture(client, key, {"email": "jane@acme.com", "consent_sms": "no", "title": "CTO"})
    assert answer["status"] == "duplicate"
    assert list(ConsentRecord.objects.order_by("created_at", "id").values_list("granted", flat=True)) == [True, False]
    assert only_lead().title == ""


def test_a_submission_without_consent_fields_records_none(client, hook):
    _, key = hook
    _capture(client, key, {"email": "jane@acme.com"})
    assert not ConsentRecord.objects.exists()


# Idempotency-Key


def test_a_replay_returns_the_first_answer_and_creates_nothing(client, hook):
    webhook, key = hook
    payload = {"name": "Jane", "email": "jane@acme.com"}
    first = post_json(client, key, payload, HTTP_IDEMPOTENCY_KEY="order-123")
    assert first.status_code == 200 and "Idempotent-Replayed" not in first
    replay = post_json(client, key, payload, HTTP_IDEMPOTENCY_KEY="order-123")
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert replay["Idempotent-Replayed"] == "true"
    assert Lead.objects.count() == 1
    assert WebhookSubmission.objects.count() == 1
    webhook.refresh_from_db()
    assert webhook.total_received == 1
    assert not LeadActivity.objects.filter(type__in=[ActivityType.MERGED, ActivityType.CAPTURED_AGAIN]).exists()


def test_same_key_with_a_different_body_is_409_and_changes_nothing(client, hook):
    _, key = hook
    post_json(client, key, {"name": "Jane", "email": "jane@acme.com"}, HTTP_IDEMPOTENCY_KEY="order-123")
    response = post_json(client, key, {"name": "Jane", "email": "jane@acme.com", "title": "CTO"}, HTTP_IDEMPOTENCY_KEY="order-123")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "idempotency_conflict" and "Idempotency-Key" in error["fields"]
    assert only_lead().title == ""
    assert WebhookSubmission.objects.count() == 1


def test_an_idempotency_key_over_200_characters_is_400(client, hook):
    _, key = hook
    response = post_json(client, key, {"name": "Jane"}, HTTP_IDEMPOTENCY_KEY="k" * 201)
    assert response.status_code == 400
    assert "Idempotency-Key" in error_of(response)["fields"]
    assert not Lead.objects.exists()
    assert post_json(client, key, {"name": "Jane"}, HTTP_IDEMPOTENCY_KEY="k" * 200).status_code == 200
    assert WebhookSubmission.objects.get().idempotency_key == "k" * 200


def test_an_idempotency_key_is_per_webhook(client, hook, workspace):
    _, key = hook
    _, other_key = make_webhook(workspace)
    post_json(client, key, {"email": "jane@acme.com"}, HTTP_IDEMPOTENCY_KEY="same")
    response = post_json(client, other_key, {"email": "jane@acme.com"}, HTTP_IDEMPOTENCY_KEY="same")
    assert "Idempotent-Replayed" not in response
    assert response.json()["status"] == "duplicate"
    assert WebhookSubmission.objects.count() == 2


def test_a_refused_submission_does_not_use_up_its_key(client, hook):
    _, key = hook
    assert post_json(client, key, {"email": "bad"}, HTTP_IDEMPOTENCY_KEY="retry-me").status_code == 400
    fixed = post_json(client, key, {"email": "good@acme.com"}, HTTP_IDEMPOTENCY_KEY="retry-me")
    assert fixed.status_code == 200 and fixed.json()["status"] == "created"


# Honeypot


def test_a_filled_default_honeypot_is_answered_ok_and_discarded(client, hook):
    webhook, key = hook
    response = post_form(client, key, {"name": "Bot", "email": "bot@spam.example", "_hp": "http://spam.example"})
    assert response.status_code == 200
    assert response.json() == {"ok": True, "status": "discarded"}
    assert not Lead.objects.exists()
    submission = WebhookSubmission.objects.get()
    assert submission.outcome == SubmissionOutcome.DISCARDED and submission.lead is None
    webhook.refresh_from_db()
    assert (webhook.total_received, webhook.discarded_received, webhook.duplicates_received) == (1, 1, 0)


def test_an_empty_honeypot_lets_the_lead_in_without_storing_the_trap(client, hook):
    _, key = hook
    response = post_form(client, key, {"name": "Jane", "email": "jane@acme.com", "_hp": ""})
    assert response.json()["status"] == "created"
    assert only_lead().custom_fields == {}


def test_a_configured_honeypot_name_is_the_trap(client, workspace):
    webhook, key = make_webhook(workspace, honeypot_field="website_url")
    discarded = post_json(client, key, {"name": "Bot", "website_url": "http://spam.example"})
    assert discarded.json() == {"ok": True, "status": "discarded"}
    assert not Lead.objects.exists()
    kept = post_json(client, key, {"name": "Jane", "website_url": "", "_hp": "filled"})
    assert kept.json()["status"] == "created"
    assert "websiteUrl" not in only_lead().custom_fields
    webhook.refresh_from_db()
    assert (webhook.total_received, webhook.discarded_received) == (2, 1)


# Rate limits


def _in_a_fresh_window(margin_seconds: int = 5) -> None:
    """The limits count per clock minute: start a burst well inside one so it is not split in two."""
    left = 60 - time.time() % 60
    if left < margin_seconds:
        time.sleep(left + 0.1)


def test_the_per_key_limit_answers_429_with_retry_after(client, hook, workspace, settings):
    settings.WEBHOOK_RATE_LIMIT_PER_KEY = 2
    _, key = hook
    _, other_key = make_webhook(workspace)
    _in_a_fresh_window()
    answers = [post_json(client, key, {"email": f"a{i}@acme.com"}, REMOTE_ADDR="198.51.100.10") for i in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    limited = answers[2]
    assert error_of(limited)["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert Lead.objects.count() == 2
    assert post_json(client, other_key, {"email": "b@acme.com"}, REMOTE_ADDR="198.51.100.10").status_code == 200


def test_the_per_address_limit_answers_429_with_retry_after(client, workspace, settings):
    settings.WEBHOOK_RATE_LIMIT_PER_IP = 2
    keys = [make_webhook(workspace)[1] for _ in range(3)]
    _in_a_fresh_window()
    answers = [post_json(client, key, {"email": f"a{i}@acme.com"}, REMOTE_ADDR="198.51.100.20") for i, key in enumerate(keys)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert 1 <= int(answers[2]["Retry-After"]) <= 60
    assert Lead.objects.count() == 2
    assert post_json(client, keys[2], {"email": "c@acme.com"}, REMOTE_ADDR="198.51.100.21").status_code == 200


# Placement and origin


def test_a_target_stage_on_the_webhook_places_new_leads_there(client, workspace):
    partners = make_pipeline(workspace, name="Partners", stage_names=("Intro", "Trial", "Signed"))
    trial = partners.stages.get(name="Trial")
    webhook, key = make_webhook(workspace, stage=trial)
    assert webhook.pipeline == partners
    post_json(client, key, {"email": "jane@acme.com"})
    lead = only_lead()
    assert (lead.pipeline_id, lead.stage_id) == (partners.pk, trial.pk)


def test_a_target_pipeline_without_a_stage_places_new_leads_in_its_first_stage(client, workspace):
    partners = make_pipeline(workspace, name="Partners", stage_names=("Intro", "Trial", "Signed"))
    _, key = make_webhook(workspace, pipeline=partners)
    post_json(client, key, {"email": "jane@acme.com"})
    assert only_lead().stage == partners.stages.get(name="Intro")


def test_the_lead_records_which_webhook_created_it(client, workspace):
    first, first_key = make_webhook(workspace, name="Ads")
    second, second_key = make_webhook(workspace, name="Site")
    a = _capture(client, first_key, {"email": "a@acme.com"})
    b = _capture(client, second_key, {"email": "b@acme.com"})
    assert Lead.objects.get(pk=a["leadId"]).source_webhook == first
    assert Lead.objects.get(pk=b["leadId"]).source_webhook == second
    assert LeadWebhook.objects.get(pk=first.pk).leads.count() == 1


def test_a_merged_lead_keeps_the_webhook_that_created_it(client, workspace):
    first, first_key = make_webhook(workspace, name="Ads")
    _, second_key = make_webhook(workspace, name="Site")
    created = _capture(client, first_key, {"email": "a@acme.com"})
    _capture(client, second_key, {"email": "a@acme.com", "title": "CTO"})
    assert Lead.objects.get(pk=created["leadId"]).source_webhook == first


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "long@example.com", "phone": "call me on my office line, extension 42, after lunch please"}, "phone"),
        ({"email": "long@example.com", "title": "t" * 201}, "title"),
    ],
)
def test_values_longer_than_their_field_are_refused_by_name_not_cut(client, workspace, payload, field):
    _, key = make_webhook(workspace)
    response = post_json(client, key, payload)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Lead.objects.exists()


def test_a_country_name_longer_than_the_code_fits(client, workspace):
    _, key = make_webhook(workspace)
    assert post_json(client, key, {"email": "us@example.com", "country": "United States of America"}).status_code == 200
    assert Lead.objects.get().country == "US"
