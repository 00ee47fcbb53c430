"""Fan-out benchmark: one sender, many open event streams, and what an idle server costs.

    .venv/bin/python -m benchmarks.fanout [--listeners 50] [--messages 20] [--idle-seconds 5]
                                          [--processes 1|2]

Starts an embedded database (or uses MONGODB_URI, with a scratch database dropped at the end)
and one or two app processes on 127.0.0.1, registers the listeners and opens one Server-Sent
Events stream each (Bearer tokens), then a sender posts public messages one after another.
For every (listener, message) pair it measures the time from the POST being sent to that
listener reading the event, and counts missing and duplicated deliveries. Last, with the
streams still open and nothing posted, it samples the CPU time of the app and database
processes. It prints figures only: it never judges them, and it exits 0 when it ran.

Latencies are measured on the client side, in this one process: with many listeners they
include this process's own time to read and parse every stream (its CPU is shown too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import resource
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import httpx
from pymongo import MongoClient

from tests.support import AppServer, Person, message_id, open_stream, unique_name
from webapp.embedded_db import EmbeddedDatabase

MAX_LISTENERS = 500  # each stream is a socket at both ends; the open-files limit is 20,000
OPEN_BATCH = 25  # streams opened at once
QUIET_SECS = 1.0  # no presence event for this long: the connection churn has settled
SETTLE_LIMIT_SECS = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Listener:
    index: int
    server: int  # index of the app process it streams from
    token: str = ""
    arrivals: dict[str, list[float]] = field(default_factory=dict)  # message id -> read at
    other_events: int = 0
    connected: bool = False
    ended: str = ""  # why the stream stopped before the end, if it did
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # connected or failed


@dataclass
class Clock:
    last_other_event: float = field(default_factory=time.perf_counter)


@dataclass
class Watched:
    """A process whose CPU time is sampled."""

    label: str
    pid: int


@dataclass
class Results:
    register_secs: float = 0.0
    open_secs: float = 0.0
    settle_secs: float = 0.0
    other_events: int = 0
    post_ms: list[float] = field(default_factory=list)
    post_failures: list[str] = field(default_factory=list)
    sent: list[tuple[str, float]] = field(default_factory=list)  # message id, POST sent at
    deliver_secs: float = 0.0
    busy_cpu: dict[str, float | None] = field(default_factory=dict)
    busy_secs: float = 0.0
    idle_cpu: dict[str, float | None] = field(default_factory=dict)
    idle_secs: float = 0.0
    load_before: str = ""


# CPU time from /proc


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process, in clock ticks; None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def load_average() -> str:
    """The machine's 1-minute load average: other work skews every figure here."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except (OSError, IndexError):
        return "?"


def sample(watched: Sequence[Watched]) -> tuple[float, dict[str, int | None]]:
    return time.perf_counter(), {w.label: cpu_ticks(w.pid) for w in watched}


def cpu_percent(
    before: tuple[float, dict[str, int | None]], after: tuple[float, dict[str, int | None]]
) -> dict[str, float | None]:
    wall = after[0] - before[0]
    percent: dict[str, float | None] = {}
    for label, start in before[1].items():
        end = after[1].get(label)
        if start is None or end is None or wall <= 0:
            percent[label] = None
        else:
            percent[label] = (end - start) / CLK_TCK / wall * 100
    return percent


# Statistics


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# The clients


def register(base_url: str) -> str:
    """Registers a listener and returns its API token (its cookie client is closed)."""
    with Person.register(base_url, unique_name("fan")) as someone:
        return someone.token()


