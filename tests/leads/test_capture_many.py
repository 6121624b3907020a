"""leads_capture_many (an import's batches) must leave exactly what lead_capture leaves when the
same submissions are captured one by one, in order: same leads, companies, tags, statuses and
errors. Each test captures the same submissions both ways, in two workspaces that start alike."""

import pytest
from django.core.exceptions import ValidationError
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext

from leads.capture import CREATED, DUPLICATE, MERGED, REPLACE, SKIP, Submission, lead_capture, leads_capture_many
from leads.models import ActivityType, Company, Lead, LeadActivity, SourceType
from leads.services import companies_resolve
from tests.leads.factories import make_lead
from tests.workspaces.factories import member


def submission(strategy="merge", tags=(), custom=None, **core) -> Submission:
    return Submission(core=core, custom_fields=custom or {}, tags=list(tags), source_type=SourceType.IMPORT, dedup_strategy=strategy)


def capture_one_by_one(workspace, submissions, actor=None) -> list:
    outcomes = []
    for item in submissions:
        try:
            with transaction.atomic():
                outcomes.append(lead_capture(workspace=workspace, submission=item, actor=actor))
        except ValidationError as error:
            outcomes.append(error)
    return outcomes


def summary(outcomes) -> list:
    return [
        ("error", sorted(outcome.message_dict))
        if isinstance(outcome, ValidationError)
        else (outcome.status, outcome.lead.email or outcome.lead.name)
        for outcome in outcomes
    ]


SHOWN_FIELDS = (
    "name", "first_name", "last_name", "email", "phone", "title", "department", "country", "email_kind",
    "phone_country", "validation_warnings", "source_type", "utm_source", "custom_fields", "processing_state",
)  # fmt: skip


def snapshot(workspace) -> list[dict]:
    """What a user sees of every lead of the workspace, by its identity."""
    rows = []
    for lead in Lead.objects.filter(workspace=workspace).select_related("company", "stage", "pipeline").order_by("email", "phone", "name"):
        rows.append(
            {
                **{field: getattr(lead, field) for field in SHOWN_FIELDS},
                "stage": lead.stage.name,
                "pipeline": lead.pipeline.name,
                "company": lead.company
                and (lead.company.name, lead.company.domain, lead.company.size, lead.company.industry, lead.company.website),
                "tags": sorted(lead.tags.values_list("name", flat=True)),
                "activities": sorted(LeadActivity.objects.filter(lead=lead).values_list("type", flat=True)),
            }
        )
    return rows


def companies(workspace) -> list[tuple]:
    return sorted(Company.objects.filter(workspace=workspace).values_list("name", "domain", "size", "industry", "website"))


def seed(workspace):
    """The same starting point in each workspace: two leads and a company."""
    make_lead(workspace, name="Jane Existing", email="jane@example.com", title="CEO")
    make_lead(workspace, name="Phone Only", email="", phone="+14155550100")
    Company.objects.create(workspace=workspace, name="Acme", domain="", size="", industry="Retail", website="")


MIXED_BATCH = [
    submission(name="Ann Lee", email="ann@example.com", phone="(415) 555-0134", company={"name": "Acme", "domain": "acme.com"}),
    submission(name="Bo", email="BO@Example.com", tags=["VIP", "hot"], custom={"Budget Range": "$10k"}),
    submission(first_name="Cy", last_name="Young", email="cy@gmail.com", country="United States", company={"name": "ACME", "size": "5"}),
    submission(name="Jane Again", email="jane@example.com", title="CTO", department="Sales"),  # an existing lead
    submission(name="By Phone", phone="+1 415 555 0100", title="Buyer"),  # an existing lead, by phone
    submission(name="Ann Twice", email="ann@example.com", title="Director"),  # an earlier row of the batch
    submission(name="Dee", email="dee@example.com", phone="+14155550134"),  # Ann's phone, another email
    submission(name="", email="not-an-email"),  # refused
    submission(name="Only A Name", company={"domain": "NewCo.io"}),
    submission(name="Only A Name"),  # no email or phone: a new lead each time
    submission(name="Eve", email="eve@example.com", phone="12", company={"name": "newco.io", "industry": "Software"}),
    submission(name="x" * 300, email="long@example.com"),  # too long a name
    submission(name="Fay", email="fay@example.com", tags=["vip"]),
]


