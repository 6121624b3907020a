"""Two transactions naming the same new company at once (two workers capturing, two parts of an
import) create it once: the second waits for the first to commit, then finds it. An import batch
locks leads before companies, as every other writer does; a rep's save or a webhook's capture
that still deadlocks with another writer over a new company and a lead runs again.

Only PostgreSQL runs the two truly in parallel (SQLite has one writer at a time).
"""

import io
import threading
import time

import pytest
from django.db import connection, transaction

from leads.imports import REPORT_COUNTS, leads_import_csv
from leads.models import Company, Lead
from leads.services import companies_resolve, lead_update
from tests.concurrency import run_concurrently
from tests.integrations.factories import ingest_path, make_webhook
from tests.leads.factories import make_lead
from tests.workspaces.factories import WorkspaceFactory

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="parallel writers need PostgreSQL (set DATABASE_URL): SQLite serializes them, so there is no race to test",
    ),
    pytest.mark.django_db(transaction=True),
]


def test_a_new_company_named_in_two_transactions_at_once_is_created_once():
    workspace = WorkspaceFactory()

    def resolve(items):
        def call():
            with transaction.atomic():
                resolved = companies_resolve(workspace=workspace, items=items)
                time.sleep(0.3)  # still uncommitted while the other transaction looks the company up
            return resolved

        return call

    first, second = run_concurrently(
        [resolve([{"name": "Newco"}, {"name": "Oldco"}]), resolve([{"name": "NEWCO", "domain": "newco.com"}, {"name": "Third"}])]
    )
    assert Company.objects.filter(workspace=workspace, name__iexact="newco").count() == 1
    assert first[0].pk == second[0].pk
    assert Company.objects.get(pk=first[0].pk).domain == "newco.com"  # the second filled the first's empty domain
    assert Company.objects.filter(workspace=workspace).count() == 3


def test_an_import_batch_and_a_reps_save_naming_the_same_new_company_both_land():
    """A rep saves a lead with a brand-new company while an import batch merges a row into that
    lead and creates the same company for a new person. The batch locks the leads it merges into
    before it creates companies, as a save does (lead, then company), so it waits for the rep's
    save instead of deadlocking with it; every row is imported once and the company made once."""
    workspace = WorkspaceFactory()
    known = make_lead(workspace, name="Kim Known", email="kim@known.example")
    rep_holds_the_lead = threading.Event()

    def rep_saves_the_lead():
        with transaction.atomic():
            _checks_for_deadlocks_last()
            locked = Lead.objects.select_for_update().get(pk=known.pk)
            rep_holds_the_lead.set()
            _wait_until_a_session_waits_for_a_lock()
            # The import waits for this lead's row; the company is still free for this save.
            return lead_update(lead=locked, actor=None, data={"company": {"name": "Newco"}})

    def import_the_file():
        assert rep_holds_the_lead.wait(timeout=10)
        rows = "Name,Email,Company,Budget\nNora New,nora@new.example,Newco,10k\nKim Known,kim@known.example,,20k\n"
        return leads_import_csv(workspace=workspace, actor=None, file=io.BytesIO(rows.encode()))

    saved, report = run_concurrently([rep_saves_the_lead, import_the_file])

    assert {key: report[key] for key in REPORT_COUNTS} == {"total": 2, "created": 1, "merged": 1, "duplicates": 0, "rejected": 0}
    newco = Company.objects.get(workspace=workspace, name="Newco")  # one company, whoever created it
    assert saved.company_id == newco.pk
    nora = Lead.objects.get(workspace=workspace, email="nora@new.example")
    assert nora.company_id == newco.pk
    known.refresh_from_db()
    assert known.company_id == newco.pk and known.custom_fields["budget"] == "20k"
    assert Lead.objects.filter(workspace=workspace).count() == 2


def test_a_webhook_capture_that_deadlocks_with_an_import_batch_is_run_again(client, workspace):
    """The same with a form sent to a webhook by a returning person: the capture locks their lead
    and then looks up the new company the writer holds. The capture PostgreSQL aborts is run again,
    and the sender gets the merged lead, not a server error."""
    lead = make_lead(workspace, name="Kim Known", email="kim@known.example")
    _, key = make_webhook(workspace)
    batch_holds_the_company = threading.Event()
    import_batch = _writer_taking_a_new_company_then_the_lead(workspace, lead, batch_holds_the_company)

    def form_sent():
        assert batch_holds_the_company.wait(timeout=10)
        return client.post(ingest_path(key), {"email": "kim@known.example", "company": "Newco"}, content_type="application/json")

    company, response = run_concurrently([import_batch, form_sent])

    assert response.status_code == 200, response.content
    assert response.json()["leadId"] == str(lead.pk) and response.json()["status"] == "merged"
    lead.refresh_from_db()
    assert lead.company_id == company.pk
    assert Company.objects.filter(workspace=workspace, name__iexact="newco").count() == 1


def _writer_taking_a_new_company_then_the_lead(workspace, lead, holds_the_company: threading.Event):
    """A writer that creates the company "Newco" (holding its lock), tells `holds_the_company`, waits
    until another session waits for a lock (for that company), then locks `lead`: as an import batch
    did before it locked its leads first. PostgreSQL aborts the other session. Returns the company."""

    def write():
        with transaction.atomic():
            _checks_for_deadlocks_last()
            [company] = companies_resolve(workspace=workspace, items=[{"name": "Newco"}])
            holds_the_company.set()
            _wait_until_a_session_waits_for_a_lock()
            Lead.objects.select_for_update().get(pk=lead.pk)
        return company

    return write


def _checks_for_deadlocks_last() -> None:
    """This transaction waits 30 s before looking for a deadlock, so the other one (1 s, the
    default) finds it first and is the one PostgreSQL aborts."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL deadlock_timeout = '30s'")


def _wait_until_a_session_waits_for_a_lock(timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    raise AssertionError("no other session waited for a lock")


def test_a_reps_save_that_deadlocks_with_an_import_batch_is_run_again_and_saved(api, workspace):
    """A writer that holds a new company's lock and then waits for a lead (as an import batch did
    before it locked its leads first), while a rep saves that lead with the company's name: a
    deadlock, and the rep's save is the one PostgreSQL aborts. It is run again once the writer has
    committed, and the rep gets the saved lead, not an error."""
    lead = make_lead(workspace, name="Kim Known", email="kim@known.example")
    batch_holds_the_company = threading.Event()
    import_batch = _writer_taking_a_new_company_then_the_lead(workspace, lead, batch_holds_the_company)

    def rep_saves():
        assert batch_holds_the_company.wait(timeout=10)
        return api.patch(f"/api/v1/leads/{lead.pk}", {"company": {"name": "Newco"}, "title": "CEO"}, format="json")

    company, response = run_concurrently([import_batch, rep_saves])

    assert response.status_code == 200, response.content
    assert response.json()["company"]["name"] == "Newco" and response.json()["title"] == "CEO"
    lead.refresh_from_db()
    assert lead.company_id == company.pk and lead.title == "CEO"
    assert Company.objects.filter(workspace=workspace, name__iexact="newco").count() == 1
