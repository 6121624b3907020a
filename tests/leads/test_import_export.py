"""CSV import and export, as a person using the board and a partner's integration use them: column
mapping, dry runs, dedup strategies, bad files, body limits, roles, tenancy, formula escaping,
filters and the number of queries an export makes."""

import csv
import html
import io
import json
import re

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from leads import imports
from leads.exports import EXPORT_COLUMNS, escape_formula, leads_export_rows
from leads.imports import MAX_COLUMNS, csv_inspect, guess_mapping, leads_import_csv
from leads.models import ActivityType, Company, Lead, LeadActivity, LeadTag, Tag
from leads.selectors import leads_base
from pipelines.models import Pipeline, Stage
from tests.leads.factories import make_lead
from tests.pipelines.factories import make_pipeline
from tests.workspaces.factories import UserFactory, member
from workspaces.middleware import SESSION_WORKSPACE_KEY
from workspaces.models import Role

IMPORT_URL = "/api/v1/leads/import"
EXPORT_URL = "/api/v1/leads/export"
WEB_IMPORT = "/leads/import"
WEB_IMPORT_RUN = "/leads/import/run"
WEB_EXPORT = "/leads/export"
XSS = "<img src=x onerror=alert(1)>"


def csv_bytes(*rows, delimiter=",", encoding="utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    return out.getvalue().encode(encoding)


def run_import(workspace, content: bytes, **options) -> dict:
    return leads_import_csv(workspace=workspace, actor=None, file=io.BytesIO(content), **options)


def api_import(client, content: bytes | None, *, name="leads.csv", **fields):
    data = {key: json.dumps(value) if key == "mapping" and not isinstance(value, str) else value for key, value in fields.items()}
    if content is not None:
        data["file"] = SimpleUploadedFile(name, content, content_type="text/csv")
    return client.post(IMPORT_URL, data, format="multipart")


def error_fields(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "fields"} <= set(body["error"])
    return body["error"]["fields"]


def exported(response) -> list[dict]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def leads_of(workspace):
    return Lead.objects.filter(workspace=workspace)


def workspace_state(workspace) -> dict:
    return {
        "leads": list(leads_of(workspace).order_by("pk").values_list("pk", "name", "email", "phone", "title", "department", "updated_at")),
        "activities": LeadActivity.objects.filter(workspace=workspace).count(),
        "companies": Company.objects.filter(workspace=workspace).count(),
        "tags": Tag.objects.filter(workspace=workspace).count(),
        "lead_tags": LeadTag.objects.filter(lead__workspace=workspace).count(),
    }


# The file used by the dry-run and real-run tests: against an existing Jane (title "CEO"), row 2
# creates Ann, row 3 merges a department into Jane, row 4 repeats Ann with a phone (an in-file
# duplicate), row 5 has an invalid email and row 6 names nobody.
MIXED = csv_bytes(
    ["Full Name", "Email", "Phone", "Department", "Favourite Colour"],
    ["Ann Lee", "ann@example.com", "", "", "green"],
    ["Jane Doe", "JANE@example.com", "", "Sales", ""],
    ["Ann Lee", "ann@example.com", "+1 415 555 0134", "", ""],
    ["Bad Email", "not-an-email", "", "", ""],
    ["", "", "", "Nobody", "red"],
)


@pytest.fixture
def jane(workspace):
    return make_lead(workspace, name="Jane Doe", email="jane@example.com", title="CEO")


# Guessing and mapping


def test_guess_mapping_recognises_common_headers_whatever_their_case_and_punctuation():
    headers = ["FULL NAME", "E-mail Address", "Phone Number", "Company Name", "Job Title", "dept", "Country", "Tags", "utm_source"]
    headers += ["Landing Page", "Favourite Colour", "First Name", "last_name", "Website"]
    assert guess_mapping(headers) == {
        "FULL NAME": "name",
        "E-mail Address": "email",
        "Phone Number": "phone",
        "Company Name": "company",
        "Job Title": "title",
        "dept": "department",
        "Country": "country",
        "Tags": "tags",
        "utm_source": "utm_source",
        "Landing Page": "landing_url",
        "First Name": "first_name",
        "last_name": "last_name",
        "Website": "website",
    }


def test_guess_mapping_gives_a_field_to_its_first_column_only():
    assert guess_mapping(["Email", "Work Email", "Tags", "Labels"]) == {"Email": "email", "Tags": "tags", "Labels": "tags"}


def test_every_mapping_target_fills_its_field(workspace):
    header = ["Who", "Given", "Family", "Mail", "Tel", "Org", "Org Domain", "Org Size", "Sector", "Site", "Role", "Team", "Land"]
    header += [
        "Labels",
        "More Labels",
        "Src",
        "Med",
        "Camp",
        "Term",
        "Content",
        "Ref",
        "Landing",
        "Campaign Name",
        "Secret",
        "Budget Range",
    ]
    row = ["Jane Doe", "Jane", "Doe", "Jane@Acme.com", "+1 415 555 0134", "Acme", "acme.com", "50-200", "Software", "https://acme.com"]
    row += ["CTO", "Engineering", "Germany", "VIP, hot", "beta", "google", "cpc", "spring", "crm", "ad-1", "https://ref.example"]
    row += ["https://acme.example/landing", "Q2 push", "do not keep", "$10k"]
    mapping = dict(
        zip(
            header[:-1],
            [
                *("name", "first_name", "last_name", "email", "phone", "company", "company_domain", "company_size", "industry"),
                *("website", "title", "department", "country", "tags", "tags", "utm_source", "utm_medium", "utm_campaign"),
                *("utm_term", "utm_content", "referrer", "landing_url", "campaign", "ignore"),
            ],
            strict=True,
        )
    )
    report = run_import(workspace, csv_bytes(header, row), mapping=mapping)
    assert report["created"] == 1, report
    lead = leads_of(workspace).select_related("company").get()
    assert (lead.name, lead.first_name, lead.last_name) == ("Jane Doe", "Jane", "Doe")
    assert (lead.email, lead.phone, lead.country) == ("jane@acme.com", "+14155550134", "DE")
    assert (lead.title, lead.department) == ("CTO", "Engineering")
    company = lead.company
    assert (company.name, company.domain, company.size, company.industry, company.website) == (
        "Acme",
        "acme.com",
        "50-200",
        "Software",
        "https://acme.com",
    )
    assert sorted(lead.tags.values_list("name", flat=True)) == ["beta", "hot", "vip"]
    assert (lead.utm_source, lead.utm_medium, lead.utm_campaign, lead.utm_term, lead.utm_content) == (
        "google",
        "cpc",
        "spring",
        "crm",
        "ad-1",
    )
    assert (lead.source_referrer, lead.source_landing_url, lead.source_campaign) == (
        "https://ref.example",
        "https://acme.example/landing",
        "Q2 push",
    )
    # The unmapped column became a custom field under its own name; the ignored one was dropped.
    assert lead.custom_fields == {"budgetRange": "$10k", "_displayNames": {"budgetRange": "Budget Range"}}
    assert lead.source_type == "import"


def test_without_a_mapping_the_guess_is_used_and_reported(workspace):
    report = run_import(workspace, csv_bytes(["Name", "E-mail", "Shoe Size"], ["Ann Lee", "ann@example.com", "42"]))
    assert report["mapping"] == {"Name": "name", "E-mail": "email"}
    lead = leads_of(workspace).get()
    assert (lead.name, lead.email, lead.custom_fields["shoeSize"]) == ("Ann Lee", "ann@example.com", "42")


def test_a_given_mapping_is_applied_as_given_and_unmapped_columns_become_custom_fields(workspace):
    content = csv_bytes(["Name", "Email"], ["Ann Lee", "ann@example.com"])
    run_import(workspace, content, mapping={"Name": "name"})
    lead = leads_of(workspace).get()
    assert lead.email == ""
    assert lead.custom_fields["email"] == "ann@example.com"


def test_empty_cells_add_no_custom_fields(workspace):
    run_import(workspace, csv_bytes(["Name", "Notes"], ["Ann Lee", "  "]))
    assert leads_of(workspace).get().custom_fields == {}


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"Nope": "email"}, "no column 'Nope'"),
        ({"Email": "favourite_colour"}, "'Email' maps to 'favourite_colour'"),
        ({"Email": "email", "Name": "email"}, "both map to email"),
        ({"Email": 3}, "column name → lead field"),
        (["Email"], "column name → lead field"),
    ],
)
def test_a_mapping_naming_unknown_columns_or_fields_is_refused_before_anything_is_written(workspace, mapping, message):
    with pytest.raises(ValidationError) as caught:
        run_import(workspace, csv_bytes(["Name", "Email"], ["Ann Lee", "ann@example.com"]), mapping=mapping)
    assert message in caught.value.message_dict["mapping"][0]
    assert not leads_of(workspace).exists()


