"""Fan-out benchmark: the app beside a floor of its own, with the same readers and the same clock.

    .venv/bin/python -m benchmarks.fanout                  # everything, full size, floor and app
    .venv/bin/python -m benchmarks.fanout --quick          # small sizes, for development
    .venv/bin/python -m benchmarks.fanout --only fanout,idle --streams 100,500
    .venv/bin/python -m benchmarks.fanout --target floor   # one of them only (floor or app)

The floor is benchmarks/bare.py, the least this architecture can cost: a bare ASGI app on
uvicorn + httptools, one change stream, each message encoded once and written to every open
stream from one task. The app is started as the Procfile's `web:` line starts it. Both run on
one database server: an embedded nx-27017 in a temporary folder (or MONGODB_URI, with a scratch
database dropped at the end); the floor writes to a database of its own beside the app's (the
app's name + "_floor"), dropped after the floor's run.

First the database alone: insert_one -> a collection change stream, the hop under every
delivery (`--only hop`). Then the floor and then the app, one at a time, each through the same
scenarios with the same reader processes. Each registers the accounts it needs (each stream is
its own account, reused from one scenario to the next; registering signs an account in, and its
session token serves as its Bearer token, or with --sign-in one from POST /api/token): the
accounts are registered twice, under the same indexes, so the same streams open on both: on
the floor, which checks no token (quick), and on the app, which needs real ones. Then:

- posting: 20 concurrent senders for 10 s, each over several accounts so that none nears the
  per-user posting limit: posts/s and POST latency;
- then with 100, 500, 1,000 and 2,000 streams open in turn (opened 50 at a time):
  - 100: memory (VmRSS), idle CPU of the server and the database for 10 s, and fan-out of
    200 public messages at 20/s to every stream;
  - 500 (the app only): a second app process on the same database with 500 streams of its
    own; public messages posted to the first are timed through each (the second's crossed
    processes); then the second one's streams close and it stops;
  - 1,000: memory again (so the cost of one more idle stream), fan-out, and (the app only)
    500 direct-message pairs at 50 messages/s in all (each message reaches both ends);
  - 2,000: fan-out;
- last, how long the server takes to stop after SIGTERM with its streams open.

Search (the app only; benchmarks/search.py): before the app starts, 100 group rooms of 1,000
messages each go straight into its database, made as the app makes them. Once the accounts
are registered, a searcher registers too, joins 10 of the rooms, and asks GET /search for two
words (some only the start of a word) as the search box does, 200 times one after another,
every tenth narrowed to one room (?in=): the latency to the end of each answer, and whether
it shows what the messages hold. The scenarios after it run with those messages stored.

Before each measurement the server is left to catch up: until, for a second, no event has
arrived and the server and the database have used little CPU (at most 20 s; the table says how
long it took, or that it did not come). The floor polls the database every 2 ms even when idle,
so for it "little" is counted above what it uses idle, measured once after it starts. Every
wait is bounded, so a slow app makes a run longer but never hangs it.

A delivery's latency runs from just before its POST is written (time.time_ns()) to the
kernel's receive timestamp of the read that completed the event on the reader's socket
(SO_TIMESTAMPNS, the same clock). The streams are read by separate reader processes
(benchmarks/readers.py), whose CPU is shown beside the figures. A (stream, message) pair not
delivered within 10 s of the last post is lost; one delivered twice is doubled.

`--quick` runs the same at small sizes, `--only` picks scenarios, `--target` the floor, the
app or both. It prints progress, then one table: a row per figure, with the floor's value, the
app's, and app/floor (lower is better, unless the row says otherwise), beside the targets,
which are the app's (issue 16); and writes the same rows as JSON (it prints the path). It never
judges the figures: it exits 0 when it ran, 1 when it could not (or gave up after
--max-minutes, printing what it had). Every process it starts is stopped on the way out, after
an error or Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import FrameType

from pymongo.errors import PyMongoError

from benchmarks import floor
from benchmarks import search as searching
from benchmarks.clients import (
    Account,
    Pool,
    Post,
    RequestFailed,
    dm_path,
    post_message,
    public_path,
    register_account,
    register_accounts,
)
from benchmarks.figures import (
    SUBJECTS,
    Figure,
    Tally,
    latency_figures,
    percentile,
    rows,
    table,
    write_json,
)
from benchmarks.readers import Readers, ReaderStuck, Report, StreamSpec
from benchmarks.stack import (
    ROOT,
    App,
    Database,
    app,
    cpu_seconds,
    database,
    database_name,
    drop_database,
    load_average,
    log_problems,
    procfile_web_command,
    raise_open_files_limit,
    rss_kb,
    with_database,
)
from webapp.rules import formatting

SCENARIOS = ("hop", "render", "search", "posting", "memory", "idle", "fanout", "dm", "two")
ALIASES = {"floor": "hop"}  # the hop's old name, from before the floor was an app
FLOOR_SCENARIOS = frozenset({"posting", "memory", "idle", "fanout"})  # what the floor can do
FLOOR_COMMAND = 'python -m benchmarks.bare --port "$PORT"'
JSON_PATH = ROOT / "data" / "bench" / "fanout-latest.json"
READER_PROCESSES = 2
REGISTER_CONCURRENCY = 8
OPEN_BATCH = 50  # streams opened at a time
OPEN_TIMEOUT_SECS = 20.0  # for one batch to get its ": connected"
QUIET_SECS = 1.0  # no event (and little CPU) for this long: the server has caught up
SETTLE_SECS = 20.0  # the longest wait for that
BUSY_PERCENT = 15.0  # server and database CPU, in % of a core (above idle), counted as quiet
IDLE_SAMPLE_SECS = 2.0  # how long the floor's idle CPU is measured after it starts
DRAIN_SECS = 10.0  # after the last post: what has not arrived by then is lost
WARM_UP_SECS = 3.0  # the longest wait for the warm-up message
POLL_SECS = 0.25
PACED_ACCOUNT_RATE = 5.0  # posts/s per account for paced senders (the limit: 10/s sustained)
BURST_ACCOUNT_RATE = 8.0  # posts/s per account at most, for the posting scenario
# So that one sender may reach 320 posts/s: the senders' pace stays well above the floor's
# posts/s, which limits nobody (with 10 accounts each, 20 senders were capped at 1,600/s).
POSTING_ACCOUNTS_PER_SENDER = 40
MAX_IN_FLIGHT = 64  # paced posts waiting for an answer at once; beyond, the pace slips
MEMORY = "memory: VmRSS of the server process"
NEAR = "near the floor"
FANOUT_TARGETS = {  # open streams -> (p50, p99), issue 16
    100: (NEAR, NEAR),
    1000: ("<= 1.15x floor", "<= 1.3x floor"),
    2000: ("<= 1.15x floor", "<= 1.3x floor"),
}


SEARCH = searching.Sizes(rooms=100, per_room=1000, member_of=10, queries=200, within_every=10)


@dataclass(frozen=True)
class Sizes:
    fanout_streams: tuple[int, ...] = (100, 1000, 2000)
    fanout_messages: int = 200
    fanout_rate: float = 20.0
    dm_pairs: int = 500
    dm_messages: int = 500
    dm_rate: float = 50.0
    two_process_streams: int = 1000
    two_process_messages: int = 200
    memory_streams: tuple[int, int] = (100, 1000)
    idle_streams: int = 100
    idle_secs: float = 30.0  # CPU is counted in 10 ms ticks: a long window to see 0.5%
    posting_senders: int = 20
    posting_secs: float = 10.0
    floor_hops: int = 200
    search: searching.Sizes = SEARCH


FULL = Sizes()
QUICK = Sizes(
    fanout_streams=(50, 100),
    fanout_messages=40,
    dm_pairs=50,
    dm_messages=100,
    two_process_streams=100,
    two_process_messages=40,
    memory_streams=(50, 100),
    idle_streams=50,
    idle_secs=3.0,
    posting_senders=10,
    posting_secs=3.0,
    floor_hops=50,
    search=searching.Sizes(rooms=100, per_room=100, member_of=10, queries=50, within_every=10),
)


# CPU over a window


@dataclass
class CpuWindow:
    """CPU time of some processes from the moment this is made; 100% is one core."""

    pids: Mapping[str, int | None]
    started: float = field(default_factory=time.monotonic)
    start: dict[str, float | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start = {label: _cpu(pid) for label, pid in self.pids.items()}

    def percent(self) -> dict[str, float | None]:
        wall = time.monotonic() - self.started
        result: dict[str, float | None] = {}
        for label, pid in self.pids.items():
            before, after = self.start[label], _cpu(pid)
            if before is None or after is None or wall <= 0:
                result[label] = None
            else:
                result[label] = (after - before) / wall * 100
        return result


def _cpu(pid: int | None) -> float | None:
    return cpu_seconds(pid) if pid else None


def cpu_text(percents: Mapping[str, float | None]) -> str:
    def share(value: float | None) -> str:
        if value is None:
            return "?"
        return f"{value:.2f}%" if value < 1 else f"{value:.0f}%"  # (idle is a fraction of 1%)

    return ", ".join(f"{label} {share(value)}" for label, value in percents.items())


# The benchmark's state


@dataclass
class Bench:
    """The database, the readers and the figures, and the run under way: the subject measured
    ("floor" or "app"), its running processes, accounts and open streams."""

    sizes: Sizes
    stack: contextlib.ExitStack
    scratch: Path
    db: Database
    readers: Readers
    secret_key: str = field(default_factory=lambda: "bench-" + secrets.token_hex(24))
    figures: list[Figure] = field(default_factory=list)
    servers: list[tuple[str, App]] = field(default_factory=list)  # all started: (subject, it)
    ended_why: dict[str, str] = field(default_factory=dict)  # subject -> streams ended, and why
    # The run under way (begin() starts afresh)
    subject: str = "app"
    apps: list[App] = field(default_factory=list)  # [0] is measured; app #2 joins for a while
    pools: list[Pool] = field(default_factory=list)  # for posting, one per app
    accounts: list[Account] = field(default_factory=list)
    senders: list[Account] = field(default_factory=list)  # paced public posts; no stream
    open: dict[int, int] = field(default_factory=dict)  # stream (account) index -> app number
    tally: Tally | None = None  # the scenario being measured
    idle_percent: float = 0.0  # the server's and database's CPU when idle (the floor polls)
    last_event_ns: int = 0  # when the newest event arrived
    last_stir_ns: int = 0  # when the benchmark last opened, closed or posted something
    warm: bool = False  # a message has been delivered through app #1 already
    ended: list[tuple[int, str]] = field(default_factory=list)
    reconnects: int = 0
    untimed_reads: int = 0

    def begin(self, subject: str) -> None:
        """Starts the run of one subject: nothing running, no accounts, no stream open."""
        assert not any(server.running for server in self.apps)
        assert not self.open
        self.subject = subject
        self.apps, self.pools, self.accounts, self.senders = [], [], [], []
        self.tally, self.idle_percent, self.warm = None, 0.0, False
        self.last_event_ns = self.last_stir_ns = 0
        self.ended, self.reconnects, self.untimed_reads = [], 0, 0

    def say(self, text: str) -> None:
        print(f"[{self.subject}] {text}", flush=True)

    def add(
        self,
        section: str,
        name: str,
        value: float | int | str | None,
        unit: str = "",
        target: str = "",
    ) -> None:
        self.figures.append(Figure(section, name, value, unit, target, self.subject))

    def extend(self, figures: Iterable[Figure]) -> None:
        self.figures += [replace(figure, subject=self.subject) for figure in figures]

    @property
    def floor_uri(self) -> str:
        """The floor's database: beside the app's, so that the app never sees its messages."""
        return with_database(self.db.uri, database_name(self.db.uri) + "_floor")

    def start_app(self) -> App:
        number = len(self.apps) + 1
        on_floor = self.subject == "floor"
        name = "floor" if on_floor else f"app #{number}"
        server = self.stack.enter_context(
            app(
                name,
                mongo_uri=self.floor_uri if on_floor else self.db.uri,
                data_dir=self.scratch / ("floor" if on_floor else f"app{number}"),
                secret_key=self.secret_key,  # one key: the tokens work on every process
                command=FLOOR_COMMAND if on_floor else None,
            )
        )
        self.apps.append(server)
        self.servers.append((self.subject, server))
        self.pools.append(Pool("127.0.0.1", server.port))
        return server

    def stop_app(self, number: int) -> None:
        """Stops an app process (its streams closed first); its figures stay."""
        self.pools[number].close()
        self.apps[number].stop()

    def cpu_window(self, *, readers: bool = True) -> CpuWindow:
        pids: dict[str, int | None] = {a.name: a.pid for a in self.apps if a.running}
        if self.db.pid:
            pids["db"] = self.db.pid
        if readers:
            pids.update((f"reader {n + 1}", pid) for n, pid in enumerate(self.readers.pids))
            pids["sender"] = os.getpid()
        return CpuWindow(pids)

    # Reading the readers

    async def poll(self) -> Report:
        """Takes the readers' news: deliveries go to the scenario being measured."""
        report = await asyncio.to_thread(self.readers.report)
        if self.tally is not None:
            self.tally.add(report.deliveries)
        self.last_event_ns = max(self.last_event_ns, report.last_event_ns)
        self.ended += report.ended
        self.reconnects += report.reconnects
        self.untimed_reads += report.untimed_reads
        return report

    def server_cpu_seconds(self) -> float:
        """CPU time used so far by the running app processes and the database together."""
        pids = [a.pid for a in self.apps if a.running] + [self.db.pid]
        return sum(cpu_seconds(pid) or 0.0 for pid in pids if pid)

    async def measure_idle(self) -> None:
        """What the server and the database use when nothing happens (the floor polls)."""
        before, started = self.server_cpu_seconds(), time.monotonic()
        await asyncio.sleep(IDLE_SAMPLE_SECS)
        wall = time.monotonic() - started
        self.idle_percent = (self.server_cpu_seconds() - before) / wall * 100
        self.say(f"idle CPU of the server and the database: {self.idle_percent:.0f}% of a core")

    async def settle(self) -> tuple[float, bool]:
        """Waits (at most SETTLE_SECS) until, for the last QUIET_SECS, no event has arrived,
        the benchmark has opened, closed or posted nothing, and the server and the database
        have used at most BUSY_PERCENT of a core above idle (a hub catching up sends nothing
        for a while); returns the wait and whether it came."""
        started = time.monotonic()
        samples = [(started, self.server_cpu_seconds())]  # (when, CPU seconds so far)
        while True:
            await self.poll()
            now = time.monotonic()
            samples.append((now, self.server_cpu_seconds()))
            window = [(t, cpu) for t, cpu in samples if t >= now - QUIET_SECS - POLL_SECS]
            (first_t, first_cpu), (last_t, last_cpu) = window[0], window[-1]
            busy = (last_cpu - first_cpu) / max(last_t - first_t, 1e-9) * 100
            silent_for = (time.time_ns() - max(self.last_event_ns, self.last_stir_ns)) / 1e9
            quiet = (
                silent_for >= QUIET_SECS
                and last_t - first_t >= QUIET_SECS
                and busy <= self.idle_percent + BUSY_PERCENT
            )
            if quiet or now - started >= SETTLE_SECS:
                return now - started, quiet
            await asyncio.sleep(POLL_SECS)

    async def settle_row(self, section: str, name: str) -> None:
        """Settles, and says in a row how long that took."""
        secs, quiet = await self.settle()
        self.add(section, name, secs if quiet else f"not within {SETTLE_SECS:g} s", "s" * quiet)

    # Streams

    async def open_streams(self, indexes: Sequence[int], app_number: int = 0) -> dict[int, str]:
        """Opens one stream per account, OPEN_BATCH at a time; returns why any failed."""
        port = self.apps[app_number].port
        failed: dict[int, str] = {}
        for first in range(0, len(indexes), OPEN_BATCH):
            batch = indexes[first : first + OPEN_BATCH]
            specs = [StreamSpec(i, self.accounts[i].token, port) for i in batch]
            connected, bad = await asyncio.to_thread(self.readers.open, specs, OPEN_TIMEOUT_SECS)
            self.open.update((index, app_number) for index in connected)
            failed.update(bad)
            self.last_stir_ns = time.time_ns()
            await self.poll()
        return failed

    async def close_streams(self, indexes: Sequence[int]) -> None:
        await asyncio.to_thread(self.readers.close, list(indexes))
        for index in indexes:
            self.open.pop(index, None)
        self.last_stir_ns = time.time_ns()

    async def streams_at(self, count: int) -> None:
        """Opens streams on app #1 until `count` are open (accounts 0, 1, ...), then settles."""
        wanted = [i for i in range(count) if i not in self.open]
        if not wanted:
            return
        section = "setup"
        started = time.monotonic()
        failed = await self.open_streams(wanted)
        opened = time.monotonic() - started
        self.add(section, f"open {len(wanted):,} streams, to {count:,}", opened, "s")
        if failed:
            reasons = "; ".join(sorted(set(failed.values())))
            self.add(section, f"  failed to open, to {count:,}", len(failed), reasons[:80])
        await self.settle_row(section, f"  then quiet after, at {count:,}")
        self.say(
            f"{len(self.open)} streams open ({len(wanted) - len(failed)} new in {opened:.1f}s)"
        )

    # Posting

    async def post_paced(
        self, jobs: Sequence[tuple[str, Account]], rate: float, pool: Pool
    ) -> list[Post]:
        """Posts job k (path, author) at start + k / rate, whether or not earlier ones answered."""
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        gate = asyncio.Semaphore(MAX_IN_FLIGHT)

        async def one(k: int, path: str, author: Account) -> Post:
            await asyncio.sleep(max(0.0, start + k / rate - loop.time()))
            async with gate:
                return await post_message(pool, path, author.token, f"bench {k} {time.time_ns()}")

        return list(await asyncio.gather(*(one(k, p, a) for k, (p, a) in enumerate(jobs))))

    async def measure(
        self,
        post: Callable[[], Awaitable[list[Post]]],
        recipients: Callable[[int], frozenset[int]],
        drain_secs: float = DRAIN_SECS,
    ) -> tuple[Tally, list[Post], dict[str, float | None]]:
        """Runs the posts, then waits for the deliveries (up to `drain_secs` after the last
        post was sent): the tally, the posts, and the CPU used meanwhile."""
        tally = self.tally = Tally()
        window = self.cpu_window()
        try:
            posts = await post()
            for k, sent in enumerate(posts):
                if sent.message_id:
                    tally.expect(sent.message_id, sent.sent_ns, recipients(k))
            last_sent_ns = max((p.sent_ns for p in posts), default=time.time_ns())
            self.last_stir_ns = max(p.answered_ns for p in posts) if posts else time.time_ns()
            tally.deadline_ns = last_sent_ns + int(drain_secs * 1e9)
            await self.poll()
            while tally.missing() and time.time_ns() < tally.deadline_ns:
                await asyncio.sleep(POLL_SECS)
                await self.poll()
            return tally, posts, window.percent()
        finally:
            self.tally = None

    async def warm_up(self, author: Account, recipients: frozenset[int]) -> None:
        """One message first, left out of the figures: cold code paths, first writes."""
        await self.measure(
            lambda: self.post_paced([(public_path(), author)], 1.0, self.pools[0]),
            lambda _k: recipients,
            WARM_UP_SECS,
        )


