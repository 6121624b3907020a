"""Coalesced enqueueing: under a burst, one waiting message drains the work of many requests.

A request stores its work in PostgreSQL, then `enqueue_coalesced` sends the draining task only if
no message for the same flag is already waiting. The task calls `coalesced_release` before it
reads the pending rows, so work committed after that moment sends a new message. The flag expires
after `hold_seconds`, so a lost message holds nothing back for long, and the beat sweepers find
whatever is left. Without a shared cache (no REDIS_URL) every call sends a message: a flag in one
process's memory could not be released by the worker.
"""

import contextlib
import logging

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


def _key(flag: str) -> str:
    return f"coalesced:{flag}"


def enqueue_coalesced(task, *, flag: str, args: tuple = (), hold_seconds: int = 10) -> bool:
    """Sends `task` with `args` unless a message for `flag` is already waiting. Returns whether a
    message was sent; a broker failure is logged and left to the sweeper."""
    shared = bool(settings.REDIS_URL)
    try:
        # The work is stored already: no failure here may turn the request into an error.
        if shared and not task.app.conf.task_always_eager and not cache.add(_key(flag), 1, timeout=hold_seconds):
            return False
        task.apply_async(args=list(args), retry=False)
    except Exception as error:  # noqa: BLE001 - any broker failure only delays the work
        if shared:
            # If Redis itself is down, the flag expires on its own.
            with contextlib.suppress(Exception):
                cache.delete(_key(flag))
        logger.warning("could not enqueue %s for %s (%s); the sweeper will retry", task.name, flag, error)
        return False
    return True


def coalesced_release(flag: str) -> None:
    """Called by the task before it reads its pending work."""
    if settings.REDIS_URL:
        cache.delete(_key(flag))
