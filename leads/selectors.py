"""Reads of leads, prefetched so serializers and templates never query per lead."""

import django_filters
from django.db import connection
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, F, OuterRef, Prefetch, Q, QuerySet, Sum, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from leads.models import ConsentRecord, Lead, LeadActivity, LeadTag, Note, SourceType, StageLeadCount, StageLeadCountDelta, Tag
from workspaces.models import User, Workspace
from workspaces.scoping import scoped, scoped_get_or_404

SORT_FIELDS = {
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "lastActivityAt": "last_activity_at",
    "name": "name",
    "email": "email",
    "score": "score",
}
DETAIL_ACTIVITY_LIMIT = 100
MAX_ID = 2**63 - 1  # user ids are 64-bit; larger numbers name nobody and overflow SQLite
DETAIL_NOTE_LIMIT = 100


def parse_id(value: str) -> int | None:
    """A positive 64-bit id written in ASCII digits, or None."""
    value = (value or "").strip()
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_ID:
        return None
    return int(value)


def leads_base(*, workspace: Workspace) -> QuerySet[Lead]:
    return (
        scoped(Lead, workspace)
        .alive()
        .select_related("company", "stage", "owner")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
    )


class LeadFilter(django_filters.FilterSet):
    """The list's query parameters, in the API's camelCase names."""

    search = django_filters.CharFilter(method="filter_search", max_length=200)
    stageId = django_filters.UUIDFilter(field_name="stage_id")
    pipelineId = django_filters.UUIDFilter(field_name="pipeline_id")
    source = django_filters.CharFilter(method="filter_source")
    assignedTo = django_filters.CharFilter(method="filter_assigned_to")
    tag = django_filters.CharFilter(method="filter_tag", max_length=60)

    class Meta:
        model = Lead
        fields: list[str] = []

    def __init__(self, data, *, queryset, workspace: Workspace, user: User | None):
        super().__init__(data, queryset=queryset)
        self.workspace = workspace  # for the search's company names
        self.user = user  # for assignedTo=me
        self.search_has_source_and_tag = False

    def _normalized(self, name: str) -> str:
        return (self.form.cleaned_data.get(name) or "").strip().lower()

    def filter_queryset(self, queryset):
        # Passed to the search too, the source and tag narrow its own index scan (lead_search_matches).
        # When its matches have both for certain, filtering the leads by them again only repeats the
        # work (3.5 ms of 19 for the benchmark's request at 1M leads).
        self.search_has_source_and_tag = bool(self._normalized("search")) and search_applies_source_and_tag(
            source=self._normalized("source"), tag=self._normalized("tag")
        )
        return super().filter_queryset(queryset)

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        matches = lead_search_matches(workspace=self.workspace, value=value, source=self._normalized("source"), tag=self._normalized("tag"))
        return queryset.filter(matches)

    def filter_source(self, queryset, name, value):
        if self.search_has_source_and_tag:
            return queryset
        return queryset.filter(source_type=self._normalized(name))

    def filter_assigned_to(self, queryset, name, value):
        if value == "unassigned":
            return queryset.filter(owner__isnull=True)
        if value == "me":
            return queryset.filter(owner=self.user)
        user_id = parse_id(value)
        if user_id is None:
            return queryset  # the API refuses such a value first; the board just ignores it
        return queryset.filter(owner_id=user_id)

    def filter_tag(self, queryset, name, value):
        if self.search_has_source_and_tag:
            return queryset
        return queryset.filter(lead_tags__tag__name=self._normalized(name))


def search_applies_source_and_tag(*, source: str, tag: str) -> bool:
    """Whether every lead lead_search_matches finds with this source and tag has both."""
    return connection.vendor == "postgresql" and bool(source and tag)


