"""gunicorn's settings for the `web` process (Procfile) and the benchmark, from the environment.

Threads (gthread) rather than one request per process: a queued webhook or a tracked page spends
much of its time waiting (PostgreSQL's commit, Redis, the client), and another thread of the same
process works meanwhile. Connections are also kept alive between requests, and a slow or idle
client holds one thread instead of a whole worker. Measured with the benchmark on 2 cores, 4
processes each way: queued webhooks 179 -> 315 req/s, p90 at light load 27.9 -> 17.8 ms (README,
Performance). Django gives each thread its own database connection.
"""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
