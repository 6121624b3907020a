"""Background CSV imports: large files are imported by a worker, not inside a web request.

The uploaded file is kept under VAR_DIR/imports (the web process and the worker share the
machine's disk, as the on-disk broker does); a real import deletes it when done.

A file of at least IMPORT_PARTS * IMPORT_PART_MIN_ROWS rows is split into IMPORT_PARTS parts that
workers import at the same time: one import uses one core, and one process alone waits for
PostgreSQL about half of the time. Rows naming the same person stay in one part, in file order,
so each person's rows give what one import of the whole file would give.

A real import saves its report and its last row with each batch it commits. When a worker is lost
mid-run (killed, its machine restarted), the run stays "running" with no new batch: the sweeper
queues it again after IMPORT_STALL_SECONDS, and the next claim resumes after the last committed
row, adding to the saved report. Each claim has its own instant (started_at); a run whose claim
was taken over cannot save a batch any more (ImportRunTakenOver rolls it back), so no row is
imported or counted twice.
"""

import json
import secrets
import shutil
from contextlib import ExitStack, closing
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from leads.imports import (
    ImportProgress,
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


class ImportRunTakenOver(Exception):
    """The run's claim was taken over (the sweeper queued it again and another claim started): the
    batch being written is rolled back and this run stops."""


def import_job_run(*, job_id) -> ImportJob | None:
    """Runs a queued job once: the conditional UPDATE claims it, so a duplicate message does nothing.
    A large real import is split into parts (import_job_split) and finishes with its last part; a
    job picked up again after its worker was lost resumes after its last committed batch."""
    claimed_at = _claimed(ImportJob, job_id)
    if claimed_at is None:
        return None
    job = ImportJob.objects.select_related("workspace", "created_by").get(pk=job_id)
    path = imports_dir() / job.file_name
    mine = ImportJob.objects.filter(pk=job.pk, status=ImportJobStatus.RUNNING, started_at=claimed_at)
    try:
        if not job.dry_run and not job.resume_after_row and not job.parts.exists() and import_job_split(job=job):
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
                resume=None if job.dry_run else _resume(job),
                progress=None if job.dry_run else _progress_saver(ImportJob, job.pk, claimed_at),
            )
    except ImportRunTakenOver:
        return None
    except (ValidationError, OSError) as error:
        mine.update(status=ImportJobStatus.FAILED, error=_failure(error), finished_at=timezone.now())
    else:
        if mine.update(status=ImportJobStatus.DONE, report=report, finished_at=timezone.now()) and not job.dry_run:
            path.unlink(missing_ok=True)
    job.refresh_from_db()
    return job


def _claimed(model, pk) -> datetime | None:
    """Claims a queued job or part for this run: the conditional UPDATE lets one message through.
    Returns the claim's instant, which the run's writes are conditional on, or None."""
    now = timezone.now()
    queued = model.objects.filter(pk=pk, status=ImportJobStatus.QUEUED)
    return now if queued.update(status=ImportJobStatus.RUNNING, started_at=now, attempts=F("attempts") + 1) else None


def _resume(run) -> ImportProgress | None:
    """Where a real run picked up again stands: its saved report and last row, if it saved any."""
    return ImportProgress(report=run.report, last_row=run.resume_after_row) if run.resume_after_row and run.report else None


def _progress_saver(model, pk, claimed_at: datetime):
    """Saves the run's progress in each batch's transaction, while this claim still holds it;
    raises ImportRunTakenOver (rolling the batch back) once it does not."""

    def save(progress: ImportProgress) -> None:
        saved = model.objects.filter(pk=pk, status=ImportJobStatus.RUNNING, started_at=claimed_at).update(
            report=progress.report, resume_after_row=progress.last_row, progressed_at=timezone.now()
        )
        if not saved:
            raise ImportRunTakenOver()

    return save


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
    """Imports one part once (the conditional UPDATE claims it), resuming after its last committed
    batch if it was picked up again. The last part to finish writes the job's report (or its
    failure) and removes the files."""
    claimed_at = _claimed(ImportJobPart, part_id)
    if claimed_at is None:
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
                resume=_resume(part),
                progress=_progress_saver(ImportJobPart, part.pk, claimed_at),
            )
    except ImportRunTakenOver:
        return None
    except OSError as failure:
        status, error = ImportJobStatus.FAILED, _failure(failure)
    except DatabaseError:
        # Recorded, so the job ends instead of running forever; the part's batches before it are kept.
        status, error = ImportJobStatus.FAILED, "The import stopped on a database error; rows before it were imported."
    if status == ImportJobStatus.FAILED:
        report = ImportJobPart.objects.values_list("report", flat=True).get(pk=part.pk)  # what its committed batches counted
    _part_finish(part, claimed_at=claimed_at, status=status, report=report, error=error)
    part.refresh_from_db()
    return part


