"""Transaction-scoped locks on values (an email, an idempotency key) rather than rows, so two
concurrent submissions of the same person are handled one after the other."""

from django.db import connection


def lock_values(*values: str) -> None:
    """Holds a PostgreSQL advisory lock on each value until the transaction ends. SQLite needs
    none: it allows one writer at a time already. Values are locked in sorted order to avoid
    deadlocks between two submissions naming the same two values."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for value in sorted(set(v for v in values if v)):
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [value])