def test_two_unmapped_columns_that_would_be_the_same_custom_field_are_refused(workspace):
    with pytest.raises(ValidationError) as caught:
        run_import(workspace, csv_bytes(["Email", "Budget Range", "budget_range"], ["a@example.com", "1", "2"]))
    assert "both be the custom field budgetRange" in caught.value.message_dict["mapping"][0]


# Dry run and real run


def test_dry_run_reports_created_merged_and_rejected_rows_and_writes_nothing(workspace, jane):
    before = workspace_state(workspace)
    report = run_import(workspace, MIXED, dry_run=True)
    bad_email, nobody = report.pop("errors")
    assert report == {
        "total": 5,
        "created": 1,
        "merged": 2,  # Jane's department, and Ann's phone from her second row
        "duplicates": 0,
        "rejected": 2,
        "dryRun": True,
        "mapping": {"Full Name": "name", "Email": "email", "Phone": "phone", "Department": "department"},
    }
    assert bad_email["row"] == 5 and list(bad_email["fields"]) == ["Email"] and "@" in bad_email["fields"]["Email"]
    assert nobody == {"row": 6, "fields": {"Full Name": "No usable identity: send at least a name, an email or a phone."}}
    assert workspace_state(workspace) == before


def test_dry_run_counts_an_in_file_duplicate_in_a_later_batch_as_merged(workspace, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_ROWS", 2)
    content = csv_bytes(["Name", "Email"], ["Ann", "ann@example.com"], ["Bob", "bob@example.com"], ["Ann Lee", "ANN@example.com"])
    report = run_import(workspace, content, dry_run=True)
    assert (report["created"], report["merged"]) == (2, 1)
    assert not leads_of(workspace).exists()


def test_import_creates_and_merges_through_capture_with_source_import(workspace, jane, django_capture_on_commit_callbacks):
    actor = member(workspace).user
    with django_capture_on_commit_callbacks() as callbacks:
        report = leads_import_csv(workspace=workspace, actor=actor, file=io.BytesIO(MIXED), dry_run=False)
    assert {key: report[key] for key in ("total", "created", "merged", "duplicates", "rejected", "dryRun")} == {
        "total": 5,
        "created": 1,
        "merged": 2,
        "duplicates": 0,
        "rejected": 2,
        "dryRun": False,
    }
    assert [error["row"] for error in report["errors"]] == [5, 6]
    assert leads_of(workspace).count() == 2
    ann = leads_of(workspace).get(email="ann@example.com")
    assert (ann.name, ann.phone, ann.source_type) == ("Ann Lee", "+14155550134", "import")
    assert ann.custom_fields["favouriteColour"] == "green"
    created = LeadActivity.objects.get(lead=ann, type=ActivityType.CREATED)
    assert (created.data["source"], created.actor) == ("import", actor)
    assert LeadActivity.objects.get(lead=ann, type=ActivityType.MERGED).data["changes"]["phone"]["to"] == "+14155550134"
    jane.refresh_from_db()
    assert (jane.title, jane.department, jane.source_type) == ("CEO", "Sales", "manual")
    merged = LeadActivity.objects.get(lead=jane, type=ActivityType.MERGED)
    assert (merged.data["source"], merged.data["strategy"]) == ("import", "merge")
    assert callbacks, "processing of the imported leads is queued after commit"


@pytest.mark.parametrize(
    ("strategy", "title", "department", "counted", "activity"),
    [
        ("merge", "CEO", "Sales", "merged", ActivityType.MERGED),
        ("replace", "CTO", "Sales", "merged", ActivityType.MERGED),
        ("skip", "CEO", "", "duplicates", ActivityType.CAPTURED_AGAIN),
    ],
)
def test_each_dedup_strategy(workspace, jane, strategy, title, department, counted, activity):
    content = csv_bytes(["Email", "Job Title", "Department"], ["jane@example.com", "CTO", "Sales"])
    report = run_import(workspace, content, dedup_strategy=strategy)
    assert report[counted] == 1 and report["created"] == 0
    jane.refresh_from_db()
    assert (jane.title, jane.department) == (title, department)
    assert LeadActivity.objects.filter(lead=jane, type=activity).count() == 1


def test_a_row_matching_a_lead_without_changing_it_counts_as_a_duplicate(workspace, jane):
    report = run_import(workspace, csv_bytes(["Email", "Name"], ["jane@example.com", "Jane Doe"]))
    assert (report["duplicates"], report["merged"]) == (1, 0)


def test_an_unknown_dedup_strategy_is_refused(workspace):
    with pytest.raises(ValidationError) as caught:
        run_import(workspace, csv_bytes(["Email"], ["a@example.com"]), dedup_strategy="overwrite")
    assert "dedupStrategy" in caught.value.message_dict


def test_a_bad_row_is_rejected_with_its_reasons_and_the_good_rows_are_kept(workspace):
    content = csv_bytes(
        ["Name", "Email", "Job Title"],
        ["Ann", "ann@example.com", ""],
        ["Too Long", "long@example.com", "x" * 201],
        ["Extra", "extra@example.com", "", "surprise"],
        ["Bob", "bob@example.com", "", "", ""],
    )
    report = run_import(workspace, content)
    assert (report["created"], report["rejected"]) == (2, 2)
    assert report["errors"] == [
        {"row": 3, "fields": {"Job Title": "At most 200 characters."}},
        {"row": 4, "fields": {"row": "The row has 4 cells; the header names 3 columns."}},
    ]
    assert set(leads_of(workspace).values_list("email", flat=True)) == {"ann@example.com", "bob@example.com"}


def test_the_error_list_is_capped_but_every_rejection_is_counted(workspace, monkeypatch):
    monkeypatch.setattr(imports, "MAX_REPORTED_ERRORS", 3)
    content = csv_bytes(["Email"], *[[f"bad{n}"] for n in range(5)])
    report = run_import(workspace, content, dry_run=True)
    assert report["rejected"] == 5
    assert [error["row"] for error in report["errors"]] == [2, 3, 4]


def test_reads_bom_semicolons_quoted_newlines_and_skips_blank_lines(workspace):
    content = '\ufeffName;Email;Notes\r\nAnn Lee;ann@example.com;"line one\nline two"\r\n\r\nBob;bob@example.com;\r\n'.encode()
    report = run_import(workspace, content)
    assert (report["total"], report["created"]) == (2, 2)
    ann = leads_of(workspace).get(email="ann@example.com")
    assert ann.custom_fields["notes"] == "line one\nline two"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_the_one_the_header_uses(workspace, delimiter):
    content = csv_bytes(["Name, as written", "Email", "City"], ["Lee, Ann", "ann@example.com", "Paris"], delimiter=delimiter)
    report = run_import(workspace, content, mapping={"Name, as written": "name"})
    assert report["created"] == 1, report
    lead = leads_of(workspace).get()
    assert (lead.name, lead.custom_fields["email"], lead.custom_fields["city"]) == ("Lee, Ann", "ann@example.com", "Paris")


def test_an_exported_file_imports_back_without_the_formula_escapes(workspace):
    make_lead(workspace, name="=Ann", email="ann@example.com", phone="+1 415 555 0134", title="-lead", tags=["vip", "hot"])
    content = b"".join(chunk.encode() for chunk in leads_export_rows(queryset=leads_base(workspace=workspace)))
    Lead.objects.filter(workspace=workspace).delete()
    mapping = {"name": "name", "email": "email", "phone": "phone", "title": "title", "tags": "tags"}
    mapping.update({column: "ignore" for column in EXPORT_COLUMNS if column not in mapping})
    report = run_import(workspace, content, mapping=mapping)
    assert report["created"] == 1, report
    lead = leads_of(workspace).get()
    assert (lead.name, lead.phone, lead.title) == ("=Ann", "+14155550134", "-lead")
    assert sorted(lead.tags.values_list("name", flat=True)) == ["hot", "vip"]


class StreamOnly(io.BytesIO):
    """A file that fails the test if anyone reads it whole instead of in chunks."""

    def read(self, size=-1):
        assert size is not None and 0 <= size <= 1 << 20, "the file was read whole"
        return super().read(size)

    def read1(self, size=-1):
        assert size is not None and 0 <= size <= 1 << 20, "the file was read whole"
        return super().read1(size)

    def getvalue(self):
        raise AssertionError("the file was read whole")


def test_the_file_is_read_in_chunks_never_whole(workspace):
    rows = [[f"Lead {n}", f"lead{n}@example.com"] for n in range(300)]
    report = leads_import_csv(workspace=workspace, actor=None, file=StreamOnly(csv_bytes(["Name", "Email"], *rows)), dry_run=True)
    assert report["created"] == 300


# Bad files


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty"),
        (b"\n\nName\n", "must be a header"),
        (b",,\nAnn,a@example.com,\n", "must be a header"),
        (b"Name,,Email\nAnn,,a@example.com\n", "Column 2 has no name"),
        (b"Email,Name,EMAIL\na@example.com,Ann,b@example.com\n", "names 'EMAIL' twice (columns 1 and 3)"),
        ("Name,Email\nJosé,jose@example.com\n".encode("latin-1"), "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not UTF-8"),
        (b"Name,Email\nAnn\x00,a@example.com\n", "NUL bytes"),
        (",".join(f"c{n}" for n in range(MAX_COLUMNS + 1)).encode(), f"at most {MAX_COLUMNS} can be imported"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(workspace, content, message):
    with pytest.raises(ValidationError) as caught:
        run_import(workspace, content)
    assert message in caught.value.message_dict["file"][0]
    assert not leads_of(workspace).exists()


def test_a_file_broken_after_good_rows_imports_none_of_them(workspace):
    content = csv_bytes(["Name", "Email"], ["Ann", "ann@example.com"]) + "José,jose@example.com\n".encode("latin-1")
    with pytest.raises(ValidationError) as caught:
        run_import(workspace, content)
    assert "line 3 is not" in caught.value.message_dict["file"][0]
    assert not leads_of(workspace).exists()


# API: import


def test_api_import_answers_the_report(api, workspace, jane):
    response = api_import(api, MIXED, mapping={"Full Name": "name", "Email": "email", "Phone": "phone"}, dedupStrategy="merge")
    assert response.status_code == 200, response.content
    body = response.json()
    assert {key: body[key] for key in ("total", "created", "merged", "duplicates", "rejected", "dryRun", "mapping")} == {
        "total": 5,
        "created": 1,
        "merged": 2,
        "duplicates": 0,
        "rejected": 2,
        "dryRun": False,
        "mapping": {"Full Name": "name", "Email": "email", "Phone": "phone"},
    }
    assert [error["row"] for error in body["errors"]] == [5, 6]
    assert leads_of(workspace).filter(source_type="import").count() == 1
    jane.refresh_from_db()
    assert (jane.department, jane.custom_fields["department"]) == ("", "Sales")  # unmapped: a custom field


def test_api_dry_run_writes_nothing(api, workspace, jane):
    before = workspace_state(workspace)
    response = api_import(api, MIXED, dryRun="true")
    assert response.status_code == 200, response.content
    assert (response.json()["created"], response.json()["merged"], response.json()["dryRun"]) == (1, 2, True)
    assert workspace_state(workspace) == before


@pytest.mark.parametrize(
    ("content", "fields", "field", "message"),
    [
        (None, {}, "file", "No file was submitted"),
        (b"", {}, "file", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", {}, "file", "not UTF-8"),
        (b"Email,Email\n", {}, "file", "twice"),
        (b"Email\na@example.com\n", {"mapping": "{not json"}, "mapping", "JSON object"),
        (b"Email\na@example.com\n", {"mapping": '["Email"]'}, "mapping", "JSON object"),
        (b"Email\na@example.com\n", {"mapping": {"Mail": "email"}}, "mapping", "no column 'Mail'"),
        (b"Email\na@example.com\n", {"mapping": {"Email": "e-mail"}}, "mapping", "choose one of"),
        (b"Email\na@example.com\n", {"dedupStrategy": "overwrite"}, "dedupStrategy", "not a valid choice"),
        (b"Email\na@example.com\n", {"dryRun": "perhaps"}, "dryRun", "valid boolean"),
        (b"Email\na@example.com\n", {"format": "xlsx"}, "format", "Unknown field"),
    ],
)
def test_api_import_refuses_bad_input_with_a_400_naming_the_field(api, workspace, content, fields, field, message):
    response = api_import(api, content, **fields)
    assert response.status_code == 400, response.content
    assert message in error_fields(response)[field]
    assert not leads_of(workspace).exists()


def test_api_import_wants_multipart(api):
    response = api.post(IMPORT_URL, {"file": "Email\na@example.com"}, format="json")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_a_2_mb_upload_is_imported_while_other_api_bodies_keep_the_1_mb_limit(api, workspace, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024  # the upload is spooled to a temporary file, as big ones are
    notes = "n" * 100_000
    content = csv_bytes(["Name", "Email", "Notes"], *[[f"Lead {n}", f"lead{n}@example.com", notes] for n in range(21)])
    assert len(content) > 2 * 1024 * 1024
    response = api_import(api, content)
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 21
    assert len(leads_of(workspace).get(email="lead0@example.com").custom_fields["notes"]) == 100_000

    big_json = api.post("/api/v1/leads", {"name": "Big", "customFields": {"notes": "n" * (2 * 1024 * 1024)}}, format="json")
    assert big_json.status_code == 413
    assert big_json.json()["error"]["code"] == "payload_too_large"


def test_an_upload_over_the_import_limit_is_a_413_before_anything_is_read(api, workspace, settings):
    settings.IMPORT_MAX_BYTES = 1024
    response = api_import(api, csv_bytes(["Name", "Email"], *[[f"Lead {n}", f"lead{n}@example.com"] for n in range(100)]))
    assert response.status_code == 413
    assert response.json()["error"] == {"code": "payload_too_large", "message": "The request body is larger than 1024 bytes.", "fields": {}}
    assert not leads_of(workspace).exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.SALES_REP])
def test_roles_without_leads_manage_cannot_import(api_as, workspace, role):
    response = api_import(api_as(role), csv_bytes(["Email"], ["a@example.com"]))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not leads_of(workspace).exists()


def test_import_and_export_need_a_token(client, db):
    assert client.post(IMPORT_URL, {"file": SimpleUploadedFile("a.csv", b"Email\na@example.com\n")}).status_code == 401
    assert client.get(EXPORT_URL).status_code == 401


def test_another_workspaces_token_imports_only_into_its_own_workspace(api_as, workspace, other_workspace, jane):
    before = workspace_state(workspace)
    outsider = api_as(Role.MARKETER, of_workspace=other_workspace)
    response = api_import(outsider, csv_bytes(["Name", "Email", "Job Title"], ["Jane Doe", "jane@example.com", "Spy"]))
    assert response.status_code == 200
    assert response.json()["created"] == 1  # a new lead over there, never a merge into this workspace's Jane
    assert workspace_state(workspace) == before
    assert leads_of(other_workspace).get().title == "Spy"


# API: export


def test_export_streams_every_column_with_a_filename(api, workspace):
    owner = member(workspace, role=Role.SALES_REP).user
    lead = make_lead(
        workspace,
        name="Jane Doe",
        email="jane@acme.com",
        phone="+1 415 555 0134",
        company={"name": "Acme"},
        title="CTO",
        department="IT",
        tags=["vip", "hot"],
        owner=owner,
        custom_fields={"Budget Range": "10k"},
    )
    response = api.get(EXPORT_URL)
    assert re.fullmatch(rf'attachment; filename="leads-{workspace.slug}-\d{{8}}-\d{{4}}\.csv"', response["Content-Disposition"])
    [row] = exported(response)
    assert row == {
        "id": str(lead.pk),
        "name": "Jane Doe",
        "first name": "Jane",
        "last name": "Doe",
        "email": "jane@acme.com",
        "phone": "'+14155550134",
        "company": "Acme",
        "title": "CTO",
        "department": "IT",
        "stage": "New",
        "pipeline": lead.pipeline.name,
        "source": "manual",
        "owner email": owner.email,
        "score": "0",
        "tags": "hot,vip",
        "status": "new",
        "lifecycle stage": "lead",
        "created at": lead.created_at.isoformat(),
        "custom fields": '{"Budget Range": "10k"}',
    }


def test_export_escapes_cells_a_spreadsheet_would_run_as_formulas(api, workspace):
    make_lead(
        workspace,
        name='=HYPERLINK("http://evil.example","x")',
        email="jane@example.com",
        title="+cmd|' /C calc'!A0",
        department="-2+3",
        company={"name": "@SUM(A1:A9)"},
        tags=["=tag"],
        custom_fields={"note": "plain"},
    )
    make_lead(workspace, name="Tabbed", email="tab@example.com")
    Lead.objects.filter(email="jane@example.com").update(score=-5)
    Lead.objects.filter(email="tab@example.com").update(name="\tTabbed", title="\rReturn")
    rows = {row["email"]: row for row in exported(api.get(EXPORT_URL))}
    jane = rows["jane@example.com"]
    assert jane["name"] == '\'=HYPERLINK("http://evil.example","x")'
    assert jane["title"] == "'+cmd|' /C calc'!A0"
    assert jane["department"] == "'-2+3"
    assert jane["company"] == "'@SUM(A1:A9)"
    assert jane["tags"] == "'=tag"
    assert jane["score"] == "-5"  # a number we computed, not text anyone typed
    assert rows["tab@example.com"]["name"] == "'\tTabbed"
    assert rows["tab@example.com"]["title"] == "'\rReturn"


@pytest.mark.parametrize(
    ("value", "escaped"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("a=b", "a=b"), ("", "")],
)
def test_escape_formula(value, escaped):
    assert escape_formula(value) == escaped


def test_export_honours_the_list_filters(api, workspace):
    rep = member(workspace, role=Role.SALES_REP).user
    partners = make_pipeline(workspace)
    ann = make_lead(workspace, name="Ann Acme", email="ann@acme.com", tags=["vip"], owner=rep)
    bob = make_lead(workspace, name="Bob", email="bob@other.com", source_type="webhook")
    cid = make_lead(workspace, name="Cid", email="cid@example.com", pipeline=partners)
    contacted = Stage.objects.get(workspace=workspace, pipeline__is_default=True, name="Contacted")
    Lead.objects.filter(pk=bob.pk).update(stage=contacted)

    def emails(**params):
        return sorted(row["email"] for row in exported(api.get(EXPORT_URL, params)))

    assert emails() == ["ann@acme.com", "bob@other.com", "cid@example.com"]
    assert emails(search="acme") == ["ann@acme.com"]
    assert emails(source="webhook") == ["bob@other.com"]
    assert emails(tag="VIP") == ["ann@acme.com"]
    assert emails(assignedTo=str(rep.pk)) == ["ann@acme.com"]
    assert emails(assignedTo="unassigned") == ["bob@other.com", "cid@example.com"]
    assert emails(stageId=str(contacted.pk)) == ["bob@other.com"]
    assert emails(pipelineId=str(partners.pk)) == ["cid@example.com"]
    assert [row["email"] for row in exported(api.get(EXPORT_URL, {"sortBy": "name", "sortOrder": "asc"}))] == [
        ann.email,
        bob.email,
        cid.email,
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"source": "fax"}, "source"), ({"assignedTo": "boss"}, "assignedTo"), ({"stageId": "nope"}, "stageId"), ({"sortBy": "x"}, "sortBy")],
)
def test_export_refuses_bad_filter_values_like_the_list(api, workspace, params, field):
    response = api.get(EXPORT_URL, params, HTTP_ACCEPT="text/csv")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert field in error_fields(response)


