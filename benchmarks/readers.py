"""Reader processes: each holds many event streams on non-blocking sockets, timed by the kernel.

The benchmark's own reading must not be what it measures, so the streams are spread over
several processes, each one selector loop over plain sockets: the HTTP/1.1 GET written by
hand, the chunked body undone, and the SSE text scanned only for `message` events and the
message id in their data. Every read takes the kernel's receive timestamp (SO_TIMESTAMPNS,
CLOCK_REALTIME, the clock of time.time_ns()), so the time an event waits for this process to
read it is not counted: a delivery is timed when the read that completed it reached the socket.

The benchmark drives the processes through `Readers`: open streams (each one is open once the
server's ": connected" comment arrives), hand over what was delivered, close streams, stop.
A stream the server ends is reopened as a browser would, after the retry delay and with
Last-Event-ID, so that a cut-off stream shows up as late deliveries rather than lost ones.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import re
import selectors
import signal
import socket
import struct
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from benchmarks.stack import raise_open_files_limit
from webapp.data.embedded import die_with_parent

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; also the cmsg type
TIMESPEC = struct.Struct("@ll")  # struct timespec: seconds, nanoseconds
RECV_BYTES = 256 * 1024
ANCILLARY_BYTES = socket.CMSG_SPACE(TIMESPEC.size)
MAX_HEAD_BYTES = 64 * 1024
RETRY_SECS = 2.0  # the app's `retry:`; a browser waits this long before it reconnects
MAX_RECONNECTS = 3  # per stream: a stream that keeps failing is left closed
TICK_SECS = 0.05  # how often the loop looks at timers when nothing is read
ANSWER_SECS = 120.0  # a reader process that does not answer a command in this time is stuck

EVENT_END = re.compile(rb"\r\n\r\n|\n\n")
EVENT_NAME = re.compile(rb"^event: ?(.*?)\r?$", re.MULTILINE)
EVENT_ID = re.compile(rb"^id: ?(.*?)\r?$", re.MULTILINE)
MESSAGE_ID = re.compile(rb'id="msg-([0-9a-f]{24})"')

Delivery = tuple[int, str, int]  # stream (account) index, message id, kernel receive time (ns)


@dataclass(frozen=True)
class StreamSpec:
    """One GET /events to open: one stream per account, so the account's index names it."""

    index: int
    token: str
    port: int
    host: str = "127.0.0.1"


@dataclass
class Report:
    """What the reader processes saw since the last report."""

    deliveries: list[Delivery] = field(default_factory=list)
    other_events: int = 0  # presence, sidebar, typing...: every event that is not a message
    last_event_ns: int = 0  # receive time of the newest event of any name (0: none)
    ended: list[tuple[int, str]] = field(default_factory=list)  # streams the server ended
    reconnects: int = 0
    untimed_reads: int = 0  # reads that came without a kernel timestamp
    open_streams: int = 0  # at the time of the report

    def add(self, other: Report) -> None:
        self.deliveries += other.deliveries
        self.other_events += other.other_events
        self.last_event_ns = max(self.last_event_ns, other.last_event_ns)
        self.ended += other.ended
        self.reconnects += other.reconnects
        self.untimed_reads += other.untimed_reads
        self.open_streams += other.open_streams


# One stream, inside a reader process