def _part_finish(part: ImportJobPart, *, claimed_at, status: str, report: dict | None, error: str) -> None:
    """Ends the part (while `claimed_at` still holds it); the last part of the job to end writes the
    job's report or failure."""
    with transaction.atomic():
        ImportJob.objects.select_for_update().filter(pk=part.job_id).first()  # parts finish one at a time
        mine = ImportJobPart.objects.filter(pk=part.pk, status=ImportJobStatus.RUNNING, started_at=claimed_at)
        if not mine.update(status=status, report=report, error=error, finished_at=timezone.now()):
            return
        parts = list(ImportJobPart.objects.filter(job_id=part.job_id).order_by("index"))
        if all(other.status in (ImportJobStatus.DONE, ImportJobStatus.FAILED) for other in parts):
            _import_job_finish(ImportJob.objects.get(pk=part.job_id), parts)


def import_runs_sweep(*, queued_for: timedelta, stalled_for: timedelta) -> int:
    """The sweeper's work (leads.tasks.sweep_import_jobs): re-sends jobs and parts queued for longer
    than `queued_for` (a message lost with the broker), and queues again runs whose last batch
    committed longer than `stalled_for` ago (a lost worker), or fails them after
    IMPORT_MAX_ATTEMPTS claims. A job that has parts lives in its parts. Returns how many were sent."""
    now = timezone.now()
    sent = 0
    queued = Q(status=ImportJobStatus.QUEUED, created_at__lte=now - queued_for)
    for job_id in ImportJob.objects.filter(queued).values_list("pk", flat=True)[:100]:
        sent += enqueue_import_job(job_id)
    for part_id in ImportJobPart.objects.filter(queued).values_list("pk", flat=True)[:100]:
        sent += enqueue_import_part(part_id)
    cutoff = now - stalled_for
    stalled = Q(status=ImportJobStatus.RUNNING) & (Q(progressed_at__lt=cutoff) | Q(progressed_at__isnull=True, started_at__lt=cutoff))
    for part in ImportJobPart.objects.filter(stalled)[:100]:
        if part.attempts >= settings.IMPORT_MAX_ATTEMPTS:
            _part_finish(part, claimed_at=part.started_at, status=ImportJobStatus.FAILED, report=part.report, error=_lost(part))
        elif _queued_again(ImportJobPart, part):
            sent += enqueue_import_part(part.pk)
    for job in ImportJob.objects.filter(stalled, parts__isnull=True)[:100]:
        if job.attempts >= settings.IMPORT_MAX_ATTEMPTS:
            ImportJob.objects.filter(pk=job.pk, status=ImportJobStatus.RUNNING, started_at=job.started_at).update(
                status=ImportJobStatus.FAILED, error=_lost(job), finished_at=now
            )
        elif _queued_again(ImportJob, job):
            sent += enqueue_import_job(job.pk)
    return sent


def _queued_again(model, run) -> bool:
    """Takes the claim back from a run that seems lost (unless it moved on since it was read)."""
    return bool(
        model.objects.filter(pk=run.pk, status=ImportJobStatus.RUNNING, started_at=run.started_at).update(status=ImportJobStatus.QUEUED)
    )


def _lost(run) -> str:
    done = f"; the rows up to row {run.resume_after_row} are imported" if run.resume_after_row else ""
    return f"The import stopped {run.attempts} times without finishing (its worker was lost){done}."


def _import_job_finish(job: ImportJob, parts: list[ImportJobPart]) -> None:
    failed = [part for part in parts if part.status == ImportJobStatus.FAILED]
    if failed:
        # The rows of the other parts, and of the failed parts' committed batches, are imported;
        # their counts say how many.
        reports = [part.report for part in parts if part.report]
        done = import_reports_merge(reports) if reports else None
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJobStatus.FAILED, error=failed[0].error, report=done, finished_at=timezone.now()
        )
    else:
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJobStatus.DONE, report=import_reports_merge([part.report for part in parts]), finished_at=timezone.now()
        )
    names = [job.file_name, *(part.file_name for part in parts)]
    transaction.on_commit(lambda: [(imports_dir() / name).unlink(missing_ok=True) for name in names])
