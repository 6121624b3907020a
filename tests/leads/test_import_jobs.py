"""Large CSV imports run in a worker: the API answers 202 with a job, the page follows its progress."""

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from leads.import_jobs import imports_dir
from leads.models import ImportJob, ImportJobPart, Lead
from leads.tasks import run_import_job, run_import_part, sweep_import_jobs
from tests.workspaces.factories import member
from workspaces.models import Role

ROWS = 12


@pytest.fixture(autouse=True)
def small_inline_limit(settings, tmp_path):
    settings.IMPORT_INLINE_MAX_ROWS = 5  # so a dozen rows already go to the worker
    settings.VAR_DIR = tmp_path


def csv_bytes(rows: int = ROWS, bad_row: bool = True) -> bytes:
    lines = ["Name,Email,Company"] + [f"Person {n},person{n}@jobco.com,Jobco" for n in range(rows)]
    if bad_row:
        lines.append("Broken,not-an-email,Jobco")
    return ("\n".join(lines) + "\n").encode()


def test_api_import_of_a_large_file_is_a_job_whose_report_can_be_fetched(api, workspace, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("big.csv", csv_bytes(), content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/leads/import", {"file": upload, "dedupStrategy": "merge"}, format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["rows"] == ROWS + 1
    status = api.get(body["statusUrl"].split("testserver", 1)[1]).json()
    assert status["status"] == "done"
    assert (status["report"]["created"], status["report"]["rejected"]) == (ROWS, 1)
    assert status["report"]["errors"][0]["row"] == ROWS + 2
    assert Lead.objects.filter(workspace=workspace, source_type="import").count() == ROWS
    assert not any(imports_dir().glob("*.csv"))  # a finished real import leaves no file behind


def test_api_job_with_a_bad_mapping_is_refused_before_it_starts(api):
    upload = SimpleUploadedFile("big.csv", csv_bytes(), content_type="text/csv")
    response = api.post("/api/v1/leads/import", {"file": upload, "mapping": '{"Nope": "email"}'}, format="multipart")
    assert response.status_code == 400
    assert not ImportJob.objects.exists()


def test_another_workspaces_job_is_404(api, api_as, other_workspace, django_capture_on_commit_callbacks):
    theirs = api_as(Role.MARKETER, other_workspace)
    with django_capture_on_commit_callbacks(execute=True):
        job_id = theirs.post("/api/v1/leads/import", {"file": SimpleUploadedFile("b.csv", csv_bytes())}, format="multipart").json()["jobId"]
    assert api.get(f"/api/v1/leads/imports/{job_id}").status_code == 404


def test_a_job_runs_once_even_if_its_message_arrives_twice(api, workspace):
    job_id = api.post("/api/v1/leads/import", {"file": SimpleUploadedFile("b.csv", csv_bytes(bad_row=False))}, format="multipart").json()[
        "jobId"
    ]
    assert run_import_job(job_id) == "done"
    assert run_import_job(job_id) is None  # already claimed: nothing is imported twice
    assert Lead.objects.filter(workspace=workspace).count() == ROWS


def test_the_sweeper_resends_a_job_whose_message_was_lost(api, workspace):
    job_id = api.post("/api/v1/leads/import", {"file": SimpleUploadedFile("b.csv", csv_bytes(bad_row=False))}, format="multipart").json()[
        "jobId"
    ]
    assert ImportJob.objects.get(pk=job_id).status == "queued"  # no message was sent (the on-commit hook never ran)
    assert sweep_import_jobs(stalled_seconds=0) == 1
    assert ImportJob.objects.get(pk=job_id).status == "done"
    assert Lead.objects.filter(workspace=workspace).count() == ROWS


@pytest.fixture
def marketer(workspace):
    client = Client()
    client.force_login(member(workspace, Role.MARKETER).user)
    return client


def _upload_and_map(client) -> str:
    page = client.post("/leads/import", {"file": SimpleUploadedFile("big.csv", csv_bytes(), content_type="text/csv")}).content.decode()
    assert "Map the columns" in page
    return page


def test_web_import_of_a_large_file_shows_progress_then_the_report(marketer, workspace, django_capture_on_commit_callbacks):
    _upload_and_map(marketer)
    form = {"column-0": "name", "column-1": "email", "column-2": "company", "dedup_strategy": "merge", "action": "import"}
    response = marketer.post("/leads/import/run", form)
    page = response.content.decode()
    job = ImportJob.objects.get()
    assert f"/leads/import/jobs/{job.pk}" in page and 'hx-trigger="every 2s"' in page
    assert job.status == "queued"

    run_import_job(str(job.pk))  # the worker
    done = marketer.get(f"/leads/import/jobs/{job.pk}", HTTP_HX_REQUEST="true").content.decode()
    assert "Import finished" in done
    assert re.search(rf'data-count="created">{ROWS}<', done)
    assert "not-an-email" in done or "row" in done.lower()
    assert Lead.objects.filter(workspace=workspace).count() == ROWS


def test_web_dry_run_job_returns_to_the_mapping_with_its_report(marketer, workspace):
    _upload_and_map(marketer)
    form = {"column-0": "name", "column-1": "email", "column-2": "company", "dedup_strategy": "merge", "action": "dry_run"}
    marketer.post("/leads/import/run", form)
    job = ImportJob.objects.get()
    run_import_job(str(job.pk))
    page = marketer.get(f"/leads/import/jobs/{job.pk}", HTTP_HX_REQUEST="true").content.decode()
    assert "Dry run: nothing was changed" in page and "Map the columns" in page
    assert not Lead.objects.exists()
    assert len(list(imports_dir().glob("*.csv"))) == 1  # kept for the real import that follows


def test_a_sales_rep_cannot_follow_or_start_jobs(workspace, api, django_capture_on_commit_callbacks):
    job_id = api.post("/api/v1/leads/import", {"file": SimpleUploadedFile("b.csv", csv_bytes())}, format="multipart").json()["jobId"]
    rep = Client()
    rep.force_login(member(workspace, Role.SALES_REP).user)
    assert rep.get(f"/leads/import/jobs/{job_id}").status_code == 403


# --- A large file imported in parts, by two workers at once -------------------------------------


@pytest.fixture
def in_parts(settings):
    settings.IMPORT_PARTS = 2
    settings.IMPORT_PART_MIN_ROWS = 4  # the dozen rows above make two parts


def repeats_csv() -> bytes:
    """People who come back later in the file, spelled differently, and a bad row."""
    lines = ["Name,Email,Phone,Budget"]
    lines += [f"Person {n},person{n}@jobco.com,+1 415 555 {n:04d},{n}k" for n in range(10)]
    lines += [
        "Person Three Again,PERSON3@JOBCO.COM,,30k-again",  # the same email, another case
        "Person Five Again,,(415) 555-0005,50k-again",  # the same phone, written nationally
        "Broken,not-an-email,,1k",
    ]
    return ("\n".join(lines) + "\n").encode()


def _job(api, content: bytes, strategy: str = "replace") -> str:
    upload = SimpleUploadedFile("big.csv", content, content_type="text/csv")
    return api.post("/api/v1/leads/import", {"file": upload, "dedupStrategy": strategy}, format="multipart").json()["jobId"]


def test_a_large_job_in_parts_gives_what_one_import_of_the_file_gives(
    in_parts, api, workspace, other_workspace, django_capture_on_commit_callbacks
):
    from leads.imports import leads_import_csv

    with django_capture_on_commit_callbacks(execute=True):
        job_id = _job(api, repeats_csv())
    job = ImportJob.objects.get(pk=job_id)
    assert job.status == "done", job.error
    assert [part.status for part in ImportJobPart.objects.filter(job=job)] == ["done", "done"]
    assert all(part.rows for part in ImportJobPart.objects.filter(job=job))  # both parts had rows to import

    whole = leads_import_csv(workspace=other_workspace, actor=None, file=io.BytesIO(repeats_csv()), dedup_strategy="replace")
    assert {key: job.report[key] for key in whole if key != "mapping"} == {key: value for key, value in whole.items() if key != "mapping"}
    assert (job.report["created"], job.report["merged"], job.report["rejected"]) == (10, 2, 1)
    assert job.report["errors"][0]["row"] == 14

    def people(ws):
        return sorted(Lead.objects.filter(workspace=ws).values_list("email", "phone", "custom_fields__budget"))

    assert people(workspace) == people(other_workspace)
    # Each returning row was applied after its first row, as in file order.
    assert Lead.objects.get(workspace=workspace, email="person3@jobco.com").custom_fields["budget"] == "30k-again"
    assert Lead.objects.get(workspace=workspace, phone="+14155550005").custom_fields["budget"] == "50k-again"
    assert not any(imports_dir().iterdir())  # the file and its parts are removed


def test_a_job_in_parts_finishes_with_its_last_part_and_each_part_runs_once(in_parts, api, workspace):
    job_id = _job(api, csv_bytes())
    assert run_import_job(job_id) == "running"  # split; the parts' messages go out after commit (not here)
    first, second = ImportJobPart.objects.filter(job_id=job_id)
    assert run_import_part(str(first.pk)) == "done"
    assert run_import_part(str(first.pk)) is None  # a duplicate message imports nothing twice
    job = ImportJob.objects.get(pk=job_id)
    assert (job.status, job.report) == ("running", None)
    first.refresh_from_db()
    assert 0 < Lead.objects.filter(workspace=workspace).count() == first.report["created"] < ROWS  # the first part's people only

    assert run_import_part(str(second.pk)) == "done"
    job.refresh_from_db()
    assert job.status == "done"
    assert (job.report["total"], job.report["created"], job.report["rejected"]) == (ROWS + 1, ROWS, 1)
    assert Lead.objects.filter(workspace=workspace).count() == ROWS


def test_the_sweeper_resends_parts_whose_messages_were_lost(in_parts, api, workspace):
    job_id = _job(api, csv_bytes(bad_row=False))
    run_import_job(job_id)
    assert set(ImportJobPart.objects.filter(job_id=job_id).values_list("status", flat=True)) == {"queued"}
    assert sweep_import_jobs(stalled_seconds=0) == 2
    assert ImportJob.objects.get(pk=job_id).status == "done"
    assert Lead.objects.filter(workspace=workspace).count() == ROWS


def test_a_part_whose_file_is_gone_fails_the_job_and_the_report_counts_the_rest(in_parts, api, workspace):
    job_id = _job(api, csv_bytes(bad_row=False))
    run_import_job(job_id)
    first, second = ImportJobPart.objects.filter(job_id=job_id)
    (imports_dir() / second.file_name).unlink()
    run_import_part(str(first.pk))
    run_import_part(str(second.pk))
    job = ImportJob.objects.get(pk=job_id)
    assert job.status == "failed" and "upload it again" in job.error
    assert job.report["created"] == first.rows == Lead.objects.filter(workspace=workspace).count()


def test_a_small_job_or_a_dry_run_is_not_split(in_parts, settings, api):
    settings.IMPORT_PART_MIN_ROWS = 100
    job_id = _job(api, csv_bytes())
    assert run_import_job(job_id) == "done"
    assert not ImportJobPart.objects.exists()


def test_rows_naming_one_person_get_one_part_however_they_spell_it():
    from leads.imports import import_rows_partition

    columns = ["Name", "Email", "Phone"]
    mapping = {"Name": "name", "Email": "email", "Phone": "phone"}
    rows = [
        ["Ann", "ann@x.com", ""],
        ["Bob", "bob@x.com", "+1 415 555 0001"],
        ["Cy", "cy@x.com", ""],
        ["Ann again", "ANN@X.COM ", "(415) 555-0002"],  # Ann's email, another case
        ["Dee", "dee@x.com", "415.555.0002"],  # Ann's new phone, so Dee goes with Ann
        ["Bob again", "", "14155550001"],
        ["Eve", "eve@x.com", ""],
        ["Fay", "fay@x.com", ""],
    ]
    parts = import_rows_partition(columns=columns, mapping=mapping, rows=enumerate(rows, start=2), parts=2)
    assert parts[0] == parts[3] == parts[4] and parts[1] == parts[5]
    assert abs(parts.count(0) - parts.count(1)) <= 2  # as even as the people allow (Ann's three rows)


def test_each_part_mixes_the_kinds_of_rows_as_the_file_does():
    """A file whose every other row is a returning person: both parts get their share of them."""
    from leads.imports import import_rows_partition

    rows = [[f"P{n}", f"p{n}@x.com", ""] for n in range(100)]
    parts = import_rows_partition(columns=["Name", "Email", "Phone"], mapping={"Email": "email"}, rows=enumerate(rows, 2), parts=2)
    assert parts.count(0) == parts.count(1) == 50
    assert sum(1 for position, part in enumerate(parts) if position % 2 and part == 0) == 25