# Scenarios


def post_failures(posts: Sequence[Post]) -> str:
    failed = [p for p in posts if not p.message_id]
    if not failed:
        return "0"
    kinds = sorted({p.error.split(" ", 1)[0] for p in failed})
    return f"{len(failed)} ({', '.join(kinds)})"


def readers_cpu(percents: Mapping[str, float | None]) -> str:
    shares = [v for label, v in percents.items() if label.startswith("reader")]
    return " + ".join("?" if v is None else f"{v:.0f}%" for v in shares) + " of a core"


def add_cpu_rows(bench: Bench, section: str, percents: Mapping[str, float | None]) -> None:
    """The server's and the database's CPU (in all, and each), the readers' and the sender's."""
    server = {k: v for k, v in percents.items() if not k.startswith(("reader", "sender"))}
    known = [v for v in server.values() if v is not None]
    bench.add(section, "CPU: server + database", sum(known) if known else None, "% of a core")
    bench.add(section, "CPU: each", cpu_text(server))
    bench.add(section, "CPU: the readers' processes", readers_cpu(percents))
    bench.add(section, "CPU: the sender (this process)", percents.get("sender"), "% of a core")


HOP = "the database alone: insert_one -> watch(), the hop under every delivery"


async def scenario_hop(bench: Bench) -> None:
    section = HOP
    values = await floor.insert_to_watch_ms(bench.db.uri, bench.sizes.floor_hops)
    bench.add(section, "p50 hop", percentile(values, 50), "ms")
    bench.add(section, "p99 hop", percentile(values, 99), "ms")
    bench.add(section, "hops measured", len(values), f"of {bench.sizes.floor_hops}")
    bench.say(f"hop: {len(values)} hops, p50 {percentile(values, 50) or 0:.2f} ms")


