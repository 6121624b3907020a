"""Fixed-window request counters in the cache (Redis when REDIS_URL is set, so every web worker
shares them; per process otherwise)."""

import time

from django.core.cache import cache


def over_limit(name: str, limit: int, window_seconds: int = 60) -> int | None:
    """Counts one request against `name`; returns the seconds until the window resets when the
    count is over `limit`, else None."""
    if limit <= 0:
        return None
    now = time.time()
    window = int(now // window_seconds)
    key = f"ratelimit:{name}:{window}"
    if cache.add(key, 1, timeout=window_seconds + 1):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr: this request opens the next window
            cache.add(key, 1, timeout=window_seconds + 1)
            count = 1
    if count > limit:
        return max(int((window + 1) * window_seconds - now), 1)
    return None


def client_ip(request) -> str | None:
    """The address a per-IP limit counts. REMOTE_ADDR only: behind a proxy, per-IP limits need the
    proxy's own handling (no forwarded header is trusted here)."""
    return request.META.get("REMOTE_ADDR") or None
