"""copy_insert and copy_rows write rows as bulk_create would (COPY on PostgreSQL)."""

from datetime import timedelta

import pytest
from django.db import DataError, connection, transaction
from django.utils import timezone

from leads.models import ActivityType, Lead, LeadActivity
from leads.selectors import stage_lead_counts
from leadsmgr.bulk import InstanceBuilder, copy_insert, copy_rows
from pipelines.models import Stage


def _lead(workspace, stage, **fields):
    now = timezone.now()
    return Lead(
        workspace=workspace,
        pipeline=stage.pipeline,
        stage=stage,
        created_at=now,
        updated_at=now,
        last_activity_at=now,
        processing_state_at=now,
        **fields,
    )


def test_rows_read_back_as_written_and_triggers_run(workspace):
    stage = Stage.objects.filter(workspace=workspace, pipeline__is_default=True).order_by("position").first()
    qualified = timezone.now() - timedelta(days=3)
    leads = [
        _lead(
            workspace,
            stage,
            name="Zoë O'Brien\tTab",
            email="zoe@acme.com",
            custom_fields={"budget": "10k", "nested": {"a": [1, None, "\\\\N"]}, "_displayNames": {"budget": "Budget"}},
            validation_warnings=["phone kept as sent"],
            qualified_at=qualified,
            score=42,
        ),
        _lead(workspace, stage, name="Line\nbreak", phone="+14155550134"),
    ]
    copy_insert(Lead, leads)

    first = Lead.objects.get(pk=leads[0].pk)
    assert (first.name, first.email, first.score, first.qualified_at) == ("Zoë O'Brien\tTab", "zoe@acme.com", 42, qualified)
    assert first.custom_fields == {"budget": "10k", "nested": {"a": [1, None, "\\\\N"]}, "_displayNames": {"budget": "Budget"}}
    assert first.validation_warnings == ["phone kept as sent"]
    assert first.owner_id is None and first.deleted_at is None
    second = Lead.objects.get(pk=leads[1].pk)
    assert (second.name, second.phone, second.email) == ("Line\nbreak", "+14155550134", "")
    assert not leads[0]._state.adding
    # The board's stage counts are kept by triggers on the table, which COPY fires too.
    assert stage_lead_counts(workspace=workspace, pipeline=stage.pipeline)[stage.pk] == 2


def test_objects_without_their_auto_ids_are_inserted(workspace):
    stage = Stage.objects.filter(workspace=workspace, pipeline__is_default=True).first()
    lead = _lead(workspace, stage, name="Jane")
    copy_insert(Lead, [lead])
    copy_insert(LeadActivity, [LeadActivity(workspace=workspace, lead=lead, type=ActivityType.CREATED, data={"source": "import"})])
    assert list(LeadActivity.objects.filter(lead=lead).values_list("data", flat=True)) == [{"source": "import"}]


def test_rows_of_values_read_back_as_written_and_other_columns_get_their_defaults(workspace):
    stage = Stage.objects.filter(workspace=workspace, pipeline__is_default=True).first()
    lead = _lead(workspace, stage, name="Jane")
    copy_insert(Lead, [lead])
    at = timezone.now() - timedelta(hours=2)
    before = timezone.now()
    copy_rows(
        LeadActivity,
        ("workspace_id", "lead_id", "type", "data"),
        [
            (workspace.pk, lead.pk, ActivityType.CREATED, {"source": "import", "stage": "New\tone", "nested": [1, None]}),
            (workspace.pk, lead.pk, ActivityType.NOTE_ADDED, {}),
        ],
    )
    copy_rows(LeadActivity, ("workspace_id", "lead_id", "type", "created_at"), [(workspace.pk, lead.pk, ActivityType.ASSIGNED, at)])

    rows = {row.type: row for row in LeadActivity.objects.filter(lead=lead)}
    assert rows[ActivityType.CREATED].data == {"source": "import", "stage": "New\tone", "nested": [1, None]}
    assert rows[ActivityType.NOTE_ADDED].data == {}
    assert rows[ActivityType.CREATED].actor_id is None
    assert rows[ActivityType.CREATED].created_at >= before  # created_at's default: the time of writing
    assert rows[ActivityType.ASSIGNED].created_at == at and rows[ActivityType.ASSIGNED].data == {}


def test_rows_naming_an_unknown_column_are_refused(workspace):
    with pytest.raises(TypeError, match="leadid"):
        copy_rows(LeadActivity, ("workspace_id", "leadid"), [(workspace.pk, None)])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite does not enforce varchar lengths")
def test_a_value_too_long_raises_djangos_data_error_and_writes_nothing(workspace):
    stage = Stage.objects.filter(workspace=workspace, pipeline__is_default=True).first()
    with pytest.raises(DataError), transaction.atomic():
        copy_insert(Lead, [_lead(workspace, stage, name="ok"), _lead(workspace, stage, name="x" * 500)])
    assert not Lead.objects.exists()


def test_an_instance_built_positionally_matches_one_built_with_keywords(workspace, django_assert_num_queries):
    stage = Stage.objects.select_related("pipeline").filter(workspace=workspace, pipeline__is_default=True).order_by("position").first()
    now = timezone.now()
    values = {"workspace_id": workspace.pk, "pipeline_id": stage.pipeline_id, "stage_id": stage.pk, "name": "Ann", "email": "ann@acme.com"}
    times = {"created_at": now, "updated_at": now, "last_activity_at": now, "processing_state_at": now}

    built = InstanceBuilder(Lead).build({**values, **times}, {"stage": stage, "workspace": workspace})
    keywords = Lead(**values, **times)

    per_instance = {"id"}  # a uuid4 default, called for each
    columns = [field.attname for field in Lead._meta.concrete_fields if field.attname not in per_instance]
    assert [getattr(built, name) for name in columns] == [getattr(keywords, name) for name in columns]
    assert built.id != keywords.id and built._state.adding
    with django_assert_num_queries(0):
        assert (built.stage.name, built.workspace.pk) == (stage.name, workspace.pk)


def test_built_instances_get_their_own_mutable_defaults_and_unknown_columns_are_refused(workspace):
    builder = InstanceBuilder(Lead)
    first, second = builder.build({"name": "A"}), builder.build({"name": "B"})
    first.custom_fields["budget"] = "$1k"
    first.validation_warnings.append("x")
    assert (second.custom_fields, second.validation_warnings) == ({}, [])
    assert first.pk != second.pk
    with pytest.raises(TypeError, match="stage"):
        builder.build({"stage": None})  # a foreign key is given by its attname, stage_id
