"""CSV export of a lead queryset, streamed: leads are read in chunks, one query per chunk for the
lead and its company, stage, pipeline and owner, and one for the chunk's tags."""

import csv
import json
from collections.abc import Iterator
from datetime import datetime

from django.db.models import Prefetch, QuerySet

from leads.models import Lead, Tag
from leads.services import DISPLAY_NAMES_KEY
from workspaces.models import Workspace

EXPORT_CHUNK_SIZE = 2000
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
EXPORT_COLUMNS = (
    "id",
    "name",
    "first name",
    "last name",
    "email",
    "phone",
    "company",
    "title",
    "department",
    "stage",
    "pipeline",
    "source",
    "owner email",
    "score",
    "tags",
    "status",
    "lifecycle stage",
    "created at",
    "custom fields",
)


def escape_formula(value: str) -> str:
    """Text a spreadsheet would run as a formula gets a leading quote, which makes it plain text."""
    return f"'{value}" if value.startswith(FORMULA_PREFIXES) else value


class _Line:
    """csv.writer writes into this and gets back the line, so each row can be yielded as it is made."""

    def write(self, line: str) -> str:
        return line


def _custom_fields(lead: Lead) -> str:
    """The lead's custom fields as a JSON object keyed by the names people see."""
    display_names = lead.custom_fields.get(DISPLAY_NAMES_KEY) or {}
    shown: dict = {}
    for key, value in lead.custom_fields.items():
        if key == DISPLAY_NAMES_KEY:
            continue
        name = display_names.get(key) or key
        shown[key if name in shown else name] = value
    return json.dumps(shown, ensure_ascii=False) if shown else ""


def _row(lead: Lead) -> list:
    text = [
        str(lead.pk),
        lead.name,
        lead.first_name,
        lead.last_name,
        lead.email,
        lead.phone,
        lead.company.name if lead.company else "",
        lead.title,
        lead.department,
        lead.stage.name,
        lead.pipeline.name,
        lead.source_type,
        lead.owner.email if lead.owner else "",
    ]
    after_score = [
        ",".join(tag.name for tag in lead.tags.all()),
        lead.status,
        lead.lifecycle_stage,
        lead.created_at.isoformat(),
        _custom_fields(lead),
    ]
    return [*map(escape_formula, text), lead.score, *map(escape_formula, after_score)]


def leads_export_rows(*, queryset: QuerySet[Lead]) -> Iterator[str]:
    """The header line, then one CSV line per lead of `queryset`, in its order."""
    writer = csv.writer(_Line())
    yield writer.writerow(EXPORT_COLUMNS)
    leads = (
        queryset.select_related("company", "stage", "pipeline", "owner")
        .prefetch_related(None)
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
    )
    for lead in leads.iterator(chunk_size=EXPORT_CHUNK_SIZE):
        yield writer.writerow(_row(lead))


def leads_export_filename(*, workspace: Workspace, at: datetime) -> str:
    return f"leads-{workspace.slug}-{at:%Y%m%d-%H%M}.csv"
