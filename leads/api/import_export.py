"""CSV import and export for the partner API: thin adapters over leads.imports and leads.exports."""

import json

from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.mapping import MAPPING_TARGETS
from integrations.models import DedupStrategy
from leads.api.views import filtered_leads
from leads.capture import MERGE
from leads.exports import leads_export_filename, leads_export_rows
from leads.import_jobs import import_file_store, import_job_start, runs_in_background
from leads.imports import DEDUP_STRATEGIES, MAX_REPORTED_ERRORS, csv_inspect, import_mapping_validate, leads_import_csv
from leads.models import ImportJob
from leadsmgr.api.serializers import StrictInputSerializer
from workspaces.permissions import LEADS_MANAGE, LEADS_VIEW
from workspaces.scoping import scoped_get_or_404

MAPPING_MAX_CHARS = 100_000


class LeadImportSerializer(StrictInputSerializer):
    file = serializers.FileField(help_text="The CSV file: UTF-8, a header row naming each column, comma (or ; or tab) separated.")
    mapping = serializers.CharField(
        required=False,
        max_length=MAPPING_MAX_CHARS,
        help_text=(
            "A JSON object: column name → lead field, one of "
            f"{', '.join(MAPPING_TARGETS)}. Columns it leaves out become custom fields. "
            "Without it the mapping is guessed from the headers (the report shows the mapping used)."
        ),
    )
    dedupStrategy = serializers.ChoiceField(
        choices=DedupStrategy.choices,  # the webhooks' choices: one enum in the API schema
        default=MERGE,
        help_text="For a row matching a lead (by email, then phone): merge fills empty fields, replace overwrites, skip keeps the lead.",
    )
    dryRun = serializers.BooleanField(default=False, help_text="Report what would happen, writing nothing.")

    def validate_mapping(self, value):
        try:
            mapping = json.loads(value)
        except ValueError:
            raise serializers.ValidationError("Give a JSON object: column name → lead field.") from None
        if not isinstance(mapping, dict) or not all(isinstance(target, str) for target in mapping.values()):
            raise serializers.ValidationError("Give a JSON object: column name → lead field (a string).")
        return mapping


ImportReportSerializer = inline_serializer(
    "LeadImportReport",
    {
        "total": serializers.IntegerField(help_text="Data rows read (blank rows are skipped)."),
        "created": serializers.IntegerField(),
        "merged": serializers.IntegerField(help_text="Rows that changed an existing lead (or an earlier row of the file)."),
        "duplicates": serializers.IntegerField(help_text="Rows matching a lead without changing it."),
        "rejected": serializers.IntegerField(),
        "errors": serializers.ListField(
            child=inline_serializer(
                "LeadImportRowError",
                {
                    "row": serializers.IntegerField(help_text="The row's number in the file; the header is row 1."),
                    "fields": serializers.DictField(child=serializers.CharField(), help_text="Column (or field) → reason."),
                },
            ),
            help_text=f"The rejected rows and why, at most {MAX_REPORTED_ERRORS}.",
        ),
        "dryRun": serializers.BooleanField(),
        "mapping": serializers.DictField(child=serializers.CharField(), help_text="The mapping used."),
    },
)


