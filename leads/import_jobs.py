"""Background CSV imports: large files are imported by a worker, not inside a web request.

The uploaded file is kept under VAR_DIR/imports (the web process and the worker share the
machine's disk, as the on-disk broker does); a real import deletes it when done.
"""

import secrets
import shutil
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from leads.imports import leads_import_csv
from leads.models import ImportJob, ImportJobStatus
from workspaces.models import User, Workspace


def runs_in_background(rows: int) -> bool:
    """Files with more data rows than IMPORT_INLINE_MAX_ROWS are imported by a worker."""
    return rows > settings.IMPORT_INLINE_MAX_ROWS


def imports_dir() -> Path:
    return Path(settings.VAR_DIR) / "imports"


def import_file_store(*, source) -> str:
    """Copies an uploaded (or temporary) binary file into the imports folder; returns its name."""
    directory = imports_dir()
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.csv"
    source.seek(0)
    with (directory / name).open("wb") as out:
        shutil.copyfileobj(source, out, length=1024 * 1024)
    return name


def import_job_start(
    *,
    workspace: Workspace,
    actor: User | None,
    file_name: str,
    original_name: str,
    rows: int,
    mapping: dict | None,
    dedup_strategy: str,
    dry_run: bool,
) -> ImportJob:
    job = ImportJob.objects.create(
        workspace=workspace,
        created_by=actor,
        file_name=file_name,
        original_name=original_name[:200],
        rows=rows,
        mapping=mapping,
        dedup_strategy=dedup_strategy,
        dry_run=dry_run,
    )
    transaction.on_commit(lambda: enqueue_import_job(job.pk))
    return job


def enqueue_import_job(job_id) -> bool:
    from leads.tasks import run_import_job

    try:
        run_import_job.apply_async(args=[str(job_id)], retry=False)
    except Exception:  # noqa: BLE001 - a broker outage only delays the job: the sweeper re-sends it
        return False
    return True


def import_job_run(*, job_id) -> ImportJob | None:
    """Runs a queued job once: the conditional UPDATE claims it, so a duplicate message does nothing."""
    now = timezone.now()
    if not ImportJob.objects.filter(pk=job_id, status=ImportJobStatus.QUEUED).update(status=ImportJobStatus.RUNNING, started_at=now):
        return None
    job = ImportJob.objects.select_related("workspace", "created_by").get(pk=job_id)
    path = imports_dir() / job.file_name
    try:
        with path.open("rb") as file:
            report = leads_import_csv(
                workspace=job.workspace,
                actor=job.created_by,
                file=file,
                mapping=job.mapping,
                dedup_strategy=job.dedup_strategy,
                dry_run=job.dry_run,
            )
    except (ValidationError, OSError) as error:
        message = " ".join(error.messages) if isinstance(error, ValidationError) else "The uploaded file is gone; upload it again."
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJobStatus.FAILED, error=message, finished_at=timezone.now())
    else:
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJobStatus.DONE, report=report, finished_at=timezone.now())
        if not job.dry_run:
            path.unlink(missing_ok=True)
    job.refresh_from_db()
    return job
