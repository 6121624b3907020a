"""CSV import: each row of a file becomes a submission to capture (leads.capture), the one path by
which a submission becomes a lead, with source "import"; rows are captured in batches
(leads_capture_many), each with the outcome lead_capture would give it.

The file is read row by row, never whole, so a 100k-row file needs no more memory than a small one.
Before any row is imported the file is read through once to check that it is UTF-8 CSV with a
usable header, so a file that cannot be read is refused whole instead of half-imported.
"""

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from itertools import islice

from django.core.exceptions import ValidationError
from django.db import DataError, transaction

from integrations.mapping import MAPPING_TARGETS, MappingError, map_payload
from leads.capture import CREATED, DUPLICATE, MERGE, MERGED, REPLACE, SKIP, CaptureResult, Submission, leads_capture_many
from leads.exports import FORMULA_PREFIXES
from leads.models import Company, Lead, SourceType
from leads.normalization import camel_case_key, normalize_phone
from leadsmgr.db import retrying_lock_conflicts
from pipelines.models import Stage
from workspaces.models import User, Workspace

DEDUP_STRATEGIES = (MERGE, REPLACE, SKIP)
IGNORE = "ignore"
MAX_COLUMNS = 200
MAX_REPORTED_ERRORS = 1000
# Rows per transaction (leads_capture_many). A row holds up to two advisory locks
# (leads.locks) until its transaction ends, and PostgreSQL's shared lock table holds about 15k with
# the default max_locks_per_transaction, so one transaction for a whole large file would run out;
# short batches also keep a webhook for the same person from waiting on a long import.
BATCH_ROWS = 500
# Tries of a batch that PostgreSQL aborts to break a deadlock (see _import_batch).
BATCH_ATTEMPTS = 3
# The counts of an import's report, in the order people read them.
REPORT_COUNTS = ("total", "created", "merged", "duplicates", "rejected")
DELIMITERS = (",", ";", "\t", "|")
# Targets one column at most may fill; several columns may add tags.
MULTI_COLUMN_TARGETS = {"tags", IGNORE}

# Header spellings recognised by guess_mapping, compared without case, spaces or punctuation.
GUESSES = {
    "name": ("name", "fullname", "contactname", "leadname", "yourname"),
    "first_name": ("firstname", "givenname", "forename", "first"),
    "last_name": ("lastname", "surname", "familyname", "last"),
    "email": ("email", "emailaddress", "mail", "workemail", "businessemail"),
    "phone": ("phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone", "mobilenumber", "cell", "cellphone", "workphone"),
    "company": ("company", "companyname", "organization", "organisation", "organizationname", "organisationname", "account", "accountname"),
    "company_domain": ("companydomain", "domain"),
    "company_size": ("companysize", "employees", "numberofemployees", "headcount"),
    "industry": ("industry", "sector"),
    "website": ("website", "companywebsite", "web", "url", "homepage"),
    "title": ("title", "jobtitle", "position", "role", "designation"),
    "department": ("department", "dept"),
    "country": ("country", "countrycode"),
    "tags": ("tags", "tag", "labels"),
    "utm_source": ("utmsource",),
    "utm_medium": ("utmmedium",),
    "utm_campaign": ("utmcampaign",),
    "utm_term": ("utmterm",),
    "utm_content": ("utmcontent",),
    "referrer": ("referrer", "referer", "referringurl"),
    "landing_url": ("landingurl", "landingpage", "pageurl", "formpage"),
    "campaign": ("campaign", "campaignname", "sourcecampaign"),
}
_GUESS_BY_KEY = {spelling: target for target, spellings in GUESSES.items() for spelling in spellings}
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
_QUOTED = re.compile(r'"[^"]*"')

_COMPANY_FIELDS = {"company": "name", "company_domain": "domain", "company_size": "size", "industry": "industry", "website": "website"}
# The longest value each target may hold. Email, phone and country are normalized by capture first.
TARGET_MAX_LENGTHS = {
    **{target: Company._meta.get_field(name).max_length for target, name in _COMPANY_FIELDS.items()},
    **{
        target: Lead._meta.get_field(name).max_length
        for target, name in MAPPING_TARGETS.items()
        if target not in _COMPANY_FIELDS and target not in ("tags", IGNORE, "email", "phone", "country")
    },
}
PHONE_MAX_LENGTH = Lead._meta.get_field("phone").max_length


def _header_key(header: str) -> str:
    return _NOT_ALNUM.sub("", header.lower())