def _request(spec: StreamSpec, last_event_id: str) -> bytes:
    lines = [
        "GET /events HTTP/1.1",
        f"Host: {spec.host}:{spec.port}",
        f"Authorization: Bearer {spec.token}",
        "Accept: text/event-stream",
        "Cache-Control: no-cache",
    ]
    if last_event_id:
        lines.append(f"Last-Event-ID: {last_event_id}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Stream:
    """A GET /events on a non-blocking socket: the request going out, then the events coming in."""

    def __init__(self, spec: StreamSpec, *, last_event_id: str = "", reconnects: int = 0) -> None:
        self.spec = spec
        self.last_id = last_event_id
        self.reconnects = reconnects
        self.connected = False  # the server's ": connected" arrived
        self.ended = ""  # why the stream is over, once it is
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.connect_ex((spec.host, spec.port))
        self._outbox = _request(spec, last_event_id)
        self._head = bytearray()  # the response head, until it is complete
        self._in_body = False
        self._chunked = True
        self._raw = bytearray()  # chunked body not yet undone
        self._text = bytearray()  # SSE text not yet split into events
        self._chunk_left = 0
        self._crlf_left = 0

    @property
    def sending(self) -> bool:
        return bool(self._outbox)

    def send(self) -> None:
        """Writes what it can of the request (once the connection is made)."""
        error = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            self.ended = f"connect: {error}"
            return
        try:
            sent = self.sock.send(self._outbox)
        except BlockingIOError:
            return
        except OSError as exc:
            self.ended = f"send: {exc}"
            return
        self._outbox = self._outbox[sent:]

    def receive(self, report: Report) -> None:
        """Reads once from the socket and records every event it completes."""
        try:
            data, ancillary, _flags, _address = self.sock.recvmsg(RECV_BYTES, ANCILLARY_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:
            self.ended = f"receive: {exc}"
            return
        if not data:
            self.ended = "the server closed the connection"
            return
        received_ns = _kernel_time(ancillary)
        if received_ns is None:
            received_ns = time.time_ns()
            report.untimed_reads += 1
        if not self._in_body:
            data = self._read_head(data)
        if self._chunked:
            self._raw += data
            self._dechunk()
        else:
            self._text += data
        self._split_events(received_ns, report)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _read_head(self, data: bytes) -> bytes:
        """Collects the response head; returns the body bytes that followed it."""
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_HEAD_BYTES:
                self.ended = "response head too long"
            return b""
        head, rest = bytes(self._head[:end]), bytes(self._head[end + 4 :])
        self._head.clear()
        status = head.split(b"\r\n", 1)[0].split(b" ", 2)
        if len(status) < 2 or status[1] != b"200":
            self.ended = f"HTTP {b' '.join(status[1:]).decode(errors='replace')}"
            return b""
        self._in_body = True
        self._chunked = b"transfer-encoding: chunked" in head.lower()
        return rest

    def _dechunk(self) -> None:
        """Moves the chunks' contents from the raw body to the SSE text."""
        raw, pos = self._raw, 0
        while pos < len(raw) and not self.ended:
            if self._chunk_left:
                take = min(self._chunk_left, len(raw) - pos)
                self._text += raw[pos : pos + take]
                pos += take
                self._chunk_left -= take
                self._crlf_left = 0 if self._chunk_left else 2
            elif self._crlf_left:
                take = min(self._crlf_left, len(raw) - pos)
                pos += take
                self._crlf_left -= take
            else:
                line_end = raw.find(b"\r\n", pos)
                if line_end < 0:
                    break
                size = int(raw[pos:line_end].split(b";")[0], 16)
                pos = line_end + 2
                self._chunk_left = size
                if size == 0:
                    self.ended = "the server ended the stream"
        del raw[:pos]

    def _split_events(self, received_ns: int, report: Report) -> None:
        *blocks, rest = EVENT_END.split(self._text)
        if not blocks:
            return
        self._text = bytearray(rest)
        for block in blocks:
            if block.startswith(b":"):  # a comment: ": connected" (with `retry:`) or a ping
                self.connected = self.connected or block.startswith(b": connected")
                continue
            if not block:
                continue
            report.last_event_ns = max(report.last_event_ns, received_ns)
            event_id = EVENT_ID.search(block)
            if event_id:
                self.last_id = event_id.group(1).decode()
            name = EVENT_NAME.search(block)
            found = MESSAGE_ID.search(block) if name and name.group(1) == b"message" else None
            if found:
                report.deliveries.append((self.spec.index, found.group(1).decode(), received_ns))
            else:
                report.other_events += 1


def _kernel_time(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = TIMESPEC.unpack(payload[: TIMESPEC.size])
            return int(seconds) * 1_000_000_000 + int(nanoseconds)
    return None


# The reader process


@dataclass
class _Opening:
    """An `open` command being carried out: it is answered once every stream is settled."""

    indexes: set[int]
    deadline: float
    failed: dict[int, str] = field(default_factory=dict)


class ReaderLoop:
    """The loop of one reader process: its streams and its commands, on one selector."""

    def __init__(self, control: Connection) -> None:
        self.control = control
        self.selector = selectors.DefaultSelector()
        self.selector.register(control.fileno(), selectors.EVENT_READ, None)
        self.streams: dict[int, Stream] = {}
        self.reopen_at: dict[int, tuple[float, Stream]] = {}  # index -> when, the ended stream
        self.opening: _Opening | None = None
        self.report = Report()

    def run(self) -> None:
        while True:
            for key, _mask in self.selector.select(TICK_SECS):
                stream: Stream | None = key.data
                if stream is None:
                    if not self._obey():
                        self._close_all()
                        return
                elif self.streams.get(stream.spec.index) is stream:
                    self._service(stream)
                # else: closed earlier in this batch (a command, or its own end): its socket too
            self._reopen_due()
            self._answer_opening()

    # Commands

    def _obey(self) -> bool:
        """Carries out one command; False when told to stop (or the benchmark is gone)."""
        try:
            command, *args = self.control.recv()
        except (EOFError, OSError):
            return False
        if command == "open":
            specs, timeout = args
            self.opening = _Opening({spec.index for spec in specs}, time.monotonic() + timeout)
            for spec in specs:
                self._start(Stream(spec))
        elif command == "report":
            report, self.report = self.report, Report()
            report.open_streams = sum(s.connected for s in self.streams.values())
            self.control.send(report)
        elif command == "close":
            (indexes,) = args
            for index in indexes:
                self.reopen_at.pop(index, None)
                if index in self.streams:
                    self._stop(self.streams[index])
            self.control.send(len(indexes))
        else:  # "quit"
            return False
        return True

    def _answer_opening(self) -> None:
        opening = self.opening
        if opening is None:
            return
        pending = {i for i in opening.indexes - opening.failed.keys() if not self._connected(i)}
        if pending and time.monotonic() < opening.deadline:
            return
        for index in pending:
            opening.failed[index] = "no ': connected' in time"
            if index in self.streams:
                self._stop(self.streams[index])
        connected = sorted(opening.indexes - opening.failed.keys())
        self.control.send((connected, opening.failed))
        self.opening = None

    def _connected(self, index: int) -> bool:
        stream = self.streams.get(index)
        return stream is not None and stream.connected

    # Streams

    def _start(self, stream: Stream) -> None:
        self.streams[stream.spec.index] = stream
        self.selector.register(stream.sock, selectors.EVENT_WRITE, stream)

    def _stop(self, stream: Stream) -> None:
        self.selector.unregister(stream.sock)
        stream.close()
        self.streams.pop(stream.spec.index, None)

    def _service(self, stream: Stream) -> None:
        if stream.sending:
            stream.send()
            if not stream.sending and not stream.ended:
                self.selector.modify(stream.sock, selectors.EVENT_READ, stream)
        else:
            stream.receive(self.report)
        if stream.ended:
            self._ended(stream)

    def _ended(self, stream: Stream) -> None:
        self._stop(stream)
        index = stream.spec.index
        opening = self.opening
        if opening is not None and index in opening.indexes and not stream.connected:
            opening.failed[index] = stream.ended  # it never opened: reported, not reopened
            return
        self.report.ended.append((index, stream.ended))
        if stream.reconnects < MAX_RECONNECTS:
            self.reopen_at[index] = (time.monotonic() + RETRY_SECS, stream)

    def _reopen_due(self) -> None:
        now = time.monotonic()
        for index, (when, old) in list(self.reopen_at.items()):
            if when <= now:
                del self.reopen_at[index]
                self.report.reconnects += 1
                self._start(
                    Stream(old.spec, last_event_id=old.last_id, reconnects=old.reconnects + 1)
                )

    def _close_all(self) -> None:
        for stream in list(self.streams.values()):
            self._stop(stream)


def reader_main(control: Connection) -> None:
    """The entry point of a reader process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the benchmark stops its readers itself
    die_with_parent()
    raise_open_files_limit()
    ReaderLoop(control).run()


# The benchmark's side


class ReaderStuck(RuntimeError):
    pass


class Readers:
    """The reader processes, and which of them holds each stream."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._controls: list[Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        self._owner: dict[int, int] = {}  # stream index -> reader
        self._load = [0] * count  # streams held by each reader
        for _ in range(count):
            mine, theirs = context.Pipe()
            process = context.Process(target=reader_main, args=(theirs,), daemon=True)
            process.start()
            theirs.close()
            self._controls.append(mine)
            self._processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p.pid is not None]

    def _tell(self, reader: int, command: tuple[object, ...]) -> None:
        try:
            self._controls[reader].send(command)
        except OSError as exc:  # the process is gone (its traceback is on stderr)
            raise ReaderStuck(f"reader process {reader + 1} is gone: {exc}") from exc

    def _answer(self, reader: int, timeout: float = ANSWER_SECS) -> object:
        control = self._controls[reader]
        try:
            if not control.poll(timeout):
                raise ReaderStuck(f"reader process {reader + 1} did not answer in {timeout:g}s")
            return control.recv()
        except (EOFError, OSError) as exc:
            raise ReaderStuck(f"reader process {reader + 1} is gone: {exc!r}") from exc

    def open(self, specs: list[StreamSpec], timeout: float) -> tuple[list[int], dict[int, str]]:
        """Opens the streams, spread evenly; returns those connected and why others failed."""
        shares: list[list[StreamSpec]] = [[] for _ in self._controls]
        for spec in specs:
            loads = [load + len(share) for load, share in zip(self._load, shares, strict=True)]
            shares[loads.index(min(loads))].append(spec)
        for reader, share in enumerate(shares):
            if share:
                self._tell(reader, ("open", share, timeout))
        connected: list[int] = []
        failed: dict[int, str] = {}
        for reader, share in enumerate(shares):
            if share:
                answer = self._answer(reader, timeout + ANSWER_SECS)
                assert isinstance(answer, tuple)
                ok, bad = answer
                connected += ok
                failed.update(bad)
                self._owner.update((index, reader) for index in ok)
                self._load[reader] += len(ok)
        return connected, failed

    def report(self) -> Report:
        """Everything delivered and seen since the last report, from every reader."""
        for reader in range(len(self._controls)):
            self._tell(reader, ("report",))
        total = Report()
        for reader in range(len(self._controls)):
            answer = self._answer(reader)
            assert isinstance(answer, Report)
            total.add(answer)
        return total

    def close(self, indexes: list[int]) -> None:
        """Closes these streams (they are not reopened)."""
        shares: dict[int, list[int]] = {}
        for index in indexes:
            reader = self._owner.pop(index, None)
            if reader is not None:
                shares.setdefault(reader, []).append(index)
                self._load[reader] -= 1
        for reader, share in shares.items():
            self._tell(reader, ("close", share))
        for reader in shares:
            self._answer(reader)

    def stop(self) -> None:
        """Stops every reader process (it closes its streams), killing any that hangs."""
        for control in self._controls:
            with contextlib.suppress(OSError):
                control.send(("quit",))
        for process in self._processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()
        for control in self._controls:
            control.close()
        self._owner.clear()
        self._load = [0] * len(self._load)