class LeadImportApi(APIView):
    required_permissions = {"POST": LEADS_MANAGE}
    parser_classes = [MultiPartParser]

    @extend_schema(
        summary="Import leads from a CSV file",
        description=(
            "Each row is captured like any other submission (source `import`): normalized, deduplicated by email then phone, "
            "and recorded on the lead's timeline. A row that cannot be imported is rejected with its reasons; the other rows "
            "are kept. A file that cannot be read, or a mapping naming unknown columns or fields, is refused whole (400). "
            "Bodies up to IMPORT_MAX_BYTES (50 MB by default) are accepted here; larger ones get a 413. "
            "A file of more than 1,000 rows is imported by a worker: the answer is 202 with the job "
            "(`jobId`, `status`, `statusUrl`); GET the status URL until `status` is `done` for the report."
        ),
        request={"multipart/form-data": LeadImportSerializer},
        responses={200: ImportReportSerializer, 202: OpenApiTypes.OBJECT},
        examples=[
            OpenApiExample(
                "Report",
                response_only=True,
                value={
                    "total": 3,
                    "created": 1,
                    "merged": 1,
                    "duplicates": 0,
                    "rejected": 1,
                    "errors": [{"row": 4, "fields": {"Email": "The email address is not valid."}}],
                    "dryRun": True,
                    "mapping": {"Full Name": "name", "Email": "email"},
                },
            )
        ],
    )
    def post(self, request):
        serializer = LeadImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        info = csv_inspect(file=data["file"])
        if runs_in_background(info.rows):
            # Too long for one request: a worker imports it; GET the job for progress and the report.
            if data["dedupStrategy"] not in DEDUP_STRATEGIES:
                raise ValidationError({"dedupStrategy": "Unknown strategy."})
            mapping = import_mapping_validate(info.columns, data["mapping"]) if data.get("mapping") is not None else None
            job = import_job_start(
                workspace=request.workspace,
                actor=request.user,
                file_name=import_file_store(source=data["file"]),
                original_name=data["file"].name or "",
                rows=info.rows,
                mapping=mapping,
                dedup_strategy=data["dedupStrategy"],
                dry_run=data["dryRun"],
            )
            return Response(_job_body(request, job), status=status.HTTP_202_ACCEPTED)
        report = leads_import_csv(
            workspace=request.workspace,
            actor=request.user,
            file=data["file"],
            mapping=data.get("mapping"),
            dedup_strategy=data["dedupStrategy"],
            dry_run=data["dryRun"],
        )
        return Response(report)


def _job_body(request, job: ImportJob) -> dict:
    return {
        "jobId": str(job.pk),
        "status": job.status,
        "dryRun": job.dry_run,
        "rows": job.rows,
        "statusUrl": request.build_absolute_uri(f"/api/v1/leads/imports/{job.pk}"),
        "report": job.report,
        "error": job.error,
        "createdAt": job.created_at.isoformat().replace("+00:00", "Z"),
        "finishedAt": job.finished_at.isoformat().replace("+00:00", "Z") if job.finished_at else None,
    }


class LeadImportJobApi(APIView):
    required_permissions = {"GET": LEADS_MANAGE}

    @extend_schema(summary="A background import's status and, once done, its report", responses={200: OpenApiTypes.OBJECT})
    def get(self, request, job_id):
        return Response(_job_body(request, scoped_get_or_404(ImportJob, request.workspace, pk=job_id)))


class JsonForErrors(DefaultContentNegotiation):
    """The export answers CSV whatever Accept says (`Accept: text/csv` too), and its errors JSON:
    never a 406."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class LeadExportApi(APIView):
    required_permissions = {"GET": LEADS_VIEW}
    content_negotiation_class = JsonForErrors

    @extend_schema(
        summary="Export leads as CSV",
        description=(
            "The leads matching the same filters as `GET /api/v1/leads`, all of them, streamed as CSV. Text cells starting with "
            "= + - @ (or a tab or carriage return) get a leading `'` so spreadsheets do not run them as formulas."
        ),
        parameters=[
            OpenApiParameter("search", str, description="Matches name, email, phone or company."),
            OpenApiParameter("stageId", str),
            OpenApiParameter("pipelineId", str),
            OpenApiParameter("source", str, enum=["manual", "webhook", "import", "api", "form", "tracking"]),
            OpenApiParameter("assignedTo", str, description="A user id, `me` or `unassigned`."),
            OpenApiParameter("tag", str),
            OpenApiParameter("sortBy", str, enum=["createdAt", "updatedAt", "lastActivityAt", "name", "email", "score"]),
            OpenApiParameter("sortOrder", str, enum=["asc", "desc"]),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="A header row, then one row per lead."),
            400: OpenApiResponse(description="A filter value is invalid; `fields` names it."),
        },
    )
    def get(self, request):
        response = StreamingHttpResponse(leads_export_rows(queryset=filtered_leads(request)), content_type="text/csv; charset=utf-8")
        filename = leads_export_filename(workspace=request.workspace, at=timezone.now())
        response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
        return response
