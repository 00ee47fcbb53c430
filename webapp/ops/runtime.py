"""The process itself: garbage collection tuned for a long-lived heap, and measured, with the
event loop's lag; and memory the process frees given back to the system.

A full collection walks every object the process holds; with thousands of open streams that
is a pause of tens of milliseconds that every delivery waits behind. What exists once the app
has started (modules, templates, the caches' first entries) is frozen out of collection, and
the youngest generation is collected less often; each pause, and how late the loop wakes, is
recorded (webapp/ops/metrics.py).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
from typing import Any

from webapp.ops.metrics import GC_PAUSE_SECONDS, LOOP_LAG_SECONDS

log = logging.getLogger(__name__)

GC_THRESHOLDS = (20_000, 20, 20)  # allocations before a young collection; young, middle ones
LAG_EVERY_SECS = 1.0  # how often the loop's lag is taken
LAG_LOGGED_SECS = 0.25  # a lag this long is logged as well
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt() parameters
THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value for both, kept


class _GcTimer:
    """Times every collection, by generation."""

    def __init__(self) -> None:
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            GC_PAUSE_SECONDS.labels(str(info.get("generation", "?"))).observe(
                time.perf_counter() - self._started
            )


_timer = _GcTimer()


def tune_gc() -> None:
    """After start-up: what exists now is never collected again, and collections are rarer."""
    if _timer not in gc.callbacks:
        gc.callbacks.append(_timer)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def give_back_freed_memory() -> bool:
    """Blocks of THRESHOLD_BYTES and more are mapped on their own and unmapped when freed,
    and the heap gives back what is free at its top past as much, for good (glibc, Linux);
    False where that cannot be set.

    Left to itself, glibc raises the first threshold to the size of any such block freed, and
    the second to twice that. One password hash takes 19 MiB (actions/passwords.py): after a
    burst of sign-ins, a process kept about 40 MiB it had freed (a benchmark's 1,004
    registrations: 104 MiB in all, against 66 MiB so).
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    return bool(
        mallopt
        and mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES)
        and mallopt(M_TRIM_THRESHOLD, THRESHOLD_BYTES)
    )


async def watch_loop_lag() -> None:
    """For ever: how late the event loop wakes from a sleep of LAG_EVERY_SECS."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time()
        await asyncio.sleep(LAG_EVERY_SECS)
        lag = loop.time() - asked - LAG_EVERY_SECS
        LOOP_LAG_SECONDS.observe(max(lag, 0.0))
        if lag > LAG_LOGGED_SECS:
            log.warning("The event loop woke %.0f ms late", lag * 1000)