RENDER = "formatting: a message rendered (once per post or edit, never per reader)"
RENDER_SAMPLES = (
    "hello there, how are you?",
    "**done** and _shipped_, see https://example.com/changes and `make test`",
    "```\nfor n in range(3):\n    print(n)\n```\n> quoted\n- one\n- two",
    "long words " * 360,  # about 4,000 characters
)
RENDER_WORST = tuple(char * 4000 for char in ">[*`_(")  # nesting and unclosed brackets


def scenario_render(bench: Bench) -> None:
    """The server-side render of a message, timed in this process (the app's own code)."""
    section = RENDER
    runs = 50 if bench.sizes is FULL else 10
    times = []
    for text in RENDER_SAMPLES * runs:
        started = time.perf_counter()
        formatting.render(text)
        times.append((time.perf_counter() - started) * 1e6)
    worst = []
    for text in RENDER_WORST:
        started = time.perf_counter()
        formatting.render(text)
        worst.append((time.perf_counter() - started) * 1e3)
    bench.add(section, "typical message: p50", percentile(times, 50), "µs")
    bench.add(section, "typical message: p99", percentile(times, 99), "µs")
    bench.add(section, "4,000 characters of > [ * ` _ (: the slowest", max(worst), "ms")
    bench.say(f"render: p50 {percentile(times, 50) or 0:.0f} µs, worst {max(worst):.1f} ms")


