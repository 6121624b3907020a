"""Timestamps read from PostgreSQL are decoded by psycopg's C loader, and are the same aware UTC
datetimes Django's own loader gave: the API and the CSV export print them as before."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone
from psycopg.pq import Format
from psycopg_binary._psycopg import TimestamptzLoader as CTimestamptzLoader

from leads.exports import leads_export_rows
from leads.models import Lead
from leadsmgr.db import c_tz_loader
from tests.leads.factories import make_lead

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the loader is psycopg's")

WRITTEN = datetime.datetime(2026, 1, 1, 11, 0, 0, 123456, tzinfo=ZoneInfo("Europe/Paris"))


def test_a_timestamp_reads_back_aware_in_utc_and_equal_to_what_was_written(workspace):
    lead = make_lead(workspace)
    Lead.objects.filter(pk=lead.pk).update(created_at=WRITTEN)

    created_at = Lead.objects.values_list("created_at", flat=True).get(pk=lead.pk)

    assert timezone.is_aware(created_at)
    assert created_at.tzinfo is datetime.UTC
    assert created_at == WRITTEN
    assert created_at.isoformat() == "2026-01-01T10:00:00.123456+00:00"


def test_cursors_decode_timestamps_with_the_c_loader(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        cursor.fetchone()
        oid = cursor.description[0].type_code
        loader = cursor.cursor.adapters.get_loader(oid, Format.TEXT)
        instance = loader(oid, cursor.cursor)

    # The connection's class: Django's create_cursor did not put its Python loader back.
    assert loader is c_tz_loader(connection.timezone)
    assert isinstance(instance.load.__self__, CTimestamptzLoader)
    assert instance.load(b"2026-01-01 10:00:00+00") == datetime.datetime(2026, 1, 1, 10, tzinfo=datetime.UTC)


def test_the_api_and_the_export_print_timestamps_as_before(api):
    lead = make_lead(api.workspace, name="Ann", email="ann@example.com")
    Lead.objects.filter(pk=lead.pk).update(created_at=WRITTEN)

    assert api.get(f"/api/v1/leads/{lead.pk}").json()["createdAt"] == "2026-01-01T10:00:00.123456Z"
    _header, line = "".join(leads_export_rows(queryset=Lead.objects.filter(pk=lead.pk))).splitlines()
    assert ",2026-01-01T10:00:00.123456+00:00," in line
