"""Two transactions naming the same new company at once (two workers capturing, two parts of an
import) create it once: the second waits for the first to commit, then finds it.

Only PostgreSQL runs the two truly in parallel (SQLite has one writer at a time).
"""

import time

import pytest
from django.db import connection, transaction

from leads.models import Company
from leads.services import companies_resolve
from tests.concurrency import run_concurrently
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
