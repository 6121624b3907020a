"""Large CSV imports run in a worker: the API answers 202 with a job, the page follows its progress."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from leads.import_jobs import imports_dir
from leads.models import ImportJob, Lead
from leads.tasks import run_import_job, sweep_import_jobs
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
