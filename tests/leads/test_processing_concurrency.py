"""Two task messages processing overlapping batches at the same moment (a catch-up batch taking
along leads that their own messages also name): each step is claimed once per lead, so every lead
ends ready with one `processed` activity and one score change, and the claims, which lock in one
order, do not deadlock.

Only PostgreSQL runs the two truly in parallel (SQLite has one writer at a time).
"""

import pytest
from django.db import connection

from leads import processing
from leads.models import ActivityType, Lead, LeadActivity
from pipelines.models import Pipeline
from scoring.models import ScoreChange
from tests.concurrency import run_concurrently
from tests.workspaces.factories import WorkspaceFactory

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="parallel processing needs PostgreSQL (set DATABASE_URL): SQLite serializes writers, so there is no race to test",
    ),
    pytest.mark.django_db(transaction=True),
]


def received(count: int) -> list:
    """New leads waiting for processing, their derived fields (email kind, phone country) not yet set."""
    workspace = WorkspaceFactory()
    pipeline = Pipeline.objects.get(workspace=workspace, is_default=True)
    leads = Lead.objects.bulk_create(
        Lead(
            workspace=workspace,
            pipeline=pipeline,
            stage=pipeline.stages.order_by("position").first(),
            name=f"Chief {n}",
            email=f"chief{n}@acme.com",
            title="CEO",
            phone=f"+14155550{n:03d}",
            processing_state="received",
        )
        for n in range(count)
    )
    return [lead.pk for lead in leads]


@pytest.mark.parametrize("hooks", [[], ["tests.leads.test_processing_concurrency.no_op"]], ids=["without hooks", "with a hook"])
def test_overlapping_batches_processed_at_once_process_each_lead_once(settings, hooks):
    settings.LEAD_PROCESSING_HOOKS = hooks
    ids = received(60)
    # Reversed and shifted: the two batches list shared leads in opposite orders.
    outcomes = run_concurrently([lambda batch=batch: processing.process_many(batch) for batch in (ids[:45], list(reversed(ids[15:])))])

    ready = [lead_id for outcome in outcomes for lead_id in outcome.ready]
    assert sorted(ready) == sorted(ids)  # each lead moved to ready by exactly one of the two
    assert set(Lead.objects.filter(pk__in=ids).values_list("processing_state", flat=True)) == {"ready"}
    activities = LeadActivity.objects.filter(lead_id__in=ids, type=ActivityType.PROCESSED)
    assert activities.count() == len(ids)
    assert {tuple(states) for states in activities.values_list("data__states", flat=True)} == {
        ("validated", "deduplicated", "scored", "ready")
    }
    assert ScoreChange.objects.filter(lead_id__in=ids).count() == len(ids)
    assert set(Lead.objects.filter(pk__in=ids).values_list("email_kind", "phone_country")) == {("business", "US")}


def no_op(lead) -> None:
    """A hook that finds nothing (as an enrichment provider with no data would)."""
