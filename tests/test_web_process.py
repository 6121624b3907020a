"""The Procfile's web process as an operator runs it: gunicorn with gunicorn.conf.py, answering
over a real socket. Each process serves requests in threads, so an idle or slow client does not hold
up everyone else, and a client's connection is kept for its next request."""

import http.client
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def procfile_web_command() -> list[str]:
    """The gunicorn part of the Procfile's `web` line, with its ${VAR:-default}s left to defaults."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    command = line.split("&&")[-1].strip()
    return shlex.split(re.sub(r"\$\{(\w+):-([^}]*)\}", lambda match: match.group(2), command))


@pytest.fixture
def web():
    """The web process, one worker (WEB_CONCURRENCY=1), on a free port; yields (host, port)."""
    port = free_port()
    command = procfile_web_command()
    assert command[0] == "gunicorn"
    command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
    env = {
        # gunicorn.conf.py's defaults, whatever this shell sets.
        **{name: value for name, value in os.environ.items() if name not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "WEB_THREADS")},
        "WEB_CONCURRENCY": "1",
        "DEBUG": "0",
        "SECRET_KEY": "x" * 64 + "-web-process-test",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DJANGO_SETTINGS_MODULE": "leadsmgr.settings",
    }
    server = subprocess.Popen([sys.executable, "-m", *command], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "gunicorn did not start within 30 s"
                time.sleep(0.1)
        yield "127.0.0.1", port
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_client_that_sends_nothing_does_not_hold_up_the_others(web):
    host, port = web
    with socket.create_connection((host, port)) as idle:
        idle.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never finishes its request
        started = time.monotonic()
        other = http.client.HTTPConnection(host, port, timeout=10)
        other.request("GET", "/livez")
        response = other.getresponse()
        assert (response.status, response.read()) == (200, b"ok")
        # One worker process: a worker serving one request at a time would wait for the idle
        # client until its timeout (30 s) before answering.
        assert time.monotonic() - started < 5


def test_a_client_keeps_its_connection_for_the_next_request(web):
    host, port = web
    connection = http.client.HTTPConnection(host, port, timeout=10)
    for _ in range(3):
        connection.request("GET", "/livez")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"ok")
        assert response.getheader("Connection", "").lower() != "close"
    first_socket = connection.sock
    connection.request("GET", "/livez")
    connection.getresponse().read()
    assert connection.sock is first_socket