async def scenario_posting(bench: Bench) -> None:
    """Closed-loop senders, each cycling over its own accounts, none over BURST_ACCOUNT_RATE."""
    sizes = bench.sizes
    section = f"posting: {sizes.posting_senders} concurrent senders for {sizes.posting_secs:g} s"
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + sizes.posting_secs
    per = POSTING_ACCOUNTS_PER_SENDER

    async def sender(mine: Sequence[Account]) -> list[Post]:
        pool = Pool("127.0.0.1", bench.apps[0].port)
        next_ok = [0.0] * len(mine)
        posts: list[Post] = []
        try:
            while loop.time() < stop_at:
                k = len(posts) % len(mine)
                await asyncio.sleep(max(0.0, next_ok[k] - loop.time()))
                next_ok[k] = loop.time() + 1 / BURST_ACCOUNT_RATE
                posts.append(await post_message(pool, public_path(), mine[k].token, "posting"))
        finally:
            pool.close()
        return posts

    bench.say(f"posting: {sizes.posting_senders} senders start")
    window = bench.cpu_window()
    started = time.time_ns()
    groups = [bench.accounts[s * per : (s + 1) * per] for s in range(sizes.posting_senders)]
    posts = [p for batch in await asyncio.gather(*(sender(g) for g in groups)) for p in batch]
    percents = window.percent()
    bench.last_stir_ns = time.time_ns()
    elapsed = (max((p.answered_ns for p in posts), default=started) - started) / 1e9
    good = [p.ms for p in posts if p.message_id]
    posts_per_sec = len(good) / elapsed if elapsed else None
    bench.add(section, "posts/s (higher is better)", posts_per_sec, "", ">= 0.6x floor")
    bench.add(section, "p50 POST latency", percentile(good, 50), "ms")
    bench.add(section, "p99 POST latency", percentile(good, 99), "ms", "<= 60 ms")
    bench.add(section, "posts refused or failed", post_failures(posts), "", "0")
    add_cpu_rows(bench, section, percents)
    await bench.settle_row(section, "quiet again after")
    bench.say(f"posting: {len(good)} posts in {elapsed:.1f}s")


