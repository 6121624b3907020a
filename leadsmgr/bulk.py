"""Inserting many rows with PostgreSQL's COPY instead of bulk_create's INSERT.

bulk_create prepares every value in Python (`get_db_prep_save`, then psycopg's client-side quoting
of each parameter): for a lead's 44 columns that is most of an import's write time. COPY streams
the rows and psycopg formats each value in C. Use it for new rows whose auto-increment ids are not
read afterwards (they are not set on the objects); UUID primary keys are set before, so they are.
Other databases get bulk_create.
"""

import json

from django.db import connections
from django.db.models import AutoField, BigAutoField, JSONField, Model, SmallAutoField

AUTO_FIELDS = (AutoField, BigAutoField, SmallAutoField)


def _json_writer(field: JSONField):
    encoder = field.encoder

    def write(value):
        return None if value is None else json.dumps(value, cls=encoder)

    return write


def copy_insert(model: type[Model], objs: list[Model], *, using: str = "default") -> None:
    """Inserts unsaved instances of `model` in one COPY (PostgreSQL), in the current transaction.
    Raises django.db's DataError / IntegrityError as bulk_create would."""
    if not objs:
        return
    connection = connections[using]
    if connection.vendor != "postgresql":
        model.objects.using(using).bulk_create(objs)
        return
    fields = [field for field in model._meta.concrete_fields if not isinstance(field, AUTO_FIELDS)]
    writers = [(field.attname, _json_writer(field) if isinstance(field, JSONField) else None) for field in fields]
    quote = connection.ops.quote_name
    statement = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) FROM STDIN"
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(statement) as copy:
        for obj in objs:
            copy.write_row([write(getattr(obj, attname)) if write else getattr(obj, attname) for attname, write in writers])
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using
