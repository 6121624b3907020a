"""gunicorn's settings for the `web` process (Procfile) and the benchmark, from the environment.

Threads (gthread) rather than one request per process: a queued webhook or a tracked page spends
much of its time waiting (PostgreSQL's commit, Redis, the client), and another thread of the same
process works meanwhile. Connections are also kept alive between requests, and a slow or idle
client holds one thread instead of a whole worker. Measured with the benchmark on 2 cores, 4
processes each way: queued webhooks 179 -> 315 req/s, p90 at light load 27.9 -> 17.8 ms (README,
Performance). Django gives each thread its own database connection.
"""

import gc
import os

workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"


def post_worker_init(worker):
    """Once the app is loaded, its ~120k long-lived objects (modules, settings, URL patterns,
    models) are frozen out of the garbage collector's reach: a full collection then walks only
    what requests left behind. In process, 200 list requests had one full collection of 79 ms
    (the slowest request, 123 ms); frozen, the slowest collection took 3.4 ms (request 54 ms)."""
    gc.freeze()
