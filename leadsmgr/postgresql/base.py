"""Django's PostgreSQL backend, with a health check that costs no round trip.

With CONN_HEALTH_CHECKS, Django runs `SELECT 1` on a reused connection before each request's first
query: ~60 µs of CPU in the web worker and ~60 µs in PostgreSQL, and a round trip, on every
request (a webhook or Track API request costs ~1 ms in all). A server that ends a session
(a restart, a failover, pg_terminate_backend, an idle timeout) sends its reason and closes the
socket, which then reads as ready: that is checked without a query, and only then is `SELECT 1`
asked, as Django would. What neither can see — a peer gone without closing — fails the first
query, and Django closes that connection at the end of the request, as before.
"""

import select

from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper


class DatabaseWrapper(PostgresDatabaseWrapper):
    def is_usable(self):
        if self.connection is None:
            return False
        if self.connection.closed or getattr(self.connection, "broken", False):
            return False
        try:
            readable, _, _ = select.select([self.connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        if readable:
            # The server spoke while the connection was idle: usually to say it is terminating
            # the session, rarely a notice. Django's query tells which.
            return super().is_usable()
        return True