def lead_search_matches(*, workspace: Workspace, value: str, source: str = "", tag: str = "") -> Q:
    """Leads whose name, email, phone or company name contains `value`, case-insensitively.

    On PostgreSQL each part is answered by a trigram index: the leads' text in lead_search (kept by
    triggers, see LeadSearchEntry) and the companies' names (company_search_trgm). The text part is
    the matching ids as one array (`id = ANY(ARRAY(...))`), which the planner turns into index scans
    on `leads` and combines with the other filters; a join or an OR over the rows (`name ILIKE … OR
    company.name ILIKE …`) reads every lead instead: 0.5 s a search at 1M leads, against a few ms
    for a term that names a few people.

    `source` and `tag`, when the list is also filtered by them, narrow the search's parts too (the
    caller still filters `leads` by them, unless search_applies_source_and_tag). lead_search holds
    both in its GIN index, so a common term yields only the leads that have them, where fetching
    every lead the term names to test them took 0.6 s at 1M leads.

    The company part stays a condition on `leads.company_id`, except with both a source and a tag:
    then it is the company's leads having both, in the same array as the text part, and PostgreSQL
    reads just the leads in it: at 1M leads the benchmark's search took 20 ms this way, and 26-29
    ms with the condition, for which the planner also intersected the source's 167k leads. Narrowed
    less, a company's leads can be many, and reading them as an array costs more than the condition:
    for a term in 111k leads' company names, 374 ms against 75 with no filter, 111 against 36 with a
    source.
    """
    if connection.vendor != "postgresql":
        return Q(name__icontains=value) | Q(email__icontains=value) | Q(phone__icontains=value) | Q(company__name__icontains=value)
    pattern = f"%{connection.ops.prep_for_like_query(value)}%"
    text = (
        "SELECT s.lead_id FROM lead_search s WHERE s.workspace_id = %s "
        "AND (UPPER(s.name) LIKE UPPER(%s) OR UPPER(s.email) LIKE UPPER(%s) OR UPPER(s.phone) LIKE UPPER(%s))"
    )
    text_params: list = [workspace.pk, pattern, pattern, pattern]
    # No such tag gives NULL, which no lead's tags contain.
    tag_id, tag_params = "(SELECT t.id FROM leads_tag t WHERE t.workspace_id = %s AND t.name = %s)", [workspace.pk, tag]
    if source:
        text += " AND s.source_type = %s"
        text_params.append(source)
    if tag:
        text += f" AND s.tag_ids @> ARRAY[{tag_id}]"
        text_params += tag_params
    companies = "SELECT c.id FROM leads_company c WHERE c.workspace_id = %s AND UPPER(c.name::text) LIKE UPPER(%s)"
    companies_params = [workspace.pk, pattern]
    if not search_applies_source_and_tag(source=source, tag=tag):
        sql = f'"leads"."id" = ANY(ARRAY({text})) OR "leads"."company_id" = ANY(ARRAY({companies}))'
        return Q(ExpressionWrapper(RawSQL(sql, [*text_params, *companies_params]), output_field=BooleanField()))
    company_leads = (
        f"SELECT l.id FROM leads l WHERE l.workspace_id = %s AND l.company_id = ANY(ARRAY({companies})) AND l.source_type = %s "
        f"AND EXISTS (SELECT 1 FROM leads_leadtag lt WHERE lt.lead_id = l.id AND lt.tag_id = {tag_id})"
    )
    company_leads_params = [workspace.pk, *companies_params, source, *tag_params]
    sql = f'"leads"."id" = ANY(ARRAY({text} UNION {company_leads}))'
    return Q(ExpressionWrapper(RawSQL(sql, [*text_params, *company_leads_params]), output_field=BooleanField()))


def has_search(params) -> bool:
    return bool((params.get("search") or "").strip())


def lead_ordering(field: str, *, descending: bool, searching: bool) -> list:
    """ORDER BY a lead field, then id. With a search the field is sorted as COALESCE(field, field),
    the same order under a name no index has: PostgreSQL would otherwise walk the field's index
    and test lead after lead against the search until a page is full, which for a rare term means
    every lead (3.4 s at 1M leads), where the trigram indexes find its few leads at once."""
    key = Coalesce(F(field), F(field)) if searching else F(field)
    return [key.desc() if descending else key.asc(), F("id").desc() if descending else F("id").asc()]


def lead_list(
    *, workspace: Workspace, params, user: User | None = None, sort_by: str = "createdAt", sort_order: str = "desc"
) -> tuple[QuerySet[Lead], dict]:
    """Returns (queryset, errors); errors name the bad query parameters."""
    errors: dict[str, str] = {}
    source = (params.get("source") or "").strip().lower()
    if source and source not in SourceType.values:
        errors["source"] = f"Choose one of: {', '.join(SourceType.values)}."
    assigned = (params.get("assignedTo") or "").strip()
    if assigned and assigned not in ("me", "unassigned") and parse_id(assigned) is None:
        errors["assignedTo"] = "Give a user id, 'me' or 'unassigned'."
    if sort_by not in SORT_FIELDS:
        errors["sortBy"] = f"Choose one of: {', '.join(SORT_FIELDS)}."
    if sort_order not in ("asc", "desc"):
        errors["sortOrder"] = "Choose asc or desc."
    lead_filter = LeadFilter(params, queryset=leads_base(workspace=workspace), workspace=workspace, user=user)
    if not lead_filter.is_valid():
        errors.update({key: " ".join(messages) for key, messages in lead_filter.errors.items()})
    if errors:
        return Lead.objects.none(), errors
    ordering = lead_ordering(SORT_FIELDS[sort_by], descending=sort_order == "desc", searching=has_search(params))
    return lead_filter.qs.order_by(*ordering), {}