def memory_row(bench: Bench, label: str) -> int | None:
    """The server's VmRSS now, as a row; in KiB."""
    pid = bench.apps[0].pid
    rss = rss_kb(pid) if pid else None
    bench.add(MEMORY, label, rss / 1024 if rss else None, "MiB")
    return rss


async def scenario_memory(bench: Bench, streams: int, baseline: list[tuple[int, int]]) -> None:
    """VmRSS with this many idle streams; with two such rows, the cost of one more stream."""
    rss = memory_row(bench, f"with {streams:,} idle streams")
    if rss is None:
        return
    baseline.append((streams, rss))
    if len(baseline) == 2:
        (few, rss_few), (many, rss_many) = baseline
        per_stream = (rss_many - rss_few) / (many - few)
        bench.add(MEMORY, "per extra idle stream", per_stream, "KiB", "<= 12 KB")


async def scenario_idle(bench: Bench) -> None:
    sizes = bench.sizes
    section = f"idle: {len(bench.open):,} streams open, nothing posted, {sizes.idle_secs:g} s"
    window = bench.cpu_window(readers=False)
    await asyncio.sleep(sizes.idle_secs)
    percents = window.percent()
    await bench.poll()
    known = [v for v in percents.values() if v is not None]
    bench.add(section, "CPU: server + database", sum(known), "% of a core", "<= 0.5%")
    bench.add(section, "CPU: each", cpu_text(percents))


QUIET_BEFORE = "quiet before the first post after"


async def public_messages(
    bench: Bench, section: str, messages: int
) -> tuple[Tally, list[Post], dict[str, float | None]]:
    """Public messages at the fan-out rate, round-robin over the senders, to every open stream.

    First the app is left to settle; a first message through a process is a warm-up, left out.
    """
    await bench.settle_row(section, QUIET_BEFORE)
    streams = frozenset(bench.open)
    if not bench.warm or any(number > 0 for number in bench.open.values()):
        await bench.warm_up(bench.senders[0], streams)
        bench.warm = True
    jobs = [(public_path(), bench.senders[k % len(bench.senders)]) for k in range(messages)]
    rate = bench.sizes.fanout_rate
    return await bench.measure(
        lambda: bench.post_paced(jobs, rate, bench.pools[0]), lambda _k: streams
    )


async def scenario_fanout(bench: Bench) -> None:
    sizes = bench.sizes
    count = len(bench.open)
    p50, p99 = FANOUT_TARGETS.get(count, ("", ""))
    section = (
        f"fan-out to {count:,} streams: {sizes.fanout_messages} public messages "
        f"at {sizes.fanout_rate:g}/s"
    )
    tally, posts, percents = await public_messages(bench, section, sizes.fanout_messages)
    summary = tally.summary()
    bench.extend(latency_figures(section, summary, p50=p50, p99=p99))
    answered = [p.ms for p in posts if p.message_id]
    bench.add(section, "p99 POST latency", percentile(answered, 99), "ms")
    bench.add(section, "posts refused or failed", post_failures(posts), "", "0")
    add_cpu_rows(bench, section, percents)
    bench.say(f"fan-out to {count}: p99 {summary.p99 or 0:.0f} ms, lost {summary.lost}")


