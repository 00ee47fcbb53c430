"""Following one collection's change stream for ever, resuming after the last change handled.

A change is handled once, in commit order; a change that cannot be handled (a bug) is logged
and skipped, never stopping the stream; a database error reopens the stream after a backoff
from where it was. Down too long to resume (the history is gone), it starts afresh and tells
its owner, who makes every page catch up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from odmantic import Model
from pymongo.errors import OperationFailure, PyMongoError

from webapp.data import nx_compat
from webapp.data._query import get_by_id
from webapp.data.connection import Db

log = logging.getLogger(__name__)

AWAIT_SECS = 1.0  # how long the server may hold an empty getMore
BACKOFF_SECS = (0.2, 0.5, 1.0, 2.0, 5.0)
HISTORY_LOST_CODES = (260, 280, 286)  # InvalidResumeToken, ChangeStreamFatalError, HistoryLost

Change = Mapping[str, Any]


class Follower:
    """One collection's change stream, from `position` on. `handle` gets each change and, when
    `load`, its document (once per change per process)."""

    def __init__(
        self,
        db: Db,
        model: type[Model],
        pipeline: list[dict[str, Any]],
        *,
        load: bool,
        handle: Callable[[Change, Model | None], Awaitable[None]],
        history_lost: Callable[[], None],
        caught_up: Callable[[str], None] = lambda position: None,
    ) -> None:
        self.db = db
        self.model = model
        self.collection = str(model.__collection__)
        self.pipeline = pipeline
        self.load = load
        self.handle = handle
        self.history_lost = history_lost
        self.caught_up = caught_up  # told the position whenever nothing more is waiting
        self.position = ""  # the resume token of the last change handled, or of the last look
        self.ready = asyncio.Event()  # set once the stream is open and has a position

    async def run(self) -> None:
        pacer = nx_compat.IdlePacer(AWAIT_SECS, collection=self.collection)
        failures = 0
        while True:
            try:
                await self._follow(pacer)
                failures = 0  # the embedded server came back: reopened at once
            except Exception as exc:  # the database, or a surprise: log it and carry on
                if not isinstance(exc, PyMongoError):
                    log.exception("Change stream on %s stopped unexpectedly", self.collection)
                if isinstance(exc, OperationFailure) and exc.code in HISTORY_LOST_CODES:
                    log.warning("Change stream on %s cannot resume (%s)", self.collection, exc)
                    self.position = ""
                    self.history_lost()
                delay = BACKOFF_SECS[min(failures, len(BACKOFF_SECS) - 1)]
                failures += 1
                log.warning(
                    "Change stream on %s failed (%s); retrying in %ss", self.collection, exc, delay
                )
                await asyncio.sleep(delay)

    async def _follow(self, pacer: nx_compat.IdlePacer) -> None:
        """Until the embedded server restarts under it (or an error)."""
        loop = asyncio.get_running_loop()
        server_returns = nx_compat.server_returns.count
        async with await self.db[self.collection].watch(
            self.pipeline,
            start_after={"_data": self.position} if self.position else None,
            max_await_time_ms=int(AWAIT_SECS * 1000),
            full_document="updateLookup" if self.load else None,
        ) as changes:
            while True:
                asked_at = loop.time()
                change = await changes.try_next()
                if change is None:
                    if changes.resume_token is not None:
                        self.position = changes.resume_token["_data"]
                        self.caught_up(self.position)
                    self.ready.set()
                    if nx_compat.server_returns.count != server_returns:
                        return  # a restarted embedded server: reopen from our position
                    await pacer.pause_after_empty_batch(loop.time() - asked_at)
                    continue
                pacer.busy()
                await self._handle(change)
                self.position = change["_id"]["_data"]

    async def _document(self, change: Change) -> Model | None:
        """The changed document, as the change carries it (an insert's, or an update's looked
        up by the server), else loaded by its key (gone by then: None)."""
        full = change.get("fullDocument")
        if full is not None:
            return self.model.model_validate_doc(nx_compat.decoded(full))
        return await get_by_id(self.db, self.model, object_id=change["documentKey"]["_id"])

    async def _handle(self, change: Change) -> None:
        try:
            doc = await self._document(change) if self.load else None
            await self.handle(change, doc)
        except PyMongoError:
            raise
        except Exception:  # a bug in one change must not stop the stream
            log.exception("Could not handle a change on %s", self.collection)
