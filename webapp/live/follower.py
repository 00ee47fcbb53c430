"""Following one collection's change stream for ever, resuming after the last change handled.

A change is handled once, in commit order; a change that cannot be handled (a bug) is logged
and skipped, never stopping the stream; a database error reopens the stream after a backoff
from where it was. Down too long to resume (the history is gone), it starts afresh and tells
its owner, who makes every page catch up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bson import Timestamp
from odmantic import Model
from pymongo.errors import OperationFailure, PyMongoError

from webapp.data import nx_compat
from webapp.data._query import get_by_id
from webapp.data.connection import Db
from webapp.ops import metrics

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
        self._opened_after = -1  # the outages counted when the stream last opened

    @property
    def live(self) -> bool:
        """Whether the stream is open on the server as it is now: a change committed now will
        be seen. (Not so from an outage until the stream reopens: the embedded server records
        no change while nobody watches, nx_compat.Outages.)"""
        return self._opened_after == nx_compat.outages.count

    async def run(self) -> None:
        pacer = nx_compat.IdlePacer(AWAIT_SECS, collection=self.collection)
        failures = 0
        while True:
            try:
                await self._follow(pacer)
                failures = 0  # the embedded server came back: reopened at once
            except Exception as exc:  # the database, or a surprise: log it and carry on
                self._opened_after = -1
                if not isinstance(exc, PyMongoError):
                    log.exception("Change stream on %s stopped unexpectedly", self.collection)
                if isinstance(exc, OperationFailure) and exc.code in HISTORY_LOST_CODES:
                    log.warning("Change stream on %s cannot resume (%s)", self.collection, exc)
                    self.position = ""
                    self.history_lost()
                delay = BACKOFF_SECS[min(failures, len(BACKOFF_SECS) - 1)]
                failures += 1
                metrics.CHANGE_STREAM_RESTARTS.labels(self.collection).inc()
                log.warning(
                    "Change stream on %s failed (%s); retrying in %ss", self.collection, exc, delay
                )
                await asyncio.sleep(delay)

    async def _follow(self, pacer: nx_compat.IdlePacer) -> None:
        """Until the embedded server restarts under it (or an error)."""
        loop = asyncio.get_running_loop()
        outages = nx_compat.outages.count
        async with await self.db[self.collection].watch(
            self.pipeline,
            start_after={"_data": self.position} if self.position else None,
            max_await_time_ms=int(AWAIT_SECS * 1000),
            full_document="updateLookup" if self.load else None,
        ) as changes:
            self._opened_after = outages
            while True:
                asked_at = loop.time()
                change = await changes.try_next()
                if change is None:
                    if changes.resume_token is not None:
                        self.position = changes.resume_token["_data"]
                        self.caught_up(self.position)
                    self.ready.set()
                    if nx_compat.outages.count != outages:
                        self._opened_after = -1
                        return  # a restarted embedded server: reopen from our position
                    await pacer.pause_after_empty_batch(loop.time() - asked_at)
                    continue
                pacer.busy()
                self._note_lag(change)
                await self._handle(change)
                self.position = change["_id"]["_data"]
                if nx_compat.outages.count != outages:
                    return  # the server was lost meanwhile: reopen from here
                await pacer.pause_if_drained(changes)

    def _note_lag(self, change: Change) -> None:
        """How long ago the change was committed (by the database's clock), if it says."""
        made = change.get("wallTime")
        if isinstance(made, datetime):
            lag = time.time() - made.replace(tzinfo=made.tzinfo or UTC).timestamp()
        elif isinstance(cluster := change.get("clusterTime"), Timestamp):
            lag = time.time() - cluster.time
        else:
            return
        metrics.CHANGE_LAG_SECONDS.labels(self.collection).set(max(0.0, lag))

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