async def scenario_dm(bench: Bench) -> None:
    """Pair p is accounts 2p and 2p + 1; message k goes one way or the other in pair k % P."""
    sizes = bench.sizes
    pairs = sizes.dm_pairs
    section = (
        f"direct messages: {pairs} pairs ({2 * pairs:,} streams), {sizes.dm_messages} "
        f"messages at {sizes.dm_rate:g}/s in all"
    )

    def ends(k: int) -> tuple[Account, Account]:
        pair, backwards = k % pairs, (k // pairs) % 2
        first, second = bench.accounts[2 * pair], bench.accounts[2 * pair + 1]
        return (second, first) if backwards else (first, second)

    await bench.settle_row(section, QUIET_BEFORE)
    jobs = [(dm_path(ends(k)[1].username), ends(k)[0]) for k in range(sizes.dm_messages)]
    tally, posts, percents = await bench.measure(
        lambda: bench.post_paced(jobs, sizes.dm_rate, bench.pools[0]),
        lambda k: frozenset(account.index for account in ends(k)),
    )
    summary = tally.summary()
    bench.extend(latency_figures(section, summary, p99="<= 28 ms"))
    bench.add(section, "posts refused or failed", post_failures(posts), "", "0")
    add_cpu_rows(bench, section, percents)
    bench.say(f"direct messages: p99 {summary.p99 or 0:.0f} ms, lost {summary.lost}")


async def scenario_two_processes(bench: Bench) -> None:
    """The streams open on app #1 (where the posts go), and as many again on a second app
    process; afterwards the second one's streams close and it stops."""
    sizes = bench.sizes
    first = len(bench.open)
    second = await asyncio.to_thread(bench.start_app)
    failed = await bench.open_streams(range(first, 2 * first), 1)
    bench.say(f"{second.name} started, {first - len(failed)} streams on it")
    section = (
        f"two app processes on one database, {len(bench.open):,} streams, half on each: "
        f"{sizes.two_process_messages} messages at {sizes.fanout_rate:g}/s posted to app #1"
    )
    if failed:
        bench.add(section, "streams that failed to open on app #2", len(failed))
    tally, posts, percents = await public_messages(bench, section, sizes.two_process_messages)
    by_app = [frozenset(i for i, n in bench.open.items() if n == number) for number in (0, 1)]
    same, cross = tally.summary(by_app[0]), tally.summary(by_app[1])
    bench.add(section, "posts refused or failed", post_failures(posts), "", "0")
    add_cpu_rows(bench, section, percents)
    bench.extend(latency_figures(f"{section}; via app #1 (same process)", same))
    bench.extend(latency_figures(f"{section}; via app #2 (cross-process)", cross, p99="<= 100 ms"))
    bench.say(f"two processes: cross-process p99 {cross.p99 or 0:.0f} ms, lost {cross.lost}")

    await bench.close_streams(sorted(by_app[1]))
    await bench.settle()  # app #2 says goodbye for its streams before it stops
    await asyncio.to_thread(bench.stop_app, 1)


def search_section(sizes: searching.Sizes) -> str:
    return (
        f"search: {sizes.rooms * sizes.per_room:,} messages in {sizes.rooms} rooms, the "
        f"searcher in {sizes.member_of} ({sizes.member_of * sizes.per_room:,} messages); "
        f"{sizes.queries} two-word queries, one at a time"
    )


async def seed_search(bench: Bench) -> searching.Corpus:
    """The rooms and their messages, straight into the database, before the app starts."""
    sizes = bench.sizes.search
    bench.say(f"seeding {sizes.rooms} rooms of {sizes.per_room:,} messages for search")
    started = time.monotonic()
    corpus = await searching.seed(bench.db.uri, sizes)
    secs = time.monotonic() - started
    name = f"seed {sizes.rooms} rooms, {corpus.messages:,} messages (for search)"
    bench.add("setup", name, secs, "s")
    bench.say(f"seeded {corpus.messages:,} messages in {secs:.1f}s")
    return corpus


async def scenario_search(bench: Bench, corpus: searching.Corpus) -> None:
    """A new account joins some of the seeded rooms and searches them, one query at a time
    (a round of the queries first, left out)."""
    sizes = bench.sizes.search
    section = search_section(sizes)
    pool = Pool("127.0.0.1", bench.apps[0].port)
    try:
        name = f"q{secrets.token_hex(3)}"
        searcher = await register_account(pool, -1, name, sign_in=False)
        await searching.join(bench.db.uri, username=name, room_ids=corpus.searched)
        await bench.settle_row(section, "quiet before the first query")
        for query in searching.QUERIES:
            await searching.ask(pool, searcher, corpus, query, False)
        window = bench.cpu_window(readers=False)
        asked = []
        for query, within in searching.plan(sizes):
            asked.append(await searching.ask(pool, searcher, corpus, query, within))
        percents = window.percent()
    finally:
        pool.close()
    across = [a.ms for a in asked if not a.within]
    narrowed = [a.ms for a in asked if a.within]
    everywhere = f"across the searcher's {sizes.member_of} rooms"
    bench.add(section, f"p50 latency, {everywhere}", percentile(across, 50), "ms")
    bench.add(section, f"p95 latency, {everywhere}", percentile(across, 95), "ms", "<= 100 ms")
    bench.add(section, f"p99 latency, {everywhere}", percentile(across, 99), "ms")
    bench.add(section, f"max latency, {everywhere}", max(across, default=None), "ms")
    bench.add(section, "p50 latency, in one room (?in=)", percentile(narrowed, 50), "ms")
    bench.add(section, "p95 latency, in one room (?in=)", percentile(narrowed, 95), "ms")
    failed = [a for a in asked if a.status != 200]
    statuses = ", ".join(sorted({str(a.status) for a in failed}))
    bench.add(section, "answers not 200", len(failed), f"({statuses})" if failed else "", "0")
    short = [
        a
        for a in asked
        if a.status == 200 and a.results < searching.expected_results(corpus, a.query, a.within)
    ]
    bench.add(section, "answers with fewer results than stored", len(short), "", "0")
    found = searching.spread(list(corpus.matches.values()))
    bench.add(section, "messages a query finds", found, f"of {sizes.member_of * sizes.per_room:,}")
    known = [v for v in percents.values() if v is not None]
    bench.add(section, "CPU: server + database", sum(known) if known else None, "% of a core")
    bench.add(section, "CPU: each", cpu_text(percents))
    medians = {
        query: percentile([a.ms for a in asked if a.query == query and not a.within], 50) or 0
        for query in searching.QUERIES
    }
    by_query = ", ".join(f"{q!r} {ms:.0f} ({corpus.matches[q]})" for q, ms in medians.items())
    bench.say(f"search: median ms per query (messages it finds): {by_query}")
    bench.say(
        f"search: p50 {percentile(across, 50) or 0:.0f} ms, p95 {percentile(across, 95) or 0:.0f}"
        f" ms; {len(failed)} not 200, {len(short)} short of results"
    )


# The plan


def accounts_needed(sizes: Sizes, selected: set[str]) -> int:
    counts = [0]
    if "fanout" in selected:
        counts += sizes.fanout_streams
    if "dm" in selected:
        counts.append(2 * sizes.dm_pairs)
    if "two" in selected:
        counts.append(sizes.two_process_streams)  # the second half streams from app #2
    if "memory" in selected:
        counts += sizes.memory_streams
    if "idle" in selected:
        counts.append(sizes.idle_streams)
    if "posting" in selected:
        counts.append(sizes.posting_senders * POSTING_ACCOUNTS_PER_SENDER)
    return max(counts)


def stream_steps(sizes: Sizes, selected: set[str]) -> list[int]:
    """The numbers of open streams the scenarios run at, in the order they are reached."""
    steps: set[int] = set()
    if "fanout" in selected:
        steps.update(sizes.fanout_streams)
    if "dm" in selected:
        steps.add(2 * sizes.dm_pairs)
    if "memory" in selected:
        steps.update(sizes.memory_streams)
    if "idle" in selected:
        steps.add(sizes.idle_streams)
    if "two" in selected:
        steps.add(sizes.two_process_streams // 2)
    return sorted(steps)


async def register(bench: Bench, count: int, *, sign_in: bool) -> None:
    sizes, server = bench.sizes, bench.apps[0]
    senders = math.ceil(max(sizes.fanout_rate, 1.0) / PACED_ACCOUNT_RATE)
    bench.say(f"registering {count + senders} accounts, {REGISTER_CONCURRENCY} at a time")
    started = time.monotonic()
    everyone = await register_accounts(
        "127.0.0.1",
        server.port,
        count + senders,
        prefix="b",
        concurrency=REGISTER_CONCURRENCY,
        sign_in=sign_in,
    )
    bench.accounts, bench.senders = everyone[:count], everyone[count:]
    secs = time.monotonic() - started
    how = " (each also signed in at /api/token)" if sign_in else ""
    bench.add("setup", f"register {len(everyone):,} accounts{how}", secs, "s")
    bench.say(f"registered {len(everyone)} accounts in {secs:.1f}s")


def scenarios_of(subject: str, selected: set[str]) -> set[str]:
    """The selected scenarios that run against the subject (the hop and the render cost run
    once, before both)."""
    return selected & FLOOR_SCENARIOS if subject == "floor" else selected - {"hop", "render"}


async def run(bench: Bench, selected: set[str], subjects: Sequence[str], *, sign_in: bool) -> None:
    if "hop" in selected:
        bench.subject = "floor"  # the database's own floor: in the floor's column
        await scenario_hop(bench)
    if "render" in selected:
        bench.subject = "app"  # the app's own cost, in this process
        scenario_render(bench)
    for subject in subjects:
        chosen = scenarios_of(subject, selected)
        if chosen:
            bench.begin(subject)
            await run_subject(bench, chosen, sign_in=sign_in)
        else:
            print(f"[{subject}] none of the scenarios chosen runs against it")


async def run_subject(bench: Bench, selected: set[str], *, sign_in: bool) -> None:
    """Every selected scenario against the subject begun, which is started first and stopped
    at the end."""
    sizes = bench.sizes
    corpus = await seed_search(bench) if "search" in selected else None  # before the app
    server = await asyncio.to_thread(bench.start_app)
    bench.say(f"started: {server.command}")
    if bench.subject == "floor":
        await bench.measure_idle()
    if "memory" in selected:
        memory_row(bench, "right after start")
    if selected - {"search"}:  # the searcher registers on its own
        await register(bench, accounts_needed(sizes, selected), sign_in=sign_in)
    if "memory" in selected:
        memory_row(
            bench, f"after registering {len(bench.accounts) + len(bench.senders):,} accounts"
        )
    if corpus is not None:
        await scenario_search(bench, corpus)
    if "posting" in selected:
        await scenario_posting(bench)
    memory: list[tuple[int, int]] = []
    for count in stream_steps(sizes, selected):
        await bench.streams_at(count)
        if "memory" in selected and count in sizes.memory_streams:
            await scenario_memory(bench, count, memory)
        if "idle" in selected and count == sizes.idle_streams:
            await scenario_idle(bench)
        if "fanout" in selected and count in sizes.fanout_streams:
            await scenario_fanout(bench)
        if "two" in selected and count == sizes.two_process_streams // 2:
            await scenario_two_processes(bench)
        if "dm" in selected and count == 2 * sizes.dm_pairs:
            await scenario_dm(bench)
    await end_run(bench)


async def end_run(bench: Bench) -> None:
    """Rows about the run, then the servers stop (their streams still open), the readers
    close those streams (no reopening), and the floor's database goes."""
    section = "the run"
    bench.add(section, "streams the server ended (then reopened)", len(bench.ended))
    if bench.ended:  # why, under the table: the reasons would widen its column
        reasons = sorted({reason for _, reason in bench.ended})
        bench.ended_why[bench.subject] = f"{len(bench.ended):,} ({'; '.join(reasons)[:200]})"
    bench.add(section, "reopened", bench.reconnects)
    bench.add(section, "reads without a kernel timestamp", bench.untimed_reads)
    await stop_apps(bench)
    await bench.close_streams(sorted(bench.open))
    await bench.poll()  # what the readers saw of the stop: no scenario's
    if bench.subject == "floor":
        with contextlib.suppress(PyMongoError):
            name = database_name(bench.floor_uri)
            await asyncio.to_thread(drop_database, bench.floor_uri, name)


async def stop_apps(bench: Bench) -> None:
    """Stops the servers with their streams still open, as a deploy does, timing each SIGTERM."""
    for number, server in enumerate(bench.apps):
        if server.running:
            streams = sum(n == number for n in bench.open.values())
            started = time.monotonic()
            await asyncio.to_thread(bench.stop_app, number)
            who = "the server" if number == 0 else server.name
            name = f"{who} stopped after SIGTERM, {streams:,} streams open"
            bench.add("the run", name, time.monotonic() - started, "s", "<= 10 s")


# Running it


def finish(bench: Bench, logs_to: Path) -> list[str]:
    """Rows about the servers' logs, which it keeps beside the JSON (the scratch folder goes);
    returns notes for under the table: why streams ended, and the log lines with problems."""
    notes = [
        f"[{subject}] streams the server ended: {why}" for subject, why in bench.ended_why.items()
    ]
    logs_to.mkdir(parents=True, exist_ok=True)
    logs: list[tuple[str, str, Path, str]] = []  # subject, whose, the log, kept as
    firsts: set[str] = set()
    for subject, server in bench.servers:
        whose = server.name if subject in firsts else "the server"
        firsts.add(subject)
        logs.append((subject, whose, server.log_path, f"{server.data_dir.name}.log"))
    if bench.db.log_path is not None:
        logs.append((bench.subject, "the database", bench.db.log_path, "database.log"))
    for subject, whose, path, file_name in logs:
        kept = logs_to / file_name
        with contextlib.suppress(OSError):
            shutil.copyfile(path, kept)
        problems = log_problems(path)
        name = f"{whose}: log lines with errors or warnings"
        bench.figures.append(Figure("the run", name, len(problems), subject=subject))
        if problems:
            notes.append(f"{kept}: {len(problems)} lines with problems; the first:")
            notes += [f"  {line[:160]}" for line in dict.fromkeys(problems[:200])][:8]
    return notes


@contextlib.contextmanager
def benchmark(sizes: Sizes, readers: int) -> Iterator[Bench]:
    """The scratch folder, the database and the readers; servers join the stack as they start."""
    with contextlib.ExitStack() as stack:
        scratch = Path(
            stack.enter_context(
                tempfile.TemporaryDirectory(prefix="chat-bench-", ignore_cleanup_errors=True)
            )
        )
        db = stack.enter_context(database(scratch))
        pool = Readers(readers)
        stack.callback(pool.stop)  # after the servers (they join the stack later): no reconnecting
        bench = Bench(sizes, stack, scratch, db, pool)
        try:
            yield bench
        except Exception:  # the logs go with the scratch folder; an interrupt needs none
            for _, server in bench.servers:
                print(f"--- {server.name} log (tail) ---\n{server.log_tail()}", file=sys.stderr)
            raise


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fanout", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"scenarios, comma-separated: {', '.join(SCENARIOS)} (the floor runs "
        f"{', '.join(s for s in SCENARIOS if s in FLOOR_SCENARIOS)} of them)",
    )
    parser.add_argument(
        "--target",
        choices=("both", *SUBJECTS),
        default="both",
        help="what to measure: the floor (benchmarks/bare.py), the app, or both, the floor first",
    )
    parser.add_argument("--streams", help="fan-out sizes, comma-separated (e.g. 100,500)")
    parser.add_argument("--messages", type=int, help="messages per fan-out")
    parser.add_argument(
        "--sign-in",
        action="store_true",
        help="take each account's token from POST /api/token, not from registering (slower)",
    )
    parser.add_argument("--readers", type=int, default=READER_PROCESSES, help="reader processes")
    parser.add_argument("--json", type=Path, default=JSON_PATH, help="where to write the figures")
    parser.add_argument(
        "--max-minutes", type=float, default=40.0, help="give up after this long (a hang)"
    )
    args = parser.parse_args(argv)
    names = (name.strip() for name in args.only.split(","))
    args.selected = {ALIASES.get(name, name) for name in names if name}
    unknown = args.selected - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    args.subjects = SUBJECTS if args.target == "both" else (args.target,)
    sizes = QUICK if args.quick else FULL
    if args.streams:
        sizes = replace(sizes, fanout_streams=tuple(int(n) for n in args.streams.split(",")))
    if args.messages:
        sizes = replace(sizes, fanout_messages=args.messages, two_process_messages=args.messages)
    args.sizes = sizes
    args.readers = max(2, args.readers)
    return args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up as Ctrl-C does


def report(bench: Bench, args: argparse.Namespace, run_info: dict[str, object]) -> None:
    """Prints the table, the floor's and the app's figures side by side, and writes the JSON."""
    title = (
        f"chat fan-out benchmark: {bench.db.label}, {os.cpu_count()} CPUs, "
        f"load {run_info['load_at_start']} at the start and {run_info['load_at_end']} at the "
        f"end, {run_info['seconds']:.0f} s in all"
    )
    notes = [
        f"floor: {FLOOR_COMMAND} (benchmarks/bare.py), the least this architecture costs",
        f"app: {run_info['app_command']} (the Procfile's web:)",
        "app/floor: the app's figure over the floor's; lower is better unless the row says so",
    ]
    lines = rows(bench.figures, leading=("setup", HOP))  # the hop comes before both runs
    print()
    print(table(lines, title, notes))
    write_json(args.json, lines, run_info)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    raise_open_files_limit()
    started = time.monotonic()
    run_info: dict[str, object] = {
        "app_command": procfile_web_command(),
        "floor_command": FLOOR_COMMAND,
        "targets": list(args.subjects),
        "cpus": os.cpu_count(),
        "load_at_start": load_average(),
        "quick": args.quick,
        "scenarios": sorted(args.selected),
        "sizes": asdict(args.sizes),
    }

    async def bounded(bench: Bench) -> None:
        async with asyncio.timeout(args.max_minutes * 60):
            await run(bench, args.selected, args.subjects, sign_in=args.sign_in)

    status = 0
    try:
        with benchmark(args.sizes, args.readers) as bench:
            print(f"database: {bench.db.label}; measuring: {', '.join(args.subjects)}")
            run_info["database"] = bench.db.label
            try:
                asyncio.run(bounded(bench))
            except TimeoutError:
                print(f"gave up after {args.max_minutes:g} minutes", file=sys.stderr)
                status = 1
            notes = finish(bench, args.json.parent)
    except KeyboardInterrupt:
        print("interrupted; every process started was stopped", file=sys.stderr)
        return 130
    except (RequestFailed, ReaderStuck, RuntimeError) as exc:
        print(f"the benchmark could not run: {exc}", file=sys.stderr)
        return 1
    run_info["seconds"] = round(time.monotonic() - started, 1)
    run_info["load_at_end"] = load_average()
    run_info["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    run_info["streams_ended"] = bench.ended_why
    report(bench, args, run_info)
    print("\n".join(notes))
    print(f"figures as JSON: {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())