def guess_mapping(headers: list[str]) -> dict[str, str]:
    """Column → target for the headers that name a lead field (the first such column per field).
    Columns left out become custom fields."""
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for header in headers:
        target = _GUESS_BY_KEY.get(_header_key(header))
        if target is None or (target in used and target not in MULTI_COLUMN_TARGETS):
            continue
        mapping[header] = target
        used.add(target)
    return mapping


@dataclass
class CsvInfo:
    columns: list[str]
    rows: int
    sample: list[str] = field(default_factory=list)


def _file_error(message: str) -> ValidationError:
    return ValidationError({"file": message})


def _delimiter(first_line: str) -> str:
    """Excel writes `;` or tabs where the decimal separator is a comma: pick what the header uses."""
    unquoted = _QUOTED.sub("", first_line)
    counts = {delimiter: unquoted.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _records(file) -> Iterator[list[str]]:
    """The file's records, decoded as UTF-8 (a BOM is dropped); raises ValidationError(file)."""
    file.seek(0)
    text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
    number = 0
    try:
        first_line = text.readline()
        text.seek(0)
        reader = csv.reader(text, delimiter=_delimiter(first_line))
        for record in reader:
            number += 1
            if any("\x00" in cell for cell in record):
                raise _file_error("The file contains NUL bytes: it is not a CSV text file.")
            yield record
    except UnicodeDecodeError:
        line = _undecodable_line(file)
        raise _file_error(f"The file is not UTF-8 text (line {line} is not). Save it as “CSV UTF-8” and upload it again.") from None
    except csv.Error as error:
        raise _file_error(f"Row {number + 1} is not valid CSV: {error}.") from None
    finally:
        text.detach()  # leaves the caller's file open


def _undecodable_line(file) -> int:
    """The first line that is not UTF-8. The text reader decodes whole blocks, so it cannot say."""
    file.seek(0)
    for number, line in enumerate(file, start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return 0


def _header(records: Iterator[list[str]]) -> list[str]:
    first = next(records, None)
    if first is None:
        raise _file_error("The file is empty: it needs a header row naming each column.")
    columns = [cell.strip() for cell in first]
    if not any(columns):
        raise _file_error("The first row must be a header naming each column.")
    if len(columns) > MAX_COLUMNS:
        raise _file_error(f"The file has {len(columns)} columns; at most {MAX_COLUMNS} can be imported.")
    seen: dict[str, int] = {}
    for index, column in enumerate(columns, start=1):
        if not column:
            raise _file_error(f"Column {index} has no name in the header row; name it or delete the column.")
        key = column.lower()
        if key in seen:
            raise _file_error(f"The header names {column!r} twice (columns {seen[key]} and {index}); give each column its own name.")
        seen[key] = index
    return columns


def csv_inspect(*, file) -> CsvInfo:
    """Reads the whole file once: its columns, how many data rows it has and the first row's values.
    Raises ValidationError(file) for a file that cannot be imported."""
    with closing(_records(file)) as records:
        columns = _header(records)
        info = CsvInfo(columns=columns, rows=0)
        for record in records:
            if any(cell.strip() for cell in record):
                info.rows += 1
                if not info.sample:
                    info.sample = [cell.strip() for cell in record[: len(columns)]]
    return info


def import_mapping_validate(columns: list[str], mapping) -> dict[str, str]:
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ValidationError({"mapping": "Give an object: column name → lead field (or “ignore”)."})
    unknown = [column for column in mapping if column not in columns]
    if unknown:
        raise ValidationError(
            {"mapping": f"The file has no column {unknown[0]!r}. Its columns: {', '.join(columns)}."},
        )
    by_target: dict[str, str] = {}
    for column, target in mapping.items():
        if target not in MAPPING_TARGETS:
            raise ValidationError({"mapping": f"{column!r} maps to {target!r}; choose one of: {', '.join(MAPPING_TARGETS)}."})
        if target in by_target and target not in MULTI_COLUMN_TARGETS:
            raise ValidationError({"mapping": f"{by_target[target]!r} and {column!r} both map to {target}; map only one of them."})
        by_target[target] = column
    custom_keys: dict[str, str] = {}
    for column in columns:
        if column in mapping:
            continue
        key = camel_case_key(column) or column
        if key in custom_keys:
            raise ValidationError(
                {"mapping": f"{custom_keys[key]!r} and {column!r} would both be the custom field {key}; map or ignore one of them."}
            )
        custom_keys[key] = column
    return dict(mapping)


def _unescaped(value: str) -> str:
    """Undoes the export's protection against formula injection, so an export imports as it was."""
    return value[1:] if value[:1] == "'" and value[1:2] and value[1] in FORMULA_PREFIXES else value


@dataclass
class _Plan:
    columns: list[str]
    mapping: dict[str, str]  # mapped columns only, "ignore" excluded
    custom: list[str]
    column_for_field: dict[str, str]  # lead model field → the column that fills it
    stage: Stage | None  # where new leads go: the first stage of the default pipeline

    @classmethod
    def build(cls, workspace: Workspace, columns: list[str], mapping: dict[str, str]) -> "_Plan":
        mapped = {column: target for column, target in mapping.items() if target != IGNORE}
        return cls(
            columns=columns,
            mapping=mapped,
            custom=[column for column in columns if column not in mapping],
            column_for_field={MAPPING_TARGETS[target]: column for column, target in mapped.items() if target not in _COMPANY_FIELDS},
            # Found once rather than once per lead. Without a default pipeline yet, capture creates it.
            stage=Stage.objects.select_related("pipeline")
            .filter(workspace=workspace, pipeline__is_default=True)
            .order_by("position")
            .first(),
        )


def _row_submission(plan: _Plan, cells: list[str], workspace: Workspace, dedup_strategy: str) -> Submission:
    """Raises ValidationError keyed by column name for a row that cannot be imported."""
    if len(cells) > len(plan.columns) and any(cell.strip() for cell in cells[len(plan.columns) :]):
        raise ValidationError({"row": f"The row has {len(cells)} cells; the header names {len(plan.columns)} columns."})
    values = {column: _unescaped(cell.strip()) for column, cell in zip(plan.columns, cells, strict=False)}
    too_long = {}
    for column, target in plan.mapping.items():
        value = values.get(column, "")
        if (
            target == "phone"
            and len(value) > PHONE_MAX_LENGTH
            and len(normalize_phone(value, workspace.default_region)[0]) > PHONE_MAX_LENGTH
        ):
            too_long[column] = f"At most {PHONE_MAX_LENGTH} characters."
        elif len(value) > TARGET_MAX_LENGTHS.get(target, len(value)):
            too_long[column] = f"At most {TARGET_MAX_LENGTHS[target]} characters."
    if too_long:
        raise ValidationError(too_long)
    try:
        mapped = map_payload({column: values.get(column, "") for column in plan.mapping}, plan.mapping)
    except MappingError as error:
        raise ValidationError({error.field: str(error)}) from None
    return Submission(
        core=mapped.core,
        custom_fields={column: values[column] for column in plan.custom if values.get(column)},
        tags=mapped.tags,
        source_type=SourceType.IMPORT,
        dedup_strategy=dedup_strategy,
        pipeline=plan.stage.pipeline if plan.stage else None,
        stage=plan.stage,
    )


def _reasons(plan: _Plan, error: ValidationError) -> dict[str, str]:
    """Capture names fields by their model names; people know them by their columns."""
    if not hasattr(error, "error_dict"):
        return {"row": " ".join(error.messages)}
    return {plan.column_for_field.get(key, key): " ".join(messages) for key, messages in error.message_dict.items()}


class _Identities:
    """Emails and phones of the leads a dry run created in batches already rolled back, so a later
    row naming the same person still counts as a merge. Hashes keep this small (about 100 bytes a row)."""

    def __init__(self):
        self.seen: set[int] = set()

    def add(self, lead: Lead) -> None:
        if lead.email:
            self.seen.add(hash(("email", lead.email)))
        if lead.phone:
            self.seen.add(hash(("phone", lead.phone)))

    def __contains__(self, lead: Lead) -> bool:
        return (bool(lead.email) and hash(("email", lead.email)) in self.seen) or (
            bool(lead.phone) and hash(("phone", lead.phone)) in self.seen
        )


@dataclass(frozen=True)
class ImportProgress:
    """Where a real import stands after a committed batch: the report so far and the number of the
    last row it counts."""

    report: dict
    last_row: int


def leads_import_csv(
    *,
    workspace: Workspace,
    actor: User | None,
    file,
    mapping: dict[str, str] | None = None,
    dedup_strategy: str = MERGE,
    dry_run: bool = False,
    resume: ImportProgress | None = None,
    progress: Callable[[ImportProgress], None] | None = None,
) -> dict:
    """Imports a CSV file (a seekable binary file object) and reports what happened to its rows.

    `mapping` maps columns to MAPPING_TARGETS keys (or "ignore"); columns it leaves out become custom
    fields. Without a mapping, guess_mapping's is used. Rows go through capture in batches
    (leads_capture_many, with lead_capture's outcome for each row): a bad row is rejected with its
    reasons and the other rows are kept.

    A dry run does the same work in transactions that are rolled back, so it writes nothing. Rows are
    checked in batches of BATCH_ROWS; a row repeating a person from an earlier batch of the file is
    counted as merged, as the real run would merge it.

    `progress` is called in each batch's transaction with where the import stands once the batch
    commits; `resume` (a real import's last progress) imports only the rows after it, adding to its
    report (a worker's run picked up again after the worker was lost, leads.import_jobs).

    Raises ValidationError (keys file, mapping, dedupStrategy) when the import cannot start.
    """
    if dedup_strategy not in DEDUP_STRATEGIES:
        raise ValidationError({"dedupStrategy": f"Choose one of: {', '.join(DEDUP_STRATEGIES)}."})
    columns, mapping = csv_columns_and_mapping(file=file, mapping=mapping)
    with closing(csv_rows(file)) as rows:
        return leads_import_rows(
            workspace=workspace,
            actor=actor,
            columns=columns,
            mapping=mapping,
            rows=rows,
            dedup_strategy=dedup_strategy,
            dry_run=dry_run,
            resume=resume,
            progress=progress,
        )


def csv_columns_and_mapping(*, file, mapping: dict[str, str] | None) -> tuple[list[str], dict[str, str]]:
    """The checked file's columns and the mapping to import it with (guess_mapping's without one).
    Raises ValidationError (keys file, mapping)."""
    columns = csv_inspect(file=file).columns
    return columns, import_mapping_validate(columns, guess_mapping(columns) if mapping is None else mapping)


def csv_rows(file) -> Iterator[tuple[int, list[str]]]:
    """A checked file's data rows that are not blank, each with its row number in the file (the
    header is row 1)."""
    records = _records(file)
    try:
        next(records)  # the header, checked by csv_inspect
        for number, cells in enumerate(records, start=2):
            if any(cell.strip() for cell in cells):
                yield number, cells
    finally:
        records.close()


def leads_import_rows(
    *,
    workspace: Workspace,
    actor: User | None,
    columns: list[str],
    mapping: dict[str, str],
    rows: Iterable[tuple[int, list[str]]],
    dedup_strategy: str,
    dry_run: bool = False,
    resume: ImportProgress | None = None,
    progress: Callable[[ImportProgress], None] | None = None,
) -> dict:
    """leads_import_csv for rows already read: (row number, cells) under `columns`, with a mapping
    import_mapping_validate accepted, in increasing row order. An import's part (leads.import_jobs)
    is such rows."""
    plan = _Plan.build(workspace, columns, mapping)
    if resume is not None and not dry_run:
        report = resume.report
        rows = ((number, cells) for number, cells in rows if number > resume.last_row)
    else:
        report = {**dict.fromkeys(REPORT_COUNTS, 0), "errors": [], "dryRun": dry_run, "mapping": mapping}
    earlier = _Identities()
    rows = iter(rows)
    while batch := list(islice(rows, BATCH_ROWS)):
        report = _import_batch(
            batch,
            plan,
            workspace=workspace,
            actor=actor,
            dedup_strategy=dedup_strategy,
            report=report,
            dry_run=dry_run,
            earlier=earlier,
            progress=progress,
        )
    return report


def import_rows_partition(*, columns: list[str], mapping: dict[str, str], rows: Iterable[tuple[int, list[str]]], parts: int) -> list[int]:
    """Splits rows into `parts` of about the same size, so that the parts can be imported at the
    same time and still give each person's rows in file order: rows that share an email or a phone
    (directly or through other rows) get the same part, and otherwise each part is a run of the
    file. Returns each row's part, in row order.

    The values are compared loosely (an email without case, a phone by its last nine digits), so
    two spellings of one value are never split; a few unrelated rows put together cost nothing.
    Keeps a few numbers a row, not the rows.
    """
    email_index = phone_index = None
    for column, target in mapping.items():
        if column in columns and target == "email":
            email_index = columns.index(column)
        elif column in columns and target == "phone":
            phone_index = columns.index(column)
    parent: list[int] = []  # union-find over row positions

    def root(position: int) -> int:
        while parent[position] != position:
            parent[position] = parent[parent[position]]
            position = parent[position]
        return position

    first_with: dict[tuple[str, str], int] = {}
    for position, (_, cells) in enumerate(rows):
        parent.append(position)
        for kind, index in (("email", email_index), ("phone", phone_index)):
            if index is None or index >= len(cells):
                continue
            value = cells[index].strip()
            key = value.lower() if kind == "email" else "".join(ch for ch in value if ch.isdigit())[-9:]
            if not key:
                continue
            known = first_with.setdefault((kind, key), position)
            if known != position:
                parent[root(position)] = root(known)
    groups: dict[int, int] = {}
    for position in range(len(parent)):
        group = root(position)
        groups[group] = groups.get(group, 0) + 1
    # Runs of the file, each about a part's share: the parts then mix the kinds of rows as the file
    # does. (Dealing the rows out in turn put every other row in one part; a file with a returning
    # person every 50th row sent them all to the second part, which took 3.7 s longer.)
    share = -(-len(parent) // parts)
    loads = [0] * parts
    part = 0
    part_of_group: dict[int, int] = {}
    for group, size in groups.items():  # in the order of each group's first row
        if loads[part] and loads[part] + size > share and part < parts - 1:
            part += 1
        part_of_group[group] = part
        loads[part] += size
    return [part_of_group[root(position)] for position in range(len(parent))]


def import_reports_merge(reports: list[dict]) -> dict:
    """One report for a file imported in parts: the counts added up, the errors in row order."""
    merged = {key: sum(report[key] for report in reports) for key in REPORT_COUNTS}
    errors = sorted((error for report in reports for error in report["errors"]), key=lambda error: error["row"])
    return {**merged, "errors": errors[:MAX_REPORTED_ERRORS], "dryRun": False, "mapping": reports[0]["mapping"]}


def _import_batch(
    batch: list[tuple[int, list[str]]],
    plan: _Plan,
    *,
    workspace,
    actor,
    dedup_strategy: str,
    report: dict,
    dry_run: bool,
    earlier,
    progress: Callable[[ImportProgress], None] | None,
) -> dict:
    """One transaction for the batch (leads_capture_many: new people in a few statements, a row
    repeating a person in its own savepoint); a dry run rolls the whole batch back. Returns the
    report with the batch counted; a real batch passes it to `progress` before it commits. A batch
    that PostgreSQL aborts to break a deadlock (another writer locked a lead this batch merges into,
    then waited for a company this batch creates) is run again whole, up to BATCH_ATTEMPTS times."""

    def run() -> tuple[dict, list[Lead]]:
        with transaction.atomic():
            outcomes = _import_batch_outcomes(batch, plan, workspace=workspace, actor=actor, dedup_strategy=dedup_strategy)
            counted = _counted(report, batch, outcomes, dry_run=dry_run, earlier=earlier)
            if dry_run:
                transaction.set_rollback(True)
            elif progress is not None:
                progress(ImportProgress(report=counted, last_row=batch[-1][0]))
        created = [
            outcome.lead for outcome in outcomes.values() if dry_run and isinstance(outcome, CaptureResult) and outcome.status == CREATED
        ]
        return counted, created

    counted, created = retrying_lock_conflicts(run, attempts=BATCH_ATTEMPTS)
    for lead in created:
        earlier.add(lead)
    return counted


def _counted(report: dict, batch: list[tuple[int, list[str]]], outcomes: dict, *, dry_run: bool, earlier) -> dict:
    """A copy of `report` that also counts the batch's rows."""
    counted = {**report, "errors": list(report["errors"])}
    for number, _ in batch:
        counted["total"] += 1
        outcome = outcomes[number]
        if isinstance(outcome, dict):
            _reject(counted, number, outcome)
            continue
        status = outcome.status
        if dry_run and status == CREATED and outcome.lead in earlier:
            status = MERGED
        counted[{CREATED: "created", MERGED: "merged", DUPLICATE: "duplicates"}[status]] += 1
    return counted


def _import_batch_outcomes(batch: list[tuple[int, list[str]]], plan: _Plan, *, workspace, actor, dedup_strategy: str) -> dict:
    """Captures the batch's rows (in the caller's transaction): each row's CaptureResult, or the
    reasons it was rejected, by row number."""
    outcomes: dict[int, dict | CaptureResult] = {}
    submissions: list[tuple[int, Submission]] = []
    for number, cells in batch:
        try:
            submissions.append((number, _row_submission(plan, cells, workspace, dedup_strategy)))
        except ValidationError as error:
            outcomes[number] = _reasons(plan, error)
    results = leads_capture_many(workspace=workspace, submissions=[submission for _, submission in submissions], actor=actor)
    for (number, _), result in zip(submissions, results, strict=True):
        if isinstance(result, ValidationError):
            outcomes[number] = _reasons(plan, result)
        elif isinstance(result, DataError):
            outcomes[number] = {"row": "A value does not fit its field (too long, or not a valid value)."}
        else:
            outcomes[number] = result
    return outcomes


def _reject(report: dict, row: int, reasons: dict[str, str]) -> None:
    report["rejected"] += 1
    if len(report["errors"]) < MAX_REPORTED_ERRORS:
        report["errors"].append({"row": row, "fields": reasons})
