"""An import whose worker is lost mid-run (the process killed) is picked up again by the sweeper
and resumes after its last committed batch: every row is imported and counted once.

The worker here is a real process running the job, killed with SIGKILL once it has committed its
first batch; it needs PostgreSQL, which that process and this test share.
"""

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from leads.import_jobs import imports_dir
from leads.imports import BATCH_ROWS, REPORT_COUNTS, leads_import_csv
from leads.models import ImportJob, ImportJobPart, Lead
from leads.tasks import run_import_job, run_import_part, sweep_import_jobs
from tests.leads.factories import make_lead
from tests.workspaces.factories import WorkspaceFactory

ROOT = Path(__file__).resolve().parents[2]
ROWS = BATCH_ROWS * 8


def people_csv() -> bytes:
    lines = ["Name,Email,Budget"] + [f"Person {n},person{n}@resume.example,{n}k" for n in range(ROWS)]
    lines += [f"Person {n} Again,PERSON{n}@RESUME.EXAMPLE,{n}k-again" for n in range(0, ROWS, 400)]  # merges, late in the file
    lines += ["Known Again,known@resume.example,1k", "Broken,not-an-email,1k"]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the killed worker is another process: it needs a shared PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_is_killed_mid_import_resumes_after_its_last_batch(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.IMPORT_PARTS = 1  # one run, which the worker process runs from the start
    workspace, elsewhere = WorkspaceFactory(), WorkspaceFactory()
    for ws in (workspace, elsewhere):
        make_lead(ws, name="Known", email="known@resume.example")
    imports_dir().mkdir(parents=True)
    (imports_dir() / "people.csv").write_bytes(people_csv())
    # Queued as import_job_start queues it; its message goes to the worker process below.
    rows = people_csv().count(b"\n") - 1
    job = ImportJob.objects.create(workspace=workspace, file_name="people.csv", rows=rows, dedup_strategy="merge")

    worker = _worker_running_the_job(job, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not ImportJob.objects.filter(pk=job.pk, resume_after_row__gt=0).exists():
            assert worker.poll() is None, worker.stderr.read().decode()
            assert time.monotonic() < deadline, "the worker committed no batch"
            time.sleep(0.005)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    job.refresh_from_db()
    assert job.status == "running" and 0 < job.resume_after_row < ROWS  # lost halfway: nothing says so yet
    imported_before = Lead.objects.filter(workspace=workspace).count()

    assert sweep_import_jobs(stalled_seconds=0) == 1  # queued again; the eager task resumes it here
    job.refresh_from_db()
    assert job.status == "done" and job.attempts == 2, job.error
    assert Lead.objects.filter(workspace=workspace).count() > imported_before

    whole = leads_import_csv(workspace=elsewhere, actor=None, file=io.BytesIO(people_csv()), dedup_strategy="merge")
    assert {key: job.report[key] for key in (*REPORT_COUNTS, "errors")} == {key: whole[key] for key in (*REPORT_COUNTS, "errors")}
    # Returning people: "merge" keeps the budget they had (duplicates), the known lead gains one (merged).
    assert [job.report[key] for key in REPORT_COUNTS] == [ROWS + ROWS // 400 + 2, ROWS, 1, ROWS // 400, 1]

    def people(ws):
        return sorted(Lead.objects.filter(workspace=ws).values_list("email", "custom_fields__budget"))

    assert people(workspace) == people(elsewhere)  # no one twice, every returning row applied once
    assert not (imports_dir() / "people.csv").exists()


def test_a_part_lost_too_many_times_fails_the_job_with_what_its_batches_imported(settings, tmp_path, workspace):
    settings.VAR_DIR = tmp_path
    settings.IMPORT_INLINE_MAX_ROWS = 5
    settings.IMPORT_PARTS, settings.IMPORT_PART_MIN_ROWS = 2, 4
    settings.IMPORT_MAX_ATTEMPTS = 2
    imports_dir().mkdir(parents=True)
    (imports_dir() / "small.csv").write_bytes(b"Name,Email\n" + b"".join(b"P %d,p%d@lost.example\n" % (n, n) for n in range(10)))
    job = ImportJob.objects.create(workspace=workspace, file_name="small.csv", rows=10, dedup_strategy="merge")
    assert run_import_job(str(job.pk)) == "running"  # split into two parts (their messages go after commit)
    first, second = ImportJobPart.objects.filter(job=job).order_by("index")
    assert run_import_part(str(first.pk)) == "done"
    # The second part's worker was lost twice before it committed a batch (as the sweeper found it).
    ImportJobPart.objects.filter(pk=second.pk).update(status="running", started_at=job.created_at, attempts=2)

    assert sweep_import_jobs(stalled_seconds=0) == 0
    job.refresh_from_db()
    assert job.status == "failed" and "stopped 2 times" in job.error
    assert job.report["created"] == first.rows == Lead.objects.filter(workspace=workspace).count()


def _worker_running_the_job(job: ImportJob, var_dir: Path) -> subprocess.Popen:
    """A worker process (the test settings, the test database) running the job as its task would."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "leadsmgr.test_settings",
        "DATABASE_URL": f"postgres://{db['USER']}{':' + db['PASSWORD'] if db['PASSWORD'] else ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "LEADSMGR_VAR_DIR": str(var_dir),
        "IMPORT_PARTS": "1",
    }
    code = f"import django; django.setup(); from leads.import_jobs import import_job_run; import_job_run(job_id={str(job.pk)!r})"
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
