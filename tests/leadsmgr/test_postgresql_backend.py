"""The PostgreSQL backend's health check: a reused connection costs no query, a session the server
ended is noticed before the request's first query, which then runs on a new connection."""

import time

import pytest
from django.db import connection, connections

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the backend is PostgreSQL's")


@pytest.fixture
def session(db):
    """A connection of its own (the test's is inside the test's transaction), health checks on."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    assert wrapper.health_check_enabled
    yield wrapper
    wrapper.close()


def last_query_of(wrapper) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [wrapper.connection.info.backend_pid])
        return cursor.fetchone()[0]


def test_the_project_uses_its_backend():
    assert type(connections["default"]).__module__ == "leadsmgr.postgresql.base"


def test_a_healthy_reused_connection_is_usable_without_a_query(session):
    with session.cursor() as cursor:
        cursor.execute("SELECT 'the last query'")
    assert session.is_usable()
    assert last_query_of(session) == "SELECT 'the last query'"


def test_a_session_the_server_ended_is_replaced_before_the_next_request_s_first_query(session):
    ended_pid = session.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [ended_pid])
    deadline = time.monotonic() + 5
    while session.is_usable() and time.monotonic() < deadline:
        time.sleep(0.01)  # the server's goodbye crosses the socket
    assert not session.is_usable()

    session.close_if_unusable_or_obsolete()  # what request_started runs
    with session.cursor() as cursor:  # the request's first query: checked, then on a new connection
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    assert session.connection.info.backend_pid != ended_pid