def test_export_answers_csv_to_a_client_asking_for_csv(api, workspace):
    make_lead(workspace)
    assert len(exported(api.get(EXPORT_URL, HTTP_ACCEPT="text/csv"))) == 1


def test_a_viewer_may_export(api_as, workspace):
    make_lead(workspace)
    assert len(exported(api_as(Role.VIEWER).get(EXPORT_URL))) == 1


def test_an_export_never_holds_another_workspaces_leads(api_as, workspace, other_workspace):
    make_lead(workspace, name="Ours", email="ours@example.com", tags=["shared"])
    make_lead(other_workspace, name="Theirs", email="theirs@example.com", tags=["shared"])
    ours = api_as(Role.VIEWER)
    assert [row["email"] for row in exported(ours.get(EXPORT_URL))] == ["ours@example.com"]
    assert [row["email"] for row in exported(ours.get(EXPORT_URL, {"tag": "shared"}))] == ["ours@example.com"]
    theirs = api_as(Role.VIEWER, of_workspace=other_workspace)
    assert [row["email"] for row in exported(theirs.get(EXPORT_URL))] == ["theirs@example.com"]
    their_pipeline = Pipeline.objects.get(workspace=other_workspace, is_default=True)
    assert exported(ours.get(EXPORT_URL, {"pipelineId": str(their_pipeline.pk)})) == []


