"""The embedded server's own process: nx-27017, running each command in its event loop.

nx-27017 hands every command to a worker thread and back (`asyncio.to_thread`), though one
lock lets only one command at a time near the SQLite file. The two hops are over a third of
a small command's round trip (0.37 ms with them, 0.23 ms without, from a quiet client), and
the workers fight the loop for the GIL while it reads the next requests. Its commands never
wait for anything (a change stream's getMore answers at once: pacing.py), so running them in
the loop, one after another as the lock would have them, gives the same answers sooner.

Run as `python -m webapp.data.nx_compat.serving`, with nx-27017's own arguments.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Callable
from typing import Any, TypeVar

from nx_27017 import nx_27017, server

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


def main() -> None:
    commands_in_the_loop()
    sys.argv[0] = "nx-27017"
    nx_27017.main()


if __name__ == "__main__":
    main()