async def register_all(listeners: list[Listener], urls: list[str], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(listener: Listener) -> None:
        async with gate:
            listener.token = await asyncio.to_thread(register, urls[listener.server])

    await asyncio.gather(*(one(listener) for listener in listeners))


async def listen(listener: Listener, base_url: str, clock: Clock, read_secs: float) -> None:
    """Holds one stream open and notes when each event is read, until cancelled."""
    try:
        async with open_stream(base_url, token=listener.token) as stream:
            listener.connected = True
            listener.settled.set()
            while True:
                event = await stream.next(timeout=read_secs)
                now = time.perf_counter()
                if event.event == "message":
                    listener.arrivals.setdefault(message_id(event.data), []).append(now)
                else:
                    listener.other_events += 1
                    clock.last_other_event = now
    except (ConnectionError, TimeoutError, httpx.HTTPError, AssertionError) as exc:
        listener.ended = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        listener.settled.set()


def delivered_all(listeners: Sequence[Listener], ids: Sequence[str]) -> bool:
    return all(
        all(mid in listener.arrivals for mid in ids)
        for listener in listeners
        if listener.connected and not listener.ended
    )


async def run(
    args: argparse.Namespace, urls: list[str], watched: list[Watched], results: Results
) -> list[Listener]:
    listeners = [Listener(i, i % len(urls)) for i in range(args.listeners)]
    clock = Clock()
    tasks: list[asyncio.Task[None]] = []
    sender: Person | None = None
    try:
        started = time.perf_counter()
        sender = await asyncio.to_thread(Person.register, urls[0], unique_name("sender"))
        await register_all(listeners, urls, args.concurrency)
        results.register_secs = time.perf_counter() - started
        print(f"registered {len(listeners) + 1} users in {results.register_secs:.1f}s")

        started = time.perf_counter()
        for first in range(0, len(listeners), OPEN_BATCH):
            batch = listeners[first : first + OPEN_BATCH]
            for listener in batch:
                url = urls[listener.server]
                tasks.append(asyncio.create_task(listen(listener, url, clock, args.max_seconds)))
            await asyncio.gather(*(listener.settled.wait() for listener in batch))
        results.open_secs = time.perf_counter() - started
        opened = sum(listener.connected for listener in listeners)
        print(f"opened {opened}/{len(listeners)} streams in {results.open_secs:.1f}s")

        # Every stream that opens tells every other stream: let that die down first.
        started = clock.last_other_event = time.perf_counter()
        while time.perf_counter() - started < SETTLE_LIMIT_SECS:
            if time.perf_counter() - clock.last_other_event >= QUIET_SECS:
                break
            await asyncio.sleep(0.1)
        results.settle_secs = time.perf_counter() - started
        results.other_events = sum(listener.other_events for listener in listeners)
        print(
            f"connection churn settled in {results.settle_secs:.1f}s "
            f"({results.other_events} non-message events read)"
        )

        # Warm-up posts (cold code paths, first writes): delivered, then left out of the figures.
        for n in range(args.warmup):
            response = await asyncio.to_thread(sender.post_public, f"warm-up {n}")
            if response.status_code == 201:
                warm_id = message_id(response.text)
                started = time.perf_counter()
                while time.perf_counter() - started < args.settle:
                    if delivered_all(listeners, [warm_id]):
                        break
                    await asyncio.sleep(0.01)
            await asyncio.sleep(args.interval)

        results.load_before = load_average()
        busy_from = sample(watched)
        for n in range(args.messages):
            sent_at = time.perf_counter()
            try:
                response = await asyncio.to_thread(sender.post_public, f"fan-out {n}")
            except httpx.HTTPError as exc:
                results.post_failures.append(f"{type(exc).__name__}: {exc}"[:200])
                await asyncio.sleep(args.interval)
                continue
            answered_at = time.perf_counter()
            results.post_ms.append((answered_at - sent_at) * 1000)
            if response.status_code == 201:
                results.sent.append((message_id(response.text), sent_at))
            else:
                results.post_failures.append(f"{response.status_code} {response.text[:100]}")
            await asyncio.sleep(max(0.0, args.interval - (answered_at - sent_at)))
        print(f"posted {len(results.sent)}/{args.messages} messages")

        ids = [mid for mid, _ in results.sent]
        started = time.perf_counter()
        while time.perf_counter() - started < args.settle:
            if delivered_all(listeners, ids):
                break
            await asyncio.sleep(0.01)
        results.deliver_secs = time.perf_counter() - started
        busy_to = sample(watched)
        results.busy_cpu = cpu_percent(busy_from, busy_to)
        results.busy_secs = busy_to[0] - busy_from[0]

        # Idle: streams open, nothing posted. Late duplicates still get counted meanwhile.
        print(f"idling {args.idle_seconds:g}s with {opened} streams open")
        idle_from = sample(watched)
        await asyncio.sleep(args.idle_seconds)
        idle_to = sample(watched)
        results.idle_cpu = cpu_percent(idle_from, idle_to)
        results.idle_secs = idle_to[0] - idle_from[0]
        return listeners
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if sender is not None:
            sender.close()


# The report


def report(
    args: argparse.Namespace, listeners: list[Listener], watched: list[Watched], results: Results
) -> None:
    latencies: dict[int, list[float]] = {server: [] for server in range(args.processes)}
    missing = duplicates = 0
    for listener in listeners:
        for mid, sent_at in results.sent:
            reads = listener.arrivals.get(mid, [])
            if not reads:
                missing += 1
                continue
            duplicates += len(reads) - 1
            latencies[listener.server].append((reads[0] - sent_at) * 1000)
    everything = [ms for values in latencies.values() for ms in values]
    pairs = len(listeners) * len(results.sent)
    ended = [listener for listener in listeners if listener.ended]

    rows: list[tuple[str, Sequence[float]]] = [
        ("POST latency (ms)", results.post_ms),
        ("delivery latency (ms)", everything),
    ]
    if args.processes > 1:
        rows += [
            (f"  via app #{server + 1}" + (" (the sender's)" if server == 0 else ""), values)
            for server, values in latencies.items()
        ]

    print()
    print(
        f"== fan-out: {len(listeners)} listeners on {args.processes} app process(es), "
        f"{len(results.sent)} messages every {args.interval:g}s, {args.database}, "
        f"{os.cpu_count()} CPUs, load {results.load_before} =="
    )
    print(f"{'':28}{'p50':>9}{'p95':>9}{'max':>9}{'n':>7}")
    for label, values in rows:
        print(
            f"{label:28}{fmt(percentile(values, 50)):>9}{fmt(percentile(values, 95)):>9}"
            f"{fmt(max(values) if values else None):>9}{len(values):>7}"
        )
    exactly_once = missing == 0 and duplicates == 0 and pairs == len(listeners) * args.messages
    print(
        f"deliveries: {len(everything)}/{pairs} pairs read, missing {missing}, "
        f"duplicates {duplicates}, POST failures {len(results.post_failures)}, "
        f"streams ended early {len(ended)} -> "
        + ("every listener got every message exactly once" if exactly_once else "NOT exactly once")
    )
    for failure in results.post_failures[:5]:
        print(f"  POST failed: {failure}")
    for listener in ended[:5]:
        print(f"  listener {listener.index} ended: {listener.ended}")

    print(f"{'CPU %':28}{'busy':>9}{'idle':>9}")
    for w in watched:
        label = f"{w.label} (pid {w.pid})"
        busy, idle = results.busy_cpu.get(w.label), results.idle_cpu.get(w.label)
        print(f"{label:28}{fmt(busy):>9}{fmt(idle):>9}")
    print(
        f"(busy: {results.busy_secs:.1f}s from the first POST to the last delivery; "
        f"idle: {results.idle_secs:.1f}s with the streams open and nothing posted; "
        "100% = one core)"
    )
    print(
        f"setup: register {results.register_secs:.1f}s, open streams {results.open_secs:.1f}s, "
        f"churn settled {results.settle_secs:.1f}s ({results.other_events} presence events)"
    )


# Processes


def scratch_database(uri: str) -> tuple[str, str]:
    """MONGODB_URI with a fresh database name in its path (options kept), and that name."""
    name = f"chat_bench_{secrets.token_hex(4)}"
    return urlsplit(uri)._replace(path=f"/{name}").geturl(), name


def drop_database(uri: str, name: str) -> None:
    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(name)
    finally:
        client.close()


@contextlib.contextmanager
def servers(args: argparse.Namespace, scratch: Path) -> Iterator[tuple[list[str], list[Watched]]]:
    """The database and app processes; every one started is stopped on the way out."""
    watched: list[Watched] = []
    with contextlib.ExitStack() as stack:
        external = os.environ.get("MONGODB_URI", "")
        if external:
            uri, name = scratch_database(external)
            stack.callback(drop_database, uri, name)
            args.database = "MONGODB_URI"
        else:
            db = EmbeddedDatabase(scratch / "db", database="chat_bench")
            stack.callback(db.stop)  # before start: a Ctrl-C while it starts stops it too
            db.start()
            uri = db.uri
            assert db._process is not None
            watched.append(Watched("nx-27017", db._process.pid))
            args.database = "embedded nx-27017"
        env = {"SECRET_KEY": "bench-" + secrets.token_hex(24), "APP_ENV": "development"}
        urls = []
        for n in range(args.processes):
            data_dir = scratch / f"app{n + 1}"
            data_dir.mkdir()
            app = AppServer(uri, data_dir=data_dir, env=env)  # one key: tokens work on both
            stack.callback(app.stop)
            app.start()  # its error carries the log
            assert app.process is not None
            urls.append(app.url)
            watched.insert(n, Watched(f"app #{n + 1}", app.process.pid))
        watched.append(Watched("benchmark client", os.getpid()))
        try:
            yield urls, watched
        except Exception:  # an interrupt needs no logs
            for n in range(args.processes):
                log = (scratch / f"app{n + 1}").glob("uvicorn-*.log")
                for path in log:
                    tail = path.read_text(errors="replace")[-1500:]
                    print(f"--- app #{n + 1} log (tail) ---\n{tail}", file=sys.stderr)
            raise


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fanout", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--listeners", type=int, default=50, help="open streams (max 500)")
    parser.add_argument("--messages", type=int, default=20, help="public messages to post")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between posts")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="idle CPU window")
    parser.add_argument("--processes", type=int, choices=(1, 2), default=1, help="app processes")
    parser.add_argument(
        "--warmup", type=int, default=1, help="messages posted first and left out of the figures"
    )
    parser.add_argument(
        "--settle", type=float, default=10.0, help="max seconds to wait for the last deliveries"
    )
    parser.add_argument(
        "--concurrency", type=int, default=4, help="registrations in flight at once"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=600.0, help="give up after this long in all"
    )
    args = parser.parse_args(argv)
    if args.listeners > MAX_LISTENERS:
        print(f"--listeners capped at {MAX_LISTENERS}")
    args.listeners = max(1, min(args.listeners, MAX_LISTENERS))
    args.messages = max(1, min(args.messages, 1000))
    args.interval = max(0.0, args.interval)
    args.warmup = max(0, min(args.warmup, 10))
    args.idle_seconds = max(0.0, min(args.idle_seconds, 120.0))
    args.concurrency = max(1, min(args.concurrency, 16))
    return args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up as Ctrl-C does


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = Results()

    async def bounded(urls: list[str], watched: list[Watched]) -> list[Listener]:
        async with asyncio.timeout(args.max_seconds):
            return await run(args, urls, watched, results)

    try:
        with (
            tempfile.TemporaryDirectory(
                prefix="chat-fanout-", ignore_cleanup_errors=True
            ) as scratch,
            servers(args, Path(scratch)) as (urls, watched),
        ):
            listeners = asyncio.run(bounded(urls, watched))
    except KeyboardInterrupt:
        print("interrupted; every process started was stopped", file=sys.stderr)
        return 130
    except TimeoutError:
        print(f"gave up after --max-seconds {args.max_seconds:g}", file=sys.stderr)
        return 1
    report(args, listeners, watched, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