def bulk_leads(workspace, count: int) -> None:
    """Leads straight into the tables: fixture data for the query-count test, not a code path."""
    pipeline = Pipeline.objects.get(workspace=workspace, is_default=True)
    stages = list(pipeline.stages.order_by("position"))
    owners = [member(workspace, role=Role.SALES_REP).user for _ in range(3)]
    companies = Company.objects.bulk_create([Company(workspace=workspace, name=f"Company {n}") for n in range(20)])
    tags = Tag.objects.bulk_create([Tag(workspace=workspace, name=f"tag-{n}") for n in range(4)])
    leads = Lead.objects.bulk_create(
        [
            Lead(
                workspace=workspace,
                name=f"Lead {n}",
                email=f"lead{n}@example.com",
                pipeline=pipeline,
                stage=stages[n % len(stages)],
                company=companies[n % len(companies)],
                owner=owners[n % len(owners)] if n % 2 else None,
                custom_fields={"n": n},
            )
            for n in range(count)
        ]
    )
    LeadTag.objects.bulk_create([LeadTag(lead=lead, tag=tags[n % len(tags)]) for n, lead in enumerate(leads)])


def test_exporting_3000_leads_makes_a_bounded_number_of_queries(api, workspace, django_assert_max_num_queries):
    bulk_leads(workspace, 3000)
    # The token (read, last use stamped), the leads with their relations, then the tags of each 2,000-lead chunk.
    with django_assert_max_num_queries(6):
        rows = exported(api.get(EXPORT_URL))
    assert len(rows) == 3000
    assert all(row["tags"].startswith("tag-") and row["company"].startswith("Company ") for row in rows)
    assert sum(1 for row in rows if row["owner email"]) == 1500

    with django_assert_max_num_queries(3):
        lines = list(leads_export_rows(queryset=leads_base(workspace=workspace)))
    assert len(lines) == 3001


