"""Inserting many rows with PostgreSQL's COPY instead of bulk_create's INSERT.

bulk_create prepares every value in Python (`get_db_prep_save`, then psycopg's client-side quoting
of each parameter): for a lead's 44 columns that is most of an import's write time. COPY streams
the rows and psycopg formats each value in C. Use it for new rows whose auto-increment ids are not
read afterwards (they are not set on the objects); UUID primary keys are set before, so they are.
Other databases get bulk_create.
"""

import json
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from functools import cache

from django.db import connections
from django.db.models import AutoField, BigAutoField, JSONField, Model, SmallAutoField

AUTO_FIELDS = (AutoField, BigAutoField, SmallAutoField)


def _json_writer(field: JSONField):
    encoder = field.encoder

    def write(value):
        return None if value is None else json.dumps(value, cls=encoder)

    return write


def _copied_fields(model: type[Model]) -> list:
    return [field for field in model._meta.concrete_fields if not isinstance(field, AUTO_FIELDS)]


@contextmanager
def _copy(connection, model: type[Model], fields: list):
    """A COPY into `model`'s table of `fields`' columns; database errors raised as django.db's."""
    quote = connection.ops.quote_name
    statement = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) FROM STDIN"
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(statement) as copy:
        yield copy


def copy_insert(model: type[Model], objs: list[Model], *, using: str = "default") -> None:
    """Inserts unsaved instances of `model` in one COPY (PostgreSQL), in the current transaction.
    Raises django.db's DataError / IntegrityError as bulk_create would."""
    if not objs:
        return
    connection = connections[using]
    if connection.vendor != "postgresql":
        model.objects.using(using).bulk_create(objs)
        return
    fields = _copied_fields(model)
    writers = [(field.attname, _json_writer(field) if isinstance(field, JSONField) else None) for field in fields]
    with _copy(connection, model, fields) as copy:
        for obj in objs:
            copy.write_row([write(getattr(obj, attname)) if write else getattr(obj, attname) for attname, write in writers])
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using


def copy_rows(model: type[Model], attnames: Sequence[str], rows: Iterable[Sequence], *, using: str = "default") -> None:
    """Inserts rows given as column values (in `attnames` order; a JSON column as its Python value)
    in one COPY, in the current transaction; every other column gets its field's default. For
    history rows written by the thousand and never read back: building a model instance for each
    cost ~4x the row itself (the `created` activity of an imported lead: ~12 µs against ~3 µs).
    Other databases get bulk_create."""
    builder = instance_builder(model)
    builder.refuse_unknown(attnames)
    connection = connections[using]
    if connection.vendor != "postgresql":
        model.objects.using(using).bulk_create([builder.build(dict(zip(attnames, row, strict=True))) for row in rows])
        return
    given = {attname: position for position, attname in enumerate(attnames)}
    defaults = dict(builder.defaults)
    fields = _copied_fields(model)
    # Per column: where its value is in a row, or the maker of its default.
    sources = [(given.get(field.attname), defaults[field.attname]) for field in fields]
    json_columns = [(index, _json_writer(field)) for index, field in enumerate(fields) if isinstance(field, JSONField)]
    with _copy(connection, model, fields) as copy:
        for row in rows:
            values = [row[position] if position is not None else default() for position, default in sources]
            for index, write in json_columns:
                values[index] = write(values[index])
            copy.write_row(values)


class InstanceBuilder:
    """Builds unsaved instances of a model from column values, positionally: Model.__init__ with
    keyword arguments asks every field for its default and goes through the descriptors (~60 µs for
    a lead's 44 fields); with positional arguments it sets the attributes (~13 µs). For the rows
    of an import's batch, built by the thousand. Get one with instance_builder(model).

    `values` are keyed by attname (`stage_id`, not `stage`); every other field gets its default as
    Model.__init__ would give it (a callable default is called for each instance, a list or dict
    default is copied). `related` sets the cache of foreign keys whose objects are at hand, so
    reading `instance.stage` does not query.
    """

    def __init__(self, model: type[Model]):
        self.model = model
        self.attnames = {field.attname for field in model._meta.concrete_fields}
        # (attname, a function giving the field's default for a new instance), in column order
        self.defaults = [(field.attname, _default_maker(field)) for field in model._meta.concrete_fields]

    def refuse_unknown(self, attnames: Iterable[str]) -> None:
        unknown = set(attnames) - self.attnames
        if unknown:
            raise TypeError(f"{self.model.__name__} has no columns {sorted(unknown)}")

    def build(self, values: dict, related: dict | None = None) -> Model:
        self.refuse_unknown(values)
        instance = self.model(*[values[attname] if attname in values else default() for attname, default in self.defaults])
        for name, obj in (related or {}).items():
            self.model._meta.get_field(name).set_cached_value(instance, obj)
        return instance


def _default_maker(field):
    if field.has_default() and callable(field.default):
        return field.default
    constant = field.get_default()
    if isinstance(constant, list | dict):
        return lambda: type(constant)(constant)
    return lambda: constant


@cache
def instance_builder(model: type[Model]) -> InstanceBuilder:
    return InstanceBuilder(model)