@pytest.mark.parametrize("strategy", ["merge", REPLACE, SKIP])
def test_a_batch_leaves_what_one_by_one_capture_leaves(workspace, other_workspace, strategy):
    actor = member(workspace).user
    other_actor = member(other_workspace).user
    seed(workspace)
    seed(other_workspace)
    batch = [submission(strategy, tags=item.tags, custom=item.custom_fields, **item.core) for item in MIXED_BATCH]

    with transaction.atomic():
        together = leads_capture_many(workspace=workspace, submissions=batch, actor=actor)
    one_by_one = capture_one_by_one(other_workspace, batch, actor=other_actor)

    assert summary(together) == summary(one_by_one)
    assert snapshot(workspace) == snapshot(other_workspace)
    assert companies(workspace) == companies(other_workspace)
    statuses = [outcome.status for outcome in together if not isinstance(outcome, ValidationError)]
    assert statuses.count(CREATED) == 7
    assert set(statuses) - {CREATED} <= {MERGED, DUPLICATE}


def test_new_people_are_written_in_a_bounded_number_of_queries(workspace, django_assert_max_num_queries):
    """Not one query per row: SQLite splits the bulk inserts by its variable limit, PostgreSQL needs ~15."""
    many = [submission(name=f"Person {n}", email=f"p{n}@example.com", company={"name": f"Co {n % 7}"}, tags=["t"]) for n in range(200)]
    with django_assert_max_num_queries(40), transaction.atomic():
        outcomes = leads_capture_many(workspace=workspace, submissions=many)
    assert [outcome.status for outcome in outcomes] == [CREATED] * 200
    assert Lead.objects.filter(workspace=workspace).count() == 200
    assert Company.objects.filter(workspace=workspace).count() == 7
    assert LeadActivity.objects.filter(workspace=workspace, type=ActivityType.CREATED).count() == 200


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite does not enforce column lengths")
def test_a_batch_that_does_not_fit_falls_back_to_one_by_one_and_names_the_row(workspace):
    """A value only the database refuses (a company name longer than its column: capture bounds the
    lead's fields, not the company's) must not cost the other rows: the batch goes row by row."""
    too_long = "C" * (Company._meta.get_field("name").max_length + 1)
    batch = [
        submission(name="Good One", email="good1@example.com"),
        submission(name="Bad", email="bad@example.com", company={"name": too_long}),
        submission(name="Good Two", email="good2@example.com", company={"name": "Fine Co"}),
    ]
    with transaction.atomic():
        outcomes = leads_capture_many(workspace=workspace, submissions=batch)
    assert (outcomes[0].status, outcomes[2].status) == (CREATED, CREATED)
    assert isinstance(outcomes[1], DataError)
    assert sorted(Lead.objects.filter(workspace=workspace).values_list("email", flat=True)) == ["good1@example.com", "good2@example.com"]
    assert list(Company.objects.filter(workspace=workspace).values_list("name", flat=True)) == ["Fine Co"]


def test_companies_resolve_matches_company_resolve_in_order(workspace):
    Company.objects.create(workspace=workspace, name="Globex", domain="globex.com", size="", industry="", website="")
    items = [
        {"name": "globex"},  # by name, any case
        {"name": "Initech", "domain": "INITECH.com"},
        {"name": "Other Name", "domain": "initech.com", "size": "10-50"},  # by domain: fills the size
        {"domain": "hooli.xyz"},
        None,
        {"name": ""},
    ]
    resolved = companies_resolve(workspace=workspace, items=items)
    assert [company and company.name for company in resolved] == ["Globex", "Initech", "Initech", "hooli.xyz", None, None]
    initech = Company.objects.get(workspace=workspace, domain="initech.com")
    assert (initech.name, initech.size) == ("Initech", "10-50")
    assert Company.objects.filter(workspace=workspace).count() == 3


