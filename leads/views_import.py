"""CSV import and export in the web UI: thin views over leads.imports and leads.exports (the same
services as the API).

An uploaded file is kept under VAR_DIR/imports under a random name while the person maps its
columns and tries dry runs; the session remembers which file and for which workspace. The browser
never sends a path.
"""

import re
import secrets
import time
import uuid
from itertools import chain
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from integrations.models import DedupStrategy
from leads.capture import MERGE
from leads.exports import leads_export_filename, leads_export_rows
from leads.import_jobs import import_job_start, imports_dir, runs_in_background
from leads.imports import IGNORE, csv_inspect, guess_mapping, leads_import_csv
from leads.models import ImportJob, ImportJobStatus
from leads.selectors import lead_board_queryset
from pipelines.models import Pipeline
from pipelines.services import pipeline_ensure_default
from workspaces.decorators import workspace_permission_required
from workspaces.permissions import LEADS_MANAGE, LEADS_VIEW
from workspaces.scoping import scoped, scoped_get_or_404

SESSION_KEY = "leads_import"
STORED_NAME = re.compile(r"^[0-9a-f]{32}\.csv$")
# Uploads nobody finished mapping are deleted when someone uploads again after this long.
ABANDONED_AFTER_SECONDS = 24 * 3600
# Spreadsheet apps read a CSV as UTF-8 only when it starts with a byte order mark.
EXCEL_BOM = "\ufeff"

CUSTOM = ""  # the select's value for "keep as a custom field": the column is left out of the mapping
TARGET_CHOICES = (
    (CUSTOM, "Custom field"),
    (IGNORE, "Ignore (do not import)"),
    ("name", "Name"),
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("email", "Email"),
    ("phone", "Phone"),
    ("company", "Company"),
    ("company_domain", "Company domain"),
    ("company_size", "Company size"),
    ("industry", "Industry"),
    ("website", "Website"),
    ("title", "Job title"),
    ("department", "Department"),
    ("country", "Country"),
    ("tags", "Tags (comma-separated)"),
    ("utm_source", "UTM source"),
    ("utm_medium", "UTM medium"),
    ("utm_campaign", "UTM campaign"),
    ("utm_term", "UTM term"),
    ("utm_content", "UTM content"),
    ("referrer", "Referrer"),
    ("landing_url", "Landing page URL"),
    ("campaign", "Campaign"),
)


def _stored_path(request) -> Path | None:
    """The file this person uploaded in this workspace, if it is still there."""
    stored = request.session.get(SESSION_KEY) or {}
    if stored.get("workspace") != str(request.workspace.pk) or not STORED_NAME.match(stored.get("file", "")):
        return None
    path = imports_dir() / stored["file"]
    return path if path.is_file() else None


def _forget_upload(request) -> None:
    path = _stored_path(request)
    if path is not None:
        path.unlink(missing_ok=True)
    request.session.pop(SESSION_KEY, None)


def _delete_abandoned(directory: Path) -> None:
    cutoff = time.time() - ABANDONED_AFTER_SECONDS
    for path in directory.glob("*.csv"):
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)


def _page(request, context: dict, status: int = 200):
    context = {
        "target_choices": TARGET_CHOICES,
        "dedup_choices": DedupStrategy.choices,
        "max_mb": settings.IMPORT_MAX_BYTES // (1024 * 1024),
        **context,
    }
    if request.htmx:
        # htmx swaps in only a 2xx answer; the error is shown in the step it replaces.
        return render(request, "leads/import_step.html", context)
    return render(request, "leads/import.html", context, status=status)


def _mapping_rows(columns: list[str], chosen: dict[str, str], sample: list[str]) -> list[dict]:
    return [
        {"index": index, "column": column, "target": chosen.get(column, CUSTOM), "sample": sample[index] if index < len(sample) else ""}
        for index, column in enumerate(columns)
    ]


@require_http_methods(["GET", "POST"])
@workspace_permission_required(LEADS_MANAGE)
def lead_import(request):
    """Step 1: upload a CSV. A good file is kept and its columns shown for mapping."""
    if request.method != "POST":
        return _page(request, {"step": "upload"})
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.IMPORT_MAX_BYTES:
        return _page(request, {"step": "upload", "error": f"The file is larger than {settings.IMPORT_MAX_BYTES // (1024 * 1024)} MB."}, 413)
    upload = request.FILES.get("file")
    if upload is None or not upload.size:
        return _page(request, {"step": "upload", "error": "Choose a CSV file to upload."}, 400)

    _forget_upload(request)
    directory = imports_dir()
    directory.mkdir(parents=True, exist_ok=True)
    _delete_abandoned(directory)
    name = f"{secrets.token_hex(16)}.csv"
    path = directory / name
    with path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    try:
        with path.open("rb") as file:
            info = csv_inspect(file=file)
    except ValidationError as error:
        path.unlink(missing_ok=True)
        return _page(request, {"step": "upload", "error": " ".join(error.messages)}, 400)
    request.session[SESSION_KEY] = {"workspace": str(request.workspace.pk), "file": name, "filename": upload.name[:200]}
    return _page(
        request,
        {
            "step": "mapping",
            "filename": upload.name,
            "rows": info.rows,
            "mapping_rows": _mapping_rows(info.columns, guess_mapping(info.columns), info.sample),
            "dedup_strategy": MERGE,
        },
    )


