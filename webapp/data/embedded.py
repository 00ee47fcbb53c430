"""The embedded database: an nx-27017 server on a free loopback port, owned by this process.

Used when MONGODB_URI is unset. The server keeps its SQLite file in the data folder. One app
process owns a data folder at a time (an exclusive lock), so a second one cannot open the same
file behind the first one's back; to run several processes, point them all at one MONGODB_URI.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from pymongo import MongoClient
from pymongo.errors import PyMongoError

READY_TIMEOUT_SECS = 20
STOP_TIMEOUT_SECS = 5


class EmbeddedDatabaseError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """In a child before exec (Linux): it gets SIGTERM if its parent dies without cleaning up."""
    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedDatabase:
    """Start with start(), stop with stop(); `uri` says where it listens."""

    def __init__(self, data_dir: Path, *, database: str = "chat", port: int = 0) -> None:
        self.data_dir = data_dir
        self.database = database
        self.port = port  # 0: any free port
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/{self.database}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        self.port = self.port or free_port()
        command = [
            sys.executable, "-m", "webapp.data.nx_compat.serving",  # nx-27017, tuned
            "--db", str(self.data_dir / "chat.db"),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--log-file", str(self.data_dir / "nx-27017.log"),
            "--pid-file", str(self.data_dir / "nx-27017.pid"),
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 (our own fixed command line)
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # it logs to its --log-file as well
            start_new_session=True,  # Ctrl-C reaches the app, which then stops the server
            preexec_fn=die_with_parent,
        )
        self._wait_until_ready()

    def in_use(self) -> str:
        """Why another process has this data folder's database (a sentence), or ""."""
        try:
            self._take_lock()
        except EmbeddedDatabaseError as exc:
            return str(exc)
        self._lock, lock = None, self._lock
        assert lock is not None
        lock.close()
        return ""

    def _take_lock(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.data_dir / "embedded.lock", "a")  # noqa: SIM115 (held until stop)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise EmbeddedDatabaseError(
                f"Another app process is already using the embedded database in {self.data_dir}. "
                "Stop it, or run every process against one server with MONGODB_URI."
            ) from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock = lock

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + READY_TIMEOUT_SECS
        client: MongoClient[dict[str, object]] = MongoClient(self.uri, serverSelectionTimeoutMS=200)
        try:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    self.stop()
                    raise EmbeddedDatabaseError("The embedded database exited at start-up.")
                try:
                    client.admin.command("ping")
                    return
                except PyMongoError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise EmbeddedDatabaseError("The embedded database did not answer in time.")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_SECS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