# Web UI


@pytest.fixture
def imports_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path / "imports"


@pytest.fixture
def web_as(workspace):
    def make(role: str = Role.MARKETER, of_workspace=None) -> Client:
        membership = member(of_workspace or workspace, role=role)
        client = Client()
        client.force_login(membership.user)
        client.user = membership.user
        return client

    return make


@pytest.fixture
def marketer(web_as):
    return web_as(Role.MARKETER)


def selected_targets(page: str) -> dict[str, str]:
    """Column label → the option selected in its mapping select."""
    rows = re.findall(r'<label for="column-\d+">(.*?)</label>.*?<select[^>]*>(.*?)</select>', page, re.S)
    return {html.unescape(label): (re.search(r'<option value="([^"]*)" selected>', options) or [None, None])[1] for label, options in rows}


def report_counts(page: str) -> dict[str, int]:
    return {name: int(value) for name, value in re.findall(r'<dd data-count="(\w+)">(\d+)</dd>', page)}


def test_web_import_upload_map_dry_run_then_import(marketer, workspace, jane, imports_dir):
    page = marketer.get(WEB_IMPORT)
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.content.decode()

    upload = marketer.post(WEB_IMPORT, {"file": SimpleUploadedFile("people.csv", MIXED, content_type="text/csv")})
    assert upload.status_code == 200
    content = upload.content.decode()
    assert "people.csv · 5 rows" in content
    assert selected_targets(content) == {
        "Full Name": "name",
        "Email": "email",
        "Phone": "phone",
        "Department": "department",
        "Favourite Colour": "",
    }
    [stored] = imports_dir.iterdir()
    assert stored.read_bytes() == MIXED

    mapping = {"column-0": "name", "column-1": "email", "column-2": "phone", "column-3": "department", "column-4": "ignore"}
    before = workspace_state(workspace)
    dry = marketer.post(WEB_IMPORT_RUN, {**mapping, "dedup_strategy": "merge", "action": "dry_run"})
    assert dry.status_code == 200
    page = dry.content.decode()
    assert report_counts(page) == {"total": 5, "created": 1, "merged": 2, "duplicates": 0, "rejected": 2}
    assert "Dry run: nothing was changed" in page
    assert "Full Name: No usable identity" in page
    assert selected_targets(page)["Favourite Colour"] == "ignore"  # the form is kept as chosen
    assert workspace_state(workspace) == before

    done = marketer.post(WEB_IMPORT_RUN, {**mapping, "dedup_strategy": "replace", "action": "import"}, HTTP_HX_REQUEST="true")
    assert done.status_code == 200
    page = done.content.decode()
    assert "<html" not in page  # htmx gets the step only
    assert report_counts(page)["created"] == 1
    assert 'href="/leads/"' in page
    ann = leads_of(workspace).get(email="ann@example.com")
    assert (ann.source_type, ann.custom_fields) == ("import", {})
    jane.refresh_from_db()
    assert jane.department == "Sales"
    assert list(imports_dir.iterdir()) == []  # the file is deleted once imported

    again = marketer.post(WEB_IMPORT_RUN, {**mapping, "action": "import"})
    assert again.status_code == 400
    assert "upload it again" in again.content.decode()


