"""Workarounds for the embedded nx-27017 server, in one place: this package, a module for each.

Where nx-27017 differs from MongoDB's documented behaviour (see README, "The embedded
database"), the difference is handled here and nowhere else:

- It hands every command to a worker thread and back, though one lock lets only one run at a
  time: its process runs `serving`, which runs each command in the server's event loop. Each
  getMore also prunes the server's change table by sweeping all of it: `serving` prunes the
  same rows by an index, once the slowest stream has moved on (and freezes what the server
  has loaded out of garbage collection).
- getMore on a change stream answers at once when nothing is new (it ignores maxAwaitTimeMS),
  so a follower must pause between empty batches or it spins; and each getMore reads the
  server's change table, so it pauses as well once it has handed over a whole batch, rather
  than ask again for the empty one that would most likely follow (`IdlePacer.drained`). On
  MongoDB the server waits and `pause_after_empty_batch` never sleeps. The pause ends early
  when this process writes to the collection (`WakeOnWrite`, as the write is answered, so that
  the follower asks before the writer goes on to render its answer), or when another app
  process on the same server says it did (`Peers`: a datagram on loopback, since nx-27017 is
  only ever on this machine).
- After a restart it serves empty batches for cursors it no longer knows, and records changes
  only once someone watches again: followers reopen after the driver loses the server (`Outages`).
- Resume tokens look like {"_data": "nx:<n>"}, n counting the server's changes; a made-up
  cursor is not refused, so `cannot_replay` checks it. Only the last RETAINED_CHANGES changes
  of a collection are kept: a replay that reaches that many may have lost older ones.
- A filter with a top-level `$and`, `$or` or `$not`, or a range on `_id`, is read row by row
  in Python (every document of the collection, decoded); equality and `$in` on a field use no
  index, while a range does. So `indexed_equal` writes equality as a one-value range (MongoDB
  plans it like equality), and search asks one room at a time with one word in the filter
  (data/words.py). A sort by that room too, then time, lets SQLite walk the room's
  (room_id, created_at) index newest first and stop at the limit; by time alone it sorts every
  match of the room first.
- A change event's fullDocument encodes ObjectIds as {"__neosqlite_objectid__": true, "id":
  ...} and dates as {"$date": "..."} (and booleans set by $set as 0 or 1, which the models read
  as MongoDB's): `decoded` turns it back into the document MongoDB would give.
"""

from webapp.data.nx_compat.documents import decoded
from webapp.data.nx_compat.outages import Outages, outages
from webapp.data.nx_compat.pacing import IDLE_PAUSES_SECS, IdlePacer
from webapp.data.nx_compat.queries import indexed_equal
from webapp.data.nx_compat.tokens import (
    RETAINED_CHANGES,
    cannot_replay,
    is_nx_token,
    replay_limit,
    token_sort_key,
)
from webapp.data.nx_compat.waking import (
    PEERS_COLLECTION,
    Peers,
    WakeOnWrite,
    join_peers,
    leave_peers,
    wake_on_write,
)

__all__ = [
    "IDLE_PAUSES_SECS",
    "PEERS_COLLECTION",
    "RETAINED_CHANGES",
    "IdlePacer",
    "Outages",
    "Peers",
    "WakeOnWrite",
    "cannot_replay",
    "decoded",
    "indexed_equal",
    "is_nx_token",
    "join_peers",
    "leave_peers",
    "outages",
    "replay_limit",
    "token_sort_key",
    "wake_on_write",
]
