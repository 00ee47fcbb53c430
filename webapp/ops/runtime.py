"""The process itself: garbage collection tuned for a long-lived heap, and measured, with the
event loop's lag.

A full collection walks every object the process holds; with thousands of open streams that
is a pause of tens of milliseconds that every delivery waits behind. What exists once the app
has started (modules, templates, the caches' first entries) is frozen out of collection, and
the youngest generation is collected less often; each pause, and how late the loop wakes, is
recorded (webapp/ops/metrics.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

from webapp.ops.metrics import GC_PAUSE_SECONDS, LOOP_LAG_SECONDS

log = logging.getLogger(__name__)

GC_THRESHOLDS = (20_000, 20, 20)  # allocations before a young collection; young, middle ones
LAG_EVERY_SECS = 1.0  # how often the loop's lag is taken
LAG_LOGGED_SECS = 0.25  # a lag this long is logged as well


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
