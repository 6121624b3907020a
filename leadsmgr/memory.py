"""Values a process keeps for a few seconds in front of a shared source (the database, Redis).

For lookups that every public request makes (a webhook by its key, a tracking site by its key),
where even a Redis round trip and unpickling cost a noticeable share of the request. Each owner
says how stale a copy may be and how a change reaches other processes. Per process: no lock is
needed (a dict's get, set and pop are atomic under the GIL) and nothing is shared.
"""

import time


class ProcessMemory:
    def __init__(self, *, size: int):
        self.size = size
        # key -> (time.monotonic() at which it expires, value)
        self._entries: dict[str, tuple[float, object]] = {}

    def get(self, key: str, default=None):
        """The value kept under `key`, or `default` when there is none or it has expired."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return default
        return entry[1]

    def put(self, key: str, value, *, seconds: float) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()  # rarely full: one entry per active key
        self._entries[key] = (time.monotonic() + seconds, value)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)