def lead_page_counted(*, workspace: Workspace, queryset: QuerySet[Lead], offset: int, limit: int) -> tuple[list[Lead], int | None]:
    """A page of a searched lead list and how many leads the list holds, from one pass over its matches.

    A search sorts by COALESCE (lead_ordering), so its page query reads every match to sort them, and a
    separate COUNT read them all again: at 1M leads, 29 of the 71 ms of the benchmark's search. Here the
    page's ids come with `count(*) OVER ()`, and the page's leads are then read by id. None for the count
    when the page is past the end (no row carries it)."""
    rows = list(queryset.annotate(matching=Window(Count("*"))).values_list("pk", "matching")[offset : offset + limit])
    if not rows:
        return [], None
    ids = [pk for pk, _ in rows]
    # Tag names rather than Tag instances, as the detail reads them: 2.6 ms less a page of 25.
    by_id = leads_base(workspace=workspace).prefetch_related(None).in_bulk(ids)
    tag_names = lead_tag_names(lead_ids=ids)
    for pk, lead in by_id.items():
        lead.tag_names = tag_names.get(pk, [])
    return [by_id[pk] for pk in ids if pk in by_id], rows[0][1]


def lead_get(*, workspace: Workspace, lead_id) -> Lead:
    """A live lead of the workspace, or 404."""
    return scoped_get_or_404(leads_base(workspace=workspace), workspace, pk=lead_id)


def lead_get_detail(*, workspace: Workspace, lead_id) -> Lead:
    lead = lead_get(workspace=workspace, lead_id=lead_id)
    _lead_history_attach(lead)
    return lead


def lead_get_api_detail(*, workspace: Workspace, lead_id) -> Lead:
    """A live lead of the workspace, or 404, with what the API's lead detail shows: its history as
    lead_get_detail gives it, and its tag names as `tag_names`. The lead's own query says whether
    it has tags, notes and consent records, and only those it has are read: two queries for most
    leads, each of them costing more in Django than in the database."""
    queryset = (
        scoped(Lead, workspace)
        .alive()
        .select_related("company", "stage", "owner")
        .annotate(
            has_tags=Exists(LeadTag.objects.filter(lead=OuterRef("pk"))),
            has_notes=Exists(Note.objects.filter(lead=OuterRef("pk"))),
            has_consent=Exists(ConsentRecord.objects.filter(lead=OuterRef("pk"))),
        )
    )
    lead = scoped_get_or_404(queryset, workspace, pk=lead_id)
    lead.tag_names = lead_tag_names(lead_ids=[lead.pk]).get(lead.pk, []) if lead.has_tags else []
    _lead_history_attach(lead, notes=lead.has_notes, consent=lead.has_consent)
    return lead


def _lead_history_attach(lead: Lead, *, notes: bool = True, consent: bool = True) -> None:
    """The lead's recent activities and notes, and its consent records; `notes` or `consent` False
    when the caller knows there are none."""
    lead.recent_activities = list(
        LeadActivity.objects.filter(lead=lead).select_related("actor").order_by("-created_at", "-id")[:DETAIL_ACTIVITY_LIMIT]
    )
    lead.recent_notes = (
        list(Note.objects.filter(lead=lead).select_related("author").order_by("-created_at")[:DETAIL_NOTE_LIMIT]) if notes else []
    )
    lead.consent_history = list(ConsentRecord.objects.filter(lead=lead).order_by("-created_at", "-id")) if consent else []
    lead.current_consent = lead_current_consent(records=lead.consent_history)


def lead_current_consent(*, records: list[ConsentRecord]) -> list[ConsentRecord]:
    """The newest record per purpose, from records ordered newest first."""
    latest: dict[str, ConsentRecord] = {}
    for record in records:
        latest.setdefault(record.purpose, record)
    return sorted(latest.values(), key=lambda record: record.purpose)


