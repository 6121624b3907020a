"""Coalesced enqueueing: under a burst, one waiting message drains the work of many requests.

A request stores its work in PostgreSQL, then `enqueue_coalesced` sends the draining task only if
no message for the same flag is already waiting. The task (`drain_coalesced`) releases the flag
before it reads the pending rows, so work committed after that moment sends a new message. The flag
expires after `hold_seconds`, so a lost message holds nothing back for long, and the beat sweepers
find whatever is left. Without a shared cache (no REDIS_URL) every call sends a message: a flag in
one process's memory could not be released by the worker.

Asking Redis costs a request ~0.13 ms of CPU and Redis some more, on every Track API and queued
webhook request. So a process that saw a flag held, because it set it or found it set, does not ask
again for COALESCE_WINDOW_SECONDS. Such a skip is safe because every drain that finishes reads the
pending rows once more after that window has passed since its release:
- the skip happens at d, less than the window after the check at m;
- the flag was held at m, so a message was waiting then, and its task releases at r ≥ m;
- that task's last read comes at or after r + window > d, and sees the work committed before d.
A drain that stops with work left sends a new message (asking Redis, not its memory) instead: that
message's task, or the one of a message sent since, releases later still, and the same holds.
"""

import contextlib
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

COALESCE_WINDOW_SECONDS = 0.05

# flag -> time.monotonic() of this process's last check that found it held (or set it).
_held_at: dict[str, float] = {}


def _key(flag: str) -> str:
    return f"coalesced:{flag}"


def _coalescing(task) -> bool:
    return bool(settings.REDIS_URL) and not task.app.conf.task_always_eager


def enqueue_coalesced(task, *, flag: str, args: tuple = (), hold_seconds: int = 10) -> bool:
    """Sends `task` with `args` unless a message for `flag` is already waiting (or this process saw
    one waiting within the window). Returns whether a message was sent; a broker failure is logged
    and left to the sweeper."""
    shared = _coalescing(task)
    try:
        # The work is stored already: no failure here may turn the request into an error.
        if shared:
            checked_at = time.monotonic()
            if checked_at - _held_at.get(flag, float("-inf")) < COALESCE_WINDOW_SECONDS:
                return False
            if not cache.add(_key(flag), 1, timeout=hold_seconds):
                _remember_held(flag, checked_at)
                return False
        task.apply_async(args=list(args), retry=False)
        if shared:
            _remember_held(flag, checked_at)
    except Exception as error:  # noqa: BLE001 - any broker failure only delays the work
        if shared:
            _held_at.pop(flag, None)
            # If Redis itself is down, the flag expires on its own.
            with contextlib.suppress(Exception):
                cache.delete(_key(flag))
        logger.warning("could not enqueue %s for %s (%s); the sweeper will retry", task.name, flag, error)
        return False
    return True


def _remember_held(flag: str, checked_at: float) -> None:
    if len(_held_at) >= 1024:  # one entry per workspace and kind of work: forget the stale ones
        # list() copies the items in one step: a web process's other threads may add a flag meanwhile.
        for stale in [key for key, at in list(_held_at.items()) if checked_at - at >= COALESCE_WINDOW_SECONDS]:
            _held_at.pop(stale, None)
    _held_at[flag] = checked_at


def drain_coalesced(task, *, flag: str, args: tuple, drain: Callable[[], tuple[int, bool]]) -> int:
    """Runs a coalesced task. `drain` does a bounded amount of work and returns (how much it did,
    whether it finished). Releases the flag and drains; when the work is finished, drains once more
    with a first read no earlier than the window after the release, for requests that skipped
    sending on what they saw within the window (see the module's docstring). Work left over goes to
    a new message, whose task does the same, instead of keeping this one busy (or running beside
    it). Returns how much was done."""
    if settings.REDIS_URL:
        cache.delete(_key(flag))  # before the first read: work stored from now on sends a message
    released_at = time.monotonic()
    done, finished = drain()
    if finished and _coalescing(task):
        time.sleep(max(0.0, released_at + COALESCE_WINDOW_SECONDS - time.monotonic()))
        more, finished = drain()
        done += more
    if not finished:
        # Asks Redis whatever this process saw lately: its own memory of the flag may come from
        # the message this very task is running.
        _held_at.pop(flag, None)
        enqueue_coalesced(task, flag=flag, args=args)
    return done