def test_web_import_shows_a_bad_file_or_mapping_and_escapes_what_the_file_says(marketer, workspace, imports_dir):
    bad = marketer.post(WEB_IMPORT, {"file": SimpleUploadedFile("x.csv", "Name\nJosé\n".encode("latin-1"))})
    assert bad.status_code == 400
    assert "not UTF-8" in bad.content.decode()
    assert list(imports_dir.iterdir()) == []
    assert marketer.post(WEB_IMPORT, {}).status_code == 400

    content = csv_bytes([XSS, "Email"], [XSS, "not-an-email"])
    page = marketer.post(WEB_IMPORT, {"file": SimpleUploadedFile("x.csv", content)}).content.decode()
    assert XSS not in page and html.escape(XSS) in page.replace("&#x27;", "'")
    both_email = marketer.post(WEB_IMPORT_RUN, {"column-0": "email", "column-1": "email", "action": "dry_run"})
    assert both_email.status_code == 400
    assert "both map to email" in both_email.content.decode()
    htmx = marketer.post(WEB_IMPORT_RUN, {"column-0": "email", "column-1": "email", "action": "dry_run"}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 200  # htmx swaps in only a 2xx answer
    assert "both map to email" in htmx.content.decode()
    report = marketer.post(WEB_IMPORT_RUN, {"column-0": "name", "column-1": "email", "action": "dry_run"}).content.decode()
    assert report_counts(report)["rejected"] == 1
    assert XSS not in report


def test_web_import_refuses_an_upload_over_the_limit(marketer, settings, imports_dir):
    settings.IMPORT_MAX_BYTES = 100
    response = marketer.post(WEB_IMPORT, {"file": SimpleUploadedFile("x.csv", b"Email\n" + b"a@example.com\n" * 20)})
    assert response.status_code == 413
    assert not imports_dir.exists() or list(imports_dir.iterdir()) == []


@pytest.mark.parametrize("role", [Role.VIEWER, Role.SALES_REP])
def test_web_import_needs_leads_manage(web_as, workspace, imports_dir, role):
    client = web_as(role)
    assert client.get(WEB_IMPORT).status_code == 403
    assert client.post(WEB_IMPORT, {"file": SimpleUploadedFile("x.csv", b"Email\na@example.com\n")}).status_code == 403
    assert client.post(WEB_IMPORT_RUN, {"action": "import"}).status_code == 403
    assert not leads_of(workspace).exists()


def test_an_upload_belongs_to_the_workspace_it_was_made_in(workspace, other_workspace, imports_dir):
    user = UserFactory()
    member(workspace, role=Role.MARKETER, user=user)
    member(other_workspace, role=Role.MARKETER, user=user)
    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_WORKSPACE_KEY] = str(workspace.pk)
    session.save()
    assert client.post(WEB_IMPORT, {"file": SimpleUploadedFile("x.csv", b"Email\na@example.com\n")}).status_code == 200
    session = client.session
    session[SESSION_WORKSPACE_KEY] = str(other_workspace.pk)
    session.save()
    response = client.post(WEB_IMPORT_RUN, {"column-0": "email", "action": "import"})
    assert response.status_code == 400
    assert not Lead.objects.exists()


