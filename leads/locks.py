"""Transaction-scoped locks on values (an email, an idempotency key) rather than rows, so two
concurrent submissions of the same person are handled one after the other."""

from django.db import connection


def lock_values(*values: str) -> None:
    """Holds a PostgreSQL advisory lock on each value until the transaction ends. SQLite needs
    none: it allows one writer at a time already. Values are locked in sorted order to avoid
    deadlocks between two submissions naming the same two values."""
    if connection.vendor != "postgresql":
        return
    ordered = sorted({value for value in values if value})
    if not ordered:
        return
    with connection.cursor() as cursor:
        if len(ordered) == 1:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ordered)
            return
        # One statement for a batch (an import's rows), taking the locks in the list's order.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(v.value, 0)) "
            "FROM (SELECT value, n FROM unnest(%s::text[]) WITH ORDINALITY AS u(value, n) ORDER BY n) v",
            [ordered],
        )
