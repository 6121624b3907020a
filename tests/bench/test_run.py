"""The benchmark's load harness against a real `wrk` and a local HTTP server: the percentiles our
Lua scripts print, the pacing of the latency runs, and the bodies the webhook script sends. No
figure of the app is timed here (the benchmark is where speed lives)."""

import importlib.util
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

WRK = shutil.which("wrk")
pytestmark = pytest.mark.skipif(WRK is None, reason="wrk is not installed (.ci/run installs it)")

_spec = importlib.util.spec_from_file_location("bench_run", Path(__file__).resolve().parents[2] / "bench" / "run.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn answers wrk
    disable_nagle_algorithm = True  # else the body waits ~40 ms behind the headers for a delayed ACK

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.bodies.append(body)
        answer = b'{"ok": true, "status": "queued"}'
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # 32 connections arrive at once; the default backlog of 5 drops some
    daemon_threads = True


@pytest.fixture
def server():
    httpd = _Server(("127.0.0.1", 0), _Recorder)
    httpd.bodies = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(httpd) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/webhooks/leads/key"


def test_the_webhook_script_reports_exact_percentiles_and_sends_a_new_person_each_time(server):
    result = bench.run_wrk(WRK, _url(server), connections=2, seconds=1, script=bench.WRK_SCRIPT)

    assert result["requests"] > 0
    assert result["non_2xx"] == 0
    # p95 exists only because the script's done() prints it (wrk's own table has none).
    assert 0 < result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"] <= result["max_ms"]
    people = [json.loads(body) for body in server.bodies]
    assert len({person["email"] for person in people}) == len(people)
    assert all(person["phone"].startswith("+1 (") for person in people)


def test_the_track_script_shares_the_percentiles_and_sends_batches_of_twenty(server):
    result = bench.run_wrk(WRK, _url(server), connections=2, seconds=1, script=bench.WRK_TRACK_SCRIPT)

    assert 0 < result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"] <= result["max_ms"]
    batches = [json.loads(body) for body in server.bodies]
    assert {len(batch["events"]) for batch in batches} == {bench.TRACK_BATCH}
    assert len({batch["visitorId"] for batch in batches}) == len(batches)


def test_a_pause_paces_each_connection(server):
    unpaced = bench.run_wrk(WRK, _url(server), connections=2, seconds=1, script=bench.WRK_SCRIPT)
    paced = bench.run_wrk(WRK, _url(server), connections=2, seconds=1, script=bench.WRK_SCRIPT, delay_ms=200)

    # Two connections pausing 200 ms on average send about ten requests in a second.
    assert paced["requests"] <= 30
    assert unpaced["requests"] > 5 * paced["requests"]


def test_the_latency_runs_hold_about_half_the_rate_they_are_given(server, monkeypatch):
    monkeypatch.setattr(bench, "WRK_SECONDS", 1)
    monkeypatch.setattr(bench, "CALIBRATION_SECONDS", 1)

    load = bench.run_wrk_at_half_rate(WRK, _url(server), max_rps=800, script=bench.WRK_SCRIPT)
    runs, calibration, pacing = load.runs, load.calibration, load.pacing

    assert len(runs) == bench.REPEATS
    assert pacing["target_rps"] == 400
    # 32 connections, a cycle of 80 ms each: on a server answering in ~1 ms the pause is most of it.
    assert 55 <= pacing["mean_pause_ms"] <= 80
    held = sorted(run["rps"] for run in runs)[1]
    assert 250 <= held <= 550
    assert calibration["requests"] > 0
    # Every answer wrk saw is counted, the calibration run's too; a request still in flight when a
    # run stops (at most one a connection) reached the server unanswered.
    in_flight_at_most = bench.HALF_RATE_CONNECTIONS * (bench.REPEATS + 1)
    assert len(server.bodies) - in_flight_at_most <= load.answered() <= len(server.bodies)
    latency = load.latency_row("p95 at half rate")
    assert latency["value"]["median"] == sorted(run["p95_ms"] for run in runs)[1]
    assert latency["extra"]["pacing"] == pacing
