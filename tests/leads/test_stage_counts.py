"""The per-stage live lead counts the database keeps (StageLeadCount, by triggers) must always equal
a live COUNT, whatever path changed the leads: the board's unfiltered column badges show them."""

import pytest
from django.db import connection, transaction

from leads.capture import Submission, leads_capture_many
from leads.models import Lead, SourceType, StageLeadCount, StageLeadCountDelta
from leads.selectors import stage_lead_counts
from leads.services import lead_delete, lead_merge, lead_stage_move, leads_bulk_action, stage_counts_compact
from pipelines.models import Stage
from pipelines.services import pipeline_delete, pipeline_ensure_default
from tests.leads.factories import make_lead
from tests.pipelines.factories import make_pipeline
from tests.workspaces.factories import member


def live_counts(workspace) -> dict:
    counted: dict = {}
    for stage_id in Lead.objects.filter(workspace=workspace, deleted_at__isnull=True).values_list("stage_id", flat=True):
        counted[stage_id] = counted.get(stage_id, 0) + 1
    return counted


def kept_counts(workspace) -> dict:
    """The kept counts of every stage: the count rows plus the deltas not folded in yet."""
    kept: dict = dict(StageLeadCount.objects.filter(workspace=workspace).values_list("stage_id", "lead_count"))
    for stage_id, delta in StageLeadCountDelta.objects.filter(workspace=workspace).values_list("stage_id", "delta"):
        kept[stage_id] = kept.get(stage_id, 0) + delta
    return {stage_id: n for stage_id, n in kept.items() if n}


def assert_counts_true(workspace):
    assert kept_counts(workspace) == live_counts(workspace)


@pytest.fixture
def stages(workspace):
    pipeline, _ = pipeline_ensure_default(workspace=workspace)
    return list(pipeline.stages.order_by("position"))


def test_counts_follow_create_move_delete_and_bulk_actions(workspace, stages):
    actor = member(workspace).user
    leads = [make_lead(workspace) for _ in range(5)]
    assert stage_lead_counts(workspace=workspace, pipeline=stages[0].pipeline) == {stages[0].pk: 5}

    lead_stage_move(lead=leads[0], stage=stages[2], actor=actor)
    lead_delete(lead=leads[1], actor=actor)
    leads_bulk_action(workspace=workspace, actor=actor, action="move_stage", lead_ids=[str(leads[2].pk), str(leads[3].pk)], stage=stages[1])
    assert stage_lead_counts(workspace=workspace, pipeline=stages[0].pipeline) == {stages[0].pk: 1, stages[1].pk: 2, stages[2].pk: 1}
    assert_counts_true(workspace)

    leads_bulk_action(workspace=workspace, actor=actor, action="delete", lead_ids=[str(leads[2].pk)])
    assert_counts_true(workspace)


def test_counts_follow_merges_imports_and_raw_sql(workspace, stages):
    actor = member(workspace).user
    survivor, other = make_lead(workspace, email="a@example.com"), make_lead(workspace, email="b@example.com")
    lead_stage_move(lead=other, stage=stages[3], actor=actor)
    lead_merge(survivor=survivor, other=other, actor=actor)
    assert_counts_true(workspace)

    with transaction.atomic():
        leads_capture_many(
            workspace=workspace,
            submissions=[
                Submission(core={"name": f"P {n}", "email": f"p{n}@example.com"}, source_type=SourceType.IMPORT) for n in range(30)
            ],
        )
    assert_counts_true(workspace)

    # A path that bypasses every service is counted too.
    Lead.objects.filter(workspace=workspace, email__startswith="p1").update(stage=stages[4])
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM lead_activities WHERE lead_id IN (SELECT id FROM leads WHERE email LIKE 'p2%%')")
        cursor.execute("DELETE FROM leads WHERE email LIKE 'p2%%'")
    assert_counts_true(workspace)
    assert kept_counts(workspace)[stages[4].pk] == 11  # p1, p10 … p19


def test_counts_follow_a_pipeline_deleted_with_its_leads_moved(workspace, stages):
    partners = make_pipeline(workspace)
    intro = partners.stages.order_by("position").first()
    for _ in range(3):
        make_lead(workspace, stage=intro, pipeline=partners)
    pipeline_delete(pipeline=partners, move_to_stage=stages[1])
    assert not Stage.objects.filter(pk=intro.pk).exists()
    assert stage_lead_counts(workspace=workspace, pipeline=stages[1].pipeline) == {stages[1].pk: 3}
    assert_counts_true(workspace)


def test_the_board_shows_the_kept_counts_and_live_counts_when_filtered(workspace, stages, client):
    """Both badges agree with what the column holds; a filtered board counts the filter's matches."""
    user = member(workspace).user
    client.force_login(user)
    for n in range(3):
        make_lead(workspace, name=f"Zed {n}")
    make_lead(workspace, name="Other")
    body = client.get("/leads/", secure=True).content.decode()
    assert f'data-stage-count="{stages[0].pk}"' in body
    assert ">4</span>" in body
    filtered = client.get("/leads/?search=Zed", secure=True).content.decode()
    assert ">3</span>" in filtered


def test_compaction_folds_the_deltas_into_the_counts_without_changing_them(workspace, stages):
    actor = member(workspace).user
    leads = [make_lead(workspace) for _ in range(4)]
    lead_stage_move(lead=leads[0], stage=stages[1], actor=actor)
    before = stage_lead_counts(workspace=workspace, pipeline=stages[0].pipeline)
    stage_counts_compact()
    assert not StageLeadCountDelta.objects.filter(workspace=workspace).exists()
    assert stage_lead_counts(workspace=workspace, pipeline=stages[0].pipeline) == before == {stages[0].pk: 3, stages[1].pk: 1}
    lead_delete(lead=leads[1], actor=actor)
    stage_counts_compact()
    assert_counts_true(workspace)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: SQLite has one writer at a time")
@pytest.mark.django_db(transaction=True)
def test_two_open_captures_into_one_stage_do_not_wait_for_each_other(workspace, stages):
    """A lead captured while another transaction holds an uncommitted lead in the same stage goes
    through at once (a shared counter row would make it wait for that commit)."""
    from django.db import connections

    from leads.capture import lead_capture

    first = make_lead(workspace, name="First")
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("BEGIN")
            # Another capture's transaction, still open: its lead enters the same stage.
            cursor.execute("UPDATE leads SET deleted_at = now() WHERE id = %s", [first.pk])
            cursor.execute("UPDATE leads SET deleted_at = NULL WHERE id = %s", [first.pk])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        lead_capture(workspace=workspace, submission=Submission(core={"name": "Second", "email": "second@example.com"}))
        with other.cursor() as cursor:
            cursor.execute("COMMIT")
    finally:
        other.close()
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    assert_counts_true(workspace)
    assert stage_lead_counts(workspace=workspace, pipeline=stages[0].pipeline) == {stages[0].pk: 2}
