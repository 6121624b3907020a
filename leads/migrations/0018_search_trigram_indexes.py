"""The pg_trgm extension and a trigram index on company names, for the lead search, on PostgreSQL
only: pg_trgm is a PostgreSQL extension (trusted since PostgreSQL 13, so a database owner may create
it). The leads' own searchable text gets its table and index in 0020. SQLite searches by scanning.
leads.selectors.lead_search_matches writes the search so that these indexes answer it."""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    # UPPER(col::text) is what Django's icontains compares on PostgreSQL.
    "CREATE INDEX IF NOT EXISTS company_search_trgm ON leads_company USING gin (UPPER(name::text) gin_trgm_ops)",
]
BACKWARD = ["DROP INDEX IF EXISTS company_search_trgm"]


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD:
            schema_editor.execute(statement)


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("leads", "0017_partial_foreign_key_indexes")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