def test_board_header_links_to_import_and_to_export_with_its_filters(marketer, web_as, workspace):
    partners = make_pipeline(workspace)
    page = marketer.get("/leads/", {"pipeline": str(partners.pk), "search": "a&b", "tag": "vip"}).content.decode()
    assert '<a href="/leads/import" id="import-link">Import</a>' in page
    export = html.unescape(re.search(r'<a href="([^"]+)" id="export-link"', page)[1])
    assert export == f"/leads/export?pipeline={partners.pk}&search=a%26b&source=&owner=&tag=vip"
    assert 'id="import-link"' not in web_as(Role.VIEWER).get("/leads/").content.decode()


def test_web_export_streams_the_boards_pipeline_with_its_filters(web_as, workspace, other_workspace):
    rep = member(workspace, role=Role.SALES_REP).user
    partners = make_pipeline(workspace)
    make_lead(workspace, name="Ann Acme", email="ann@acme.com", tags=["vip"], owner=rep)
    make_lead(workspace, name="Bob Acme", email="bob@acme.com", source_type="webhook")
    make_lead(workspace, name="Cid Acme", email="cid@acme.com", pipeline=partners)
    make_lead(other_workspace, name="Dee Acme", email="dee@acme.com", tags=["vip"])
    viewer = web_as(Role.VIEWER)

    def emails(**params):
        return sorted(row["email"] for row in exported(viewer.get(WEB_EXPORT, params)))

    assert emails() == ["ann@acme.com", "bob@acme.com"]
    assert emails(pipeline=str(partners.pk)) == ["cid@acme.com"]
    assert emails(search="ann") == ["ann@acme.com"]
    assert emails(source="webhook") == ["bob@acme.com"]
    assert emails(owner=str(rep.pk)) == ["ann@acme.com"]
    assert emails(tag="vip") == ["ann@acme.com"]
    other_pipeline = Pipeline.objects.get(workspace=other_workspace, is_default=True)
    assert emails(pipeline=str(other_pipeline.pk)) == ["ann@acme.com", "bob@acme.com"]  # falls back to this workspace's default


def test_web_export_starts_with_a_bom_for_spreadsheets_and_needs_a_member(web_as, workspace, client):
    make_lead(workspace)
    response = web_as(Role.VIEWER).get(WEB_EXPORT)
    assert response["Content-Disposition"].startswith('attachment; filename="leads-')
    assert b"".join(response.streaming_content).startswith("\ufeffid,name,".encode())
    assert client.get(WEB_EXPORT).status_code == 302  # to the login page


def test_the_api_schema_documents_import_and_export(client, db):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    assert "multipart/form-data" in schema["paths"]["/api/v1/leads/import"]["post"]["requestBody"]["content"]
    assert "text/csv" in schema["paths"]["/api/v1/leads/export"]["get"]["responses"]["200"]["content"]


def test_csv_inspect_counts_rows_and_reads_the_first():
    info = csv_inspect(file=io.BytesIO(csv_bytes(["Name", "Email"], ["Ann", "ann@example.com"], [], ["Bob", ""])))
    assert (info.columns, info.rows, info.sample) == (["Name", "Email"], 2, ["Ann", "ann@example.com"])