BOARD_PAGE_SIZE = 50
# The board's query parameters and the list filter each feeds.
BOARD_FILTER_PARAMS = {"search": "search", "source": "source", "owner": "assignedTo", "tag": "tag"}


def board_filter_params(params) -> dict[str, str]:
    return {target: params.get(name, "").strip() for name, target in BOARD_FILTER_PARAMS.items() if params.get(name, "").strip()}


def lead_board_queryset(*, workspace: Workspace, pipeline, params, user: User | None) -> QuerySet[Lead]:
    """The pipeline's live leads matching the board's filters, newest first; invalid filter values are ignored."""
    queryset = leads_base(workspace=workspace).filter(pipeline=pipeline)
    filtered = LeadFilter(board_filter_params(params), queryset=queryset, workspace=workspace, user=user).qs
    return filtered.order_by(*lead_ordering("created_at", descending=True, searching=has_search(params)))


def lead_board_columns(*, workspace: Workspace, pipeline, params, user: User | None) -> list[dict]:
    """One column per stage, in order: exact counts from one aggregate query, and the newest
    BOARD_PAGE_SIZE cards of each stage."""
    queryset = lead_board_queryset(workspace=workspace, pipeline=pipeline, params=params, user=user)
    if board_filter_params(params):
        # COUNT(*), not COUNT(id): the partial index lead_board_counts then answers from the index alone.
        counts = dict(queryset.order_by().values_list("stage_id").annotate(n=Count("*")).values_list("stage_id", "n"))
    else:
        counts = stage_lead_counts(workspace=workspace, pipeline=pipeline)
    columns = []
    for stage in pipeline.stages.all():
        count = counts.get(stage.pk, 0)
        cards = list(board_cards(queryset=queryset, stage=stage, offset=0)) if count else []
        columns.append({"stage": stage, "count": count, "cards": cards, "has_more": count > len(cards)})
    return columns


def stage_lead_counts(*, workspace: Workspace, pipeline) -> dict:
    """Live leads per stage of the pipeline, from the counts the database keeps: StageLeadCount plus
    the deltas not folded in yet (a few seconds' worth)."""
    counts = dict(StageLeadCount.objects.filter(workspace=workspace, stage__pipeline=pipeline).values_list("stage_id", "lead_count"))
    pending = (
        StageLeadCountDelta.objects.filter(workspace=workspace, stage__pipeline=pipeline)
        .values("stage_id")
        .annotate(total=Sum("delta"))
        .values_list("stage_id", "total")
    )
    for stage_id, total in pending:
        counts[stage_id] = counts.get(stage_id, 0) + total
    return counts


# What a card shows, and no more: a lead row is wide (custom fields, warnings, UTM), and the board
# reads hundreds of them.
BOARD_CARD_FIELDS = (
    "id", "name", "score", "source_type", "created_at", "stage_id",
    "company__name", "owner__first_name", "owner__last_name", "owner__email",
)  # fmt: skip


def board_cards(*, queryset: QuerySet[Lead], stage, offset: int) -> QuerySet[Lead]:
    """A page of a stage's cards, in the order of `queryset` (lead_board_queryset's: newest first)."""
    return (
        queryset.filter(stage=stage)
        .select_related(None)
        .select_related("company", "owner")
        .prefetch_related(None)
        .only(*BOARD_CARD_FIELDS)[offset : offset + BOARD_PAGE_SIZE]
    )


def lead_tag_names(*, lead_ids) -> dict:
    """Each lead's tag names in name order, for many leads in one query."""
    names: dict = {}
    rows = LeadTag.objects.filter(lead_id__in=lead_ids).order_by("tag__name").values_list("lead_id", "tag__name")
    for lead_id, name in rows:
        names.setdefault(lead_id, []).append(name)
    return names


POSSIBLE_DUPLICATES_LIMIT = 10


def lead_possible_duplicates(*, lead: Lead) -> list[Lead]:
    """Other live leads of the workspace with the same email, phone or name."""
    match = Q(name__iexact=lead.name)
    if lead.email:
        match |= Q(email=lead.email)
    if lead.phone:
        match |= Q(phone=lead.phone)
    return list(
        scoped(Lead, lead.workspace)
        .alive()
        .filter(match)
        .exclude(pk=lead.pk)
        .select_related("stage")
        .order_by("created_at")[:POSSIBLE_DUPLICATES_LIMIT]
    )