@require_POST
@workspace_permission_required(LEADS_MANAGE)
def lead_import_run(request):
    """Step 2: a dry run (reports, keeps the form) or the import (reports, links back to the board)."""
    path = _stored_path(request)
    if path is None:
        return _page(request, {"step": "upload", "error": "The uploaded file is gone; upload it again."}, 400)
    try:
        with path.open("rb") as file:
            info = csv_inspect(file=file)
    except ValidationError as error:
        _forget_upload(request)
        return _page(request, {"step": "upload", "error": " ".join(error.messages)}, 400)
    chosen = {column: request.POST.get(f"column-{index}", CUSTOM) for index, column in enumerate(info.columns)}
    mapping = {column: target for column, target in chosen.items() if target != CUSTOM}
    dedup_strategy = request.POST.get("dedup_strategy", MERGE)
    dry_run = request.POST.get("action") != "import"
    context = {
        "step": "mapping",
        "filename": request.session[SESSION_KEY].get("filename", ""),
        "rows": info.rows,
        "mapping_rows": _mapping_rows(info.columns, chosen, info.sample),
        "dedup_strategy": dedup_strategy,
    }
    if runs_in_background(info.rows):
        # Too long for one web request: a worker imports it and this page follows its progress.
        job = import_job_start(
            workspace=request.workspace,
            actor=request.user,
            file_name=path.name,
            original_name=context["filename"],
            rows=info.rows,
            mapping=mapping,
            dedup_strategy=dedup_strategy,
            dry_run=dry_run,
        )
        if not dry_run:
            request.session.pop(SESSION_KEY, None)  # the job owns the file now and deletes it when done
        return _page(request, {**context, "step": "job", "job": job})
    try:
        with path.open("rb") as file:
            report = leads_import_csv(
                workspace=request.workspace, actor=request.user, file=file, mapping=mapping, dedup_strategy=dedup_strategy, dry_run=dry_run
            )
    except ValidationError as error:
        return _page(request, {**context, "error": " ".join(error.messages)}, 400)
    if not dry_run:
        _forget_upload(request)
        context["step"] = "done"
    return _page(request, {**context, "report": report})


@require_http_methods(["GET"])
@workspace_permission_required(LEADS_MANAGE)
def lead_import_job(request, job_id):
    """Where a background import stands; the page polls this until the job is done."""
    job = scoped_get_or_404(ImportJob, request.workspace, pk=job_id)
    context = {"step": "job", "job": job, "filename": job.original_name, "rows": job.rows}
    if job.status == ImportJobStatus.DONE:
        context["report"] = job.report
        path = _stored_path(request)
        if job.dry_run and path is not None and path.name == job.file_name:
            with path.open("rb") as file:
                info = csv_inspect(file=file)
            chosen = {column: (job.mapping or {}).get(column, CUSTOM) for column in info.columns}
            context.update(step="mapping", mapping_rows=_mapping_rows(info.columns, chosen, info.sample), dedup_strategy=job.dedup_strategy)
        else:
            context["step"] = "done"
    elif job.status == ImportJobStatus.FAILED:
        context.update(step="upload", error=job.error)
    return _page(request, context)


def _board_pipeline(request) -> Pipeline:
    """The pipeline the board shows for these parameters: the one named, else the default."""
    try:
        wanted = uuid.UUID(request.GET.get("pipeline", ""))
    except ValueError:
        wanted = None
    pipeline = scoped(Pipeline, request.workspace).filter(pk=wanted).first() if wanted else None
    return pipeline or pipeline_ensure_default(workspace=request.workspace)[0]


@require_GET
@workspace_permission_required(LEADS_VIEW)
def leads_export(request):
    """The board's leads as CSV: its pipeline, with its search, source, owner and tag filters."""
    queryset = lead_board_queryset(workspace=request.workspace, pipeline=_board_pipeline(request), params=request.GET, user=request.user)
    response = StreamingHttpResponse(chain([EXCEL_BOM], leads_export_rows(queryset=queryset)), content_type="text/csv; charset=utf-8")
    filename = leads_export_filename(workspace=request.workspace, at=timezone.now())
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    return response
