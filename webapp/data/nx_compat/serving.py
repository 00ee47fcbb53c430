"""The embedded server's own process: nx-27017, running each command in its event loop,
pruning its change table by an index, and with what it loads frozen out of collection.

nx-27017 hands every command to a worker thread and back (`asyncio.to_thread`), though one
lock lets only one command at a time near the SQLite file. The two hops are over a third of
a small command's round trip (0.37 ms with them, 0.23 ms without, from a quiet client), and
the workers fight the loop for the GIL while it reads the next requests. Its commands never
wait for anything (a change stream's getMore answers at once: pacing.py), so running them in
the loop, one after another as the lock would have them, gives the same answers sooner.

Every getMore on a change stream also prunes the server's change table: the rows every open
stream of the collection has passed go, but for the newest thousand (the changes a stream may
resume from). nx-27017 does it with one statement that sweeps the whole table, which has no
index by collection, on every getMore, empty or not: 1.3 ms with 8,000 rows, a pause for every
other command. Here an index by collection and id finds the thousandth newest row of the
collection, the rows below it and the streams' slowest position go (59 us), and nothing is
tried until that position has moved.

What exists once its modules are loaded is frozen out of garbage collection, as in the app
(ops/runtime.py): a full collection, which holds every command, took 9 ms (one in a fan-out
run of 50 s, as its streams opened) and now takes about 1 ms. Young collections keep Python's
own pace: at the app's (one every 20,000 allocations, not 700) each took 4.5 ms here, against
0.25.

Run as `python -m webapp.data.nx_compat.serving`, with nx-27017's own arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sqlite3
import sys
import types
from collections.abc import Callable
from typing import Any, TypeVar

from nx_27017 import changestream, nx_27017, server

T = TypeVar("T")


async def _in_the_loop(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    return func(*args, **kwargs)


class _AsyncioInTheLoop(types.ModuleType):
    """asyncio as nx-27017's server module sees it: the same, but for `to_thread`."""

    to_thread = staticmethod(_in_the_loop)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


def commands_in_the_loop() -> None:
    """nx-27017's server, from now on in this process, runs each command where it reads it."""
    if not hasattr(server, "asyncio") or not hasattr(server, "handle_client"):
        raise RuntimeError("nx-27017's server module has changed: see webapp/data/nx_compat")
    server.asyncio = _AsyncioInTheLoop("asyncio")  # type: ignore[attr-defined]


_PRUNED_BELOW, _INDEXED = "nx_compat_pruned_below", "nx_compat_indexed"  # kept on a tracker
_BY_COLLECTION = (
    "CREATE INDEX IF NOT EXISTS nx_compat_changes_by_collection "
    "ON _neosqlite_changestream (collection_name, id)"
)
_NTH_NEWEST = (
    "SELECT id FROM _neosqlite_changestream WHERE collection_name = ? "
    "ORDER BY id DESC LIMIT 1 OFFSET ?"
)
_BELOW = "DELETE FROM _neosqlite_changestream WHERE collection_name = ? AND id < ?"


def _prune(self: changestream.ChangeStreamManager, db_name: str, collection_name: str) -> None:
    """What nx-27017's own `_prune` deletes, found by an index, once the slowest open stream of
    the collection has moved on (until then it deletes nothing new)."""
    with self._lock:
        tracker = self._trackers.get((db_name, collection_name))
        marks = [
            stream._watermark
            for stream in self._streams.values()
            if not stream._closed
            and stream.db_name == db_name
            and stream.collection_name == collection_name
        ]
    if tracker is None or not marks:
        return
    floor = min(marks)
    if floor <= 0 or tracker.get(_PRUNED_BELOW) == floor:
        return
    db = tracker["collection"].db
    with contextlib.suppress(sqlite3.Error):  # as nx-27017's: tried again when the floor moves
        if not tracker.get(_INDEXED):
            db.execute(_BY_COLLECTION)
            tracker[_INDEXED] = True
        retained = changestream._RESUME_RETENTION_ROWS
        oldest_kept = db.execute(_NTH_NEWEST, (collection_name, retained - 1)).fetchone()
        if oldest_kept is not None:
            db.execute(_BELOW, (collection_name, min(floor, int(oldest_kept[0]))))
        tracker[_PRUNED_BELOW] = floor


def change_table_by_index() -> None:
    """nx-27017's change streams, from now on in this process, prune by `_prune` above."""
    manager = changestream.ChangeStreamManager
    if not hasattr(manager, "_prune") or not hasattr(changestream, "_RESUME_RETENTION_ROWS"):
        raise RuntimeError("nx-27017's change streams have changed: see webapp/data/nx_compat")
    manager._prune = _prune  # type: ignore[method-assign]


def freeze_what_is_loaded() -> None:
    """What exists now (the modules loaded) is never collected again."""
    gc.collect()
    gc.freeze()


def main() -> None:
    commands_in_the_loop()
    change_table_by_index()
    freeze_what_is_loaded()
    sys.argv[0] = "nx-27017"
    nx_27017.main()


if __name__ == "__main__":
    main()
