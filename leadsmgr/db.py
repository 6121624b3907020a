"""psycopg's C loader for timestamptz on every PostgreSQL connection.

Django's psycopg backend registers a Python subclass of psycopg's TimestamptzLoader that parses
each value in Python, then sets its tzinfo: ~3 µs of CPU a value against ~0.25 µs for
psycopg_binary's C loader (200,000 values read through a Django cursor). The C loader
returns the instant in the session's TimeZone, which Django sets to the connection's time zone
(UTC unless DATABASES sets TIME_ZONE), so values are the same aware datetimes as Django's.
"""

import datetime
import functools
import time
from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.backends.signals import connection_created

try:
    from psycopg.adapt import Loader
    from psycopg.pq import Format
    from psycopg_binary._psycopg import TimestamptzLoader as CTimestamptzLoader
except ImportError:  # psycopg without its binary package (or psycopg2): Django's loader stays.
    CTimestamptzLoader = None


@cache
def c_tz_loader(zone: datetime.tzinfo) -> type:
    """A loader class whose instances decode with the C loader; `timezone` is what Django's
    create_cursor compares with the connection's before registering its own loader on a cursor."""

    class CTzLoader(Loader):
        format = Format.TEXT
        timezone = zone

        def __init__(self, oid, context=None):
            super().__init__(oid, context)
            # The C class cannot be subclassed, hence the delegation; psycopg's C row loop calls the
            # instance's `load`, which is then the C loader's own: no Python frame per value.
            self._c_loader = CTimestamptzLoader(oid, context)
            self.load = self._c_loader.load

        def load(self, data):
            return self._c_loader.load(data)

    CTzLoader.__qualname__ = f"CTzLoader[{zone}]"
    return CTzLoader


def c_timestamptz_loader_register(sender, connection, **kwargs):
    """connection_created receiver: the C loader on a new PostgreSQL connection, where it gives what
    Django's would."""
    raw = connection.connection
    if CTimestamptzLoader is None or connection.vendor != "postgresql" or not settings.USE_TZ or not hasattr(raw, "adapters"):
        return  # psycopg2, or naive datetimes: Django's loader stays
    # The C loader converts to the session's TimeZone; use it only where that is Django's zone.
    if raw.info.parameter_status("TimeZone") == connection.timezone_name:
        raw.adapters.register_loader("timestamptz", c_tz_loader(connection.timezone))


def connect_signals():
    connection_created.connect(c_timestamptz_loader_register, dispatch_uid="leadsmgr.db.c_timestamptz_loader")


# Errors a retry can outlive (a dropped connection, a restart, a serialization failure): tasks
# retry them with backoff; anything else is a fault of the work itself.
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)
# SQLSTATEs of a transaction PostgreSQL aborted to resolve a conflict with another one: run again
# whole, it normally succeeds (deadlock_detected, serialization_failure).
LOCK_CONFLICT_STATES = ("40P01", "40001")


def is_lock_conflict(error: BaseException) -> bool:
    """The database error (Django's, wrapping psycopg's) is a deadlock or serialization failure."""
    return getattr(error.__cause__, "sqlstate", None) in LOCK_CONFLICT_STATES


def retrying_lock_conflicts(call: Callable, *, attempts: int = 3):
    """call(), run again (up to `attempts` times in all) when PostgreSQL aborts its transaction to
    break a deadlock: call must be a whole transaction, so a failed try has written nothing."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except OperationalError as error:
            if attempt == attempts or not is_lock_conflict(error):
                raise
            time.sleep(0.05 * attempt)  # the other transaction holds its locks now; let it finish


def retry_lock_conflicts(function: Callable) -> Callable:
    """Decorates a service that is one transaction (decorated with transaction.atomic below this):
    retrying_lock_conflicts when it is called outside any transaction; inside one, only the owner
    of the outer transaction can run it again, so a conflict is raised as it is."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if connection.in_atomic_block:
            return function(*args, **kwargs)
        return retrying_lock_conflicts(lambda: function(*args, **kwargs))

    return wrapper
