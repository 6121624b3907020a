"""Trigram indexes for the lead search (name, email, phone, company name contain the term), on
PostgreSQL only: pg_trgm is a PostgreSQL extension (trusted since PostgreSQL 13, so a database
owner may create it). SQLite searches by scanning, as before. leads.selectors.lead_search_matches
writes the search so that these indexes answer it."""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    # UPPER(col::text) is what Django's icontains compares on PostgreSQL; live leads are searched.
    "CREATE INDEX IF NOT EXISTS lead_search_trgm ON leads USING gin "
    "(UPPER(name::text) gin_trgm_ops, UPPER(email::text) gin_trgm_ops, UPPER(phone::text) gin_trgm_ops) WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS company_search_trgm ON leads_company USING gin (UPPER(name::text) gin_trgm_ops)",
]
BACKWARD = ["DROP INDEX IF EXISTS lead_search_trgm", "DROP INDEX IF EXISTS company_search_trgm"]


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