def test_a_batchs_new_leads_are_processed_to_ready_from_one_message(workspace, django_capture_on_commit_callbacks):
    many = [submission(name=f"Person {n}", email=f"p{n}@gmail.com") for n in range(30)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        leads_capture_many(workspace=workspace, submissions=many)
    assert len(callbacks) == 1  # one task message for the batch, not one per lead
    leads = Lead.objects.filter(workspace=workspace)
    assert sorted(leads.values_list("processing_state", flat=True).distinct()) == ["ready"]
    assert set(leads.values_list("email_kind", "score_band")) == {("free", "cold")}
    assert LeadActivity.objects.filter(workspace=workspace, type=ActivityType.PROCESSED).count() == 30


def capture_both_ways(workspace, other_workspace, batch, seed_with):
    """Seeds both workspaces alike, captures `batch` together in one and one by one in the other,
    and checks they agree; returns the batch's outcomes."""
    seed_with(workspace)
    seed_with(other_workspace)
    with transaction.atomic():
        together = leads_capture_many(workspace=workspace, submissions=batch)
    one_by_one = capture_one_by_one(other_workspace, batch)
    assert summary(together) == summary(one_by_one)
    assert snapshot(workspace) == snapshot(other_workspace)
    return together


def test_a_merge_that_gives_a_lead_an_email_is_found_by_that_email_later_in_the_batch(workspace, other_workspace):
    def phone_only(ws):
        make_lead(ws, name="Phone Only", email="", phone="+14155550100")

    batch = [
        submission(name="By Phone", phone="+1 415 555 0100", email="found@example.com"),  # fills the email
        submission(name="By Email", email="found@example.com", title="Buyer"),  # must find the same lead
    ]
    together = capture_both_ways(workspace, other_workspace, batch, phone_only)
    assert [outcome.status for outcome in together] == [MERGED, MERGED]
    assert together[0].lead.pk == together[1].lead.pk
    lead = Lead.objects.get(workspace=workspace)
    assert (lead.email, lead.phone, lead.title) == ("found@example.com", "+14155550100", "Buyer")


def test_a_replaced_email_is_no_longer_found_by_the_old_one_later_in_the_batch(workspace, other_workspace):
    def one_lead(ws):
        make_lead(ws, name="Old Address", email="old@example.com", phone="+14155550100")

    batch = [
        submission(REPLACE, name="New Address", phone="+1 415 555 0100", email="new@example.com"),
        submission(REPLACE, name="Someone Else", email="old@example.com"),  # nobody has it any more: a new lead
    ]
    together = capture_both_ways(workspace, other_workspace, batch, one_lead)
    assert [outcome.status for outcome in together] == [MERGED, CREATED]
    assert sorted(Lead.objects.filter(workspace=workspace).values_list("email", flat=True)) == ["new@example.com", "old@example.com"]


def test_a_refused_submission_leaves_the_lead_as_stored_for_the_next_one(workspace, other_workspace):
    """The refused row changed the lead's title in memory before its tags were refused; the next row
    must see the stored lead (no title yet) and merge its own title, as one by one."""

    def nearly_full_of_tags(ws):
        lead = make_lead(ws, name="Tagged", email="tagged@example.com", title="")
        from leads.services import lead_tags_change

        lead_tags_change(lead=lead, actor=None, add=[f"tag {n}" for n in range(49)])

    batch = [
        submission(name="Too Many", email="tagged@example.com", title="CTO", tags=["one more", "and another"]),
        submission(name="Fine", email="tagged@example.com", title="CEO"),
    ]
    together = capture_both_ways(workspace, other_workspace, batch, nearly_full_of_tags)
    assert isinstance(together[0], ValidationError)
    assert together[1].status == MERGED
    assert Lead.objects.get(workspace=workspace).title == "CEO"


def test_known_people_are_looked_up_once_per_batch_not_once_per_row(workspace):
    for n in range(40):
        make_lead(workspace, name=f"Known {n}", email=f"known{n}@example.com", title="")
    again = [submission(name=f"Known {n}", email=f"known{n}@example.com", title="Buyer") for n in range(40)]
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        outcomes = leads_capture_many(workspace=workspace, submissions=again)
    assert [outcome.status for outcome in outcomes] == [MERGED] * 40
    reads_of_leads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT") and 'FROM "leads"' in q["sql"]]
    assert len(reads_of_leads) <= 2  # who is known, then the known leads themselves (locked)
    assert set(Lead.objects.filter(workspace=workspace).values_list("title", flat=True)) == {"Buyer"}
    merges = LeadActivity.objects.filter(workspace=workspace, type=ActivityType.MERGED)
    assert merges.count() == 40
    assert merges.first().data["changes"]["title"] == {"from": "", "to": "Buyer"}
