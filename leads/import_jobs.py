"""Background CSV imports: large files are imported by a worker, not inside a web request.

The uploaded file is kept under VAR_DIR/imports (the web process and the worker share the
machine's disk, as the on-disk broker does); a real import deletes it when done.

A file of at least IMPORT_PARTS * IMPORT_PART_MIN_ROWS rows is split into IMPORT_PARTS parts that
workers import at the same time: one import uses one core, and one process alone waits for
PostgreSQL about half of the time. Rows naming the same person stay in one part, in file order,
so each person's rows give what one import of the whole file would give.
"""

import json
import secrets
import shutil
from contextlib import ExitStack, closing
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.utils import timezone

from leads.imports import (
    csv_columns_and_mapping,
    csv_rows,
    import_reports_merge,
    import_rows_partition,
    leads_import_csv,
    leads_import_rows,
)
from leads.models import ImportJob, ImportJobPart, ImportJobStatus
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

    return _send(run_import_job, job_id)


def enqueue_import_part(part_id) -> bool:
    from leads.tasks import run_import_part

    return _send(run_import_part, part_id)


def _send(task, object_id) -> bool:
    try:
        task.apply_async(args=[str(object_id)], retry=False)
    except Exception:  # noqa: BLE001 - a broker outage only delays the run: the sweeper re-sends it
        return False
    return True


def import_job_run(*, job_id) -> ImportJob | None:
    """Runs a queued job once: the conditional UPDATE claims it, so a duplicate message does nothing.
    A large real import is split into parts (import_job_split) and finishes with its last part."""
    if not _claimed(ImportJob, job_id):
        return None
    job = ImportJob.objects.select_related("workspace", "created_by").get(pk=job_id)
    path = imports_dir() / job.file_name
    try:
        if not job.dry_run and import_job_split(job=job):
            job.refresh_from_db()
            return job
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
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJobStatus.FAILED, error=_failure(error), finished_at=timezone.now())
    else:
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJobStatus.DONE, report=report, finished_at=timezone.now())
        if not job.dry_run:
            path.unlink(missing_ok=True)
    job.refresh_from_db()
    return job


def _claimed(model, pk) -> bool:
    """Claims a queued job or part for this run: the conditional UPDATE lets one message through."""
    queued = model.objects.filter(pk=pk, status=ImportJobStatus.QUEUED)
    return bool(queued.update(status=ImportJobStatus.RUNNING, started_at=timezone.now()))


def _failure(error: Exception) -> str:
    return " ".join(error.messages) if isinstance(error, ValidationError) else "The uploaded file is gone; upload it again."


def import_job_split(*, job: ImportJob) -> int:
    """Writes a large file's rows into IMPORT_PARTS part files and queues a task for each, after
    commit. Returns the number of parts, or 0 for a file small enough to import in one go. The file
    is read twice (which part each row goes to, then the rows), so memory stays small.
    Raises ValidationError for a file or mapping that cannot be imported, OSError for a lost file."""
    count = settings.IMPORT_PARTS
    if count < 2 or job.rows < count * settings.IMPORT_PART_MIN_ROWS:
        return 0
    path = imports_dir() / job.file_name
    with path.open("rb") as file:
        columns, mapping = csv_columns_and_mapping(file=file, mapping=job.mapping)
        with closing(csv_rows(file)) as rows:
            part_of_row = import_rows_partition(columns=columns, mapping=mapping, rows=rows, parts=count)
        names = [f"{path.stem}.part{index}.jsonl" for index in range(count)]
        sizes = [0] * count
        with ExitStack() as stack, closing(csv_rows(file)) as rows:
            outs = [stack.enter_context((imports_dir() / name).open("w", encoding="utf-8")) for name in names]
            header = json.dumps({"columns": columns, "mapping": mapping}) + "\n"
            for out in outs:
                out.write(header)
            for (number, cells), part in zip(rows, part_of_row, strict=True):
                outs[part].write(json.dumps([number, cells]) + "\n")
                sizes[part] += 1
    with transaction.atomic():
        parts = ImportJobPart.objects.bulk_create(
            ImportJobPart(job=job, index=index, file_name=name, rows=sizes[index]) for index, name in enumerate(names)
        )
        ids = [part.pk for part in parts]
        transaction.on_commit(lambda: [enqueue_import_part(part_id) for part_id in ids])
    return count


def import_part_run(*, part_id) -> ImportJobPart | None:
    """Imports one part once (the conditional UPDATE claims it). The last part to finish writes
    the job's report (or its failure) and removes the files."""
    if not _claimed(ImportJobPart, part_id):
        return None
    part = ImportJobPart.objects.select_related("job__workspace", "job__created_by").get(pk=part_id)
    job = part.job
    status, report, error = ImportJobStatus.DONE, None, ""
    try:
        with (imports_dir() / part.file_name).open(encoding="utf-8") as lines:
            head = json.loads(lines.readline())
            report = leads_import_rows(
                workspace=job.workspace,
                actor=job.created_by,
                columns=head["columns"],
                mapping=head["mapping"],
                rows=(tuple(json.loads(line)) for line in lines),
                dedup_strategy=job.dedup_strategy,
            )
    except OSError as failure:
        status, error = ImportJobStatus.FAILED, _failure(failure)
    except DatabaseError:
        # Recorded, so the job ends instead of running forever; the part's batches before it are kept.
        status, error = ImportJobStatus.FAILED, "The import stopped on a database error; rows before it were imported."
    with transaction.atomic():
        ImportJob.objects.select_for_update().filter(pk=job.pk).first()  # parts finish one at a time
        ImportJobPart.objects.filter(pk=part.pk).update(status=status, report=report, error=error, finished_at=timezone.now())
        parts = list(ImportJobPart.objects.filter(job=job).order_by("index"))
        if all(other.status in (ImportJobStatus.DONE, ImportJobStatus.FAILED) for other in parts):
            _import_job_finish(job, parts)
    part.refresh_from_db()
    return part


def _import_job_finish(job: ImportJob, parts: list[ImportJobPart]) -> None:
    failed = [part for part in parts if part.status == ImportJobStatus.FAILED]
    if failed:
        # The other parts' rows are imported; their counts say how many.
        done = import_reports_merge([part.report for part in parts if part.report]) if len(failed) < len(parts) else None
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJobStatus.FAILED, error=failed[0].error, report=done, finished_at=timezone.now()
        )
    else:
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJobStatus.DONE, report=import_reports_merge([part.report for part in parts]), finished_at=timezone.now()
        )
    names = [job.file_name, *(part.file_name for part in parts)]
    transaction.on_commit(lambda: [(imports_dir() / name).unlink(missing_ok=True) for name in names])
