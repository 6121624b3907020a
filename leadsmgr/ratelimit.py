"""Fixed-window request counters in the cache (Redis when REDIS_URL is set, so every web worker
shares them; per process otherwise)."""

import time

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache


def over_limit(name: str, limit: int, window_seconds: int = 60) -> int | None:
    """Counts one request against `name`; returns the seconds until the window resets when the
    count is over `limit`, else None."""
    return over_limits((name, limit), window_seconds=window_seconds)


def over_limits(*limits: tuple[str, int], window_seconds: int = 60) -> int | None:
    """Counts one request against each (name, limit) — in one Redis round trip — and returns the
    seconds until the window resets when any count is over its limit, else None. A limit of 0 or
    less is unlimited and not counted."""
    limits = tuple((name, limit) for name, limit in limits if limit > 0)
    if not limits:
        return None
    now = time.time()
    window = int(now // window_seconds)
    keys = [f"ratelimit:{name}:{window}" for name, _limit in limits]
    backend = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(backend, RedisCache):
        counts = _redis_counts(backend, keys, window_seconds + 1)
    else:
        counts = [_cache_count(backend, key, window_seconds + 1) for key in keys]
    if any(count > limit for count, (_name, limit) in zip(counts, limits, strict=True)):
        return max(int((window + 1) * window_seconds - now), 1)
    return None


def _redis_counts(backend: RedisCache, keys: list[str], timeout: int) -> list[int]:
    """SET NX opens a window's counter with its expiry, INCR counts: the same keys and values
    `cache.add` / `cache.incr` would write, for every key in one pipeline."""
    # leadsmgr.cache's backend keeps one redis client per pool: asking for it builds nothing.
    pipeline = backend._cache.get_client(write=True).pipeline(transaction=False)
    for key in keys:
        full_key = backend.make_key(key)
        pipeline.set(full_key, 0, ex=timeout, nx=True)
        pipeline.incr(full_key)
    return pipeline.execute()[1::2]


def _cache_count(backend, key: str, timeout: int) -> int:
    if backend.add(key, 1, timeout=timeout):
        return 1
    try:
        return backend.incr(key)
    except ValueError:  # expired between add and incr: this request opens the next window
        backend.add(key, 1, timeout=timeout)
        return 1


def client_ip(request) -> str | None:
    """The address a per-IP limit counts. REMOTE_ADDR only: behind a proxy, per-IP limits need the
    proxy's own handling (no forwarded header is trusted here)."""
    return request.META.get("REMOTE_ADDR") or None
