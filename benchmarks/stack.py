"""What a benchmark runs against: the database and the app, started the way production starts it.

The database is an embedded nx-27017 in a temporary folder, or MONGODB_URI with a scratch
database that is dropped at the end. The app is the Procfile's `web:` command (or another
command: the floor's, benchmarks/bare.py), run with `sh -c` as a Heroku-style host runs it,
with PORT, MONGODB_URI, DATA_DIR and SECRET_KEY set.
Every process is found by the port it listens on, so whatever the command starts, the figures
are those of the process that serves. This module also reads CPU time and memory from /proc.
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from pymongo import MongoClient

from webapp.data.embedded import EmbeddedDatabase, die_with_parent, free_port

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
READY_SECS = 30.0
STOP_SECS = 15.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# /proc


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process in seconds; None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def rss_kb(pid: int) -> int | None:
    """VmRSS of a process in KiB; None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def load_average() -> str:
    """The machine's 1-minute load average: other work on the machine skews every figure."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except (OSError, IndexError):
        return "?"


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{inode}]")
    return inodes


def listening_pid(port: int) -> int | None:
    """The process that listens on this TCP port, if this user may see it."""
    inodes = _listening_inodes(port)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return int(entry.name)
    return None


def raise_open_files_limit() -> None:
    """Every stream is a socket: allow as many open files as the hard limit does."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def log_problems(path: Path) -> list[str]:
    """The lines of a log that report an error or a warning (or start a traceback)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    words = ("ERROR", "WARNING", "Traceback", "CRITICAL")
    return [line for line in lines if any(word in line for word in words)]


# The database


@dataclass
class Database:
    uri: str  # with the database name in its path
    label: str
    pid: int | None  # the server's process, when it runs on this machine
    log_path: Path | None = None  # the embedded server's log


def _scratch_uri(uri: str) -> tuple[str, str]:
    """The URI with a fresh database name in its path (options kept), and that name."""
    name = f"chat_bench_{secrets.token_hex(4)}"
    return with_database(uri, name), name


def with_database(uri: str, name: str) -> str:
    """The URI with another database name in its path (options kept)."""
    return urlsplit(uri)._replace(path=f"/{name}").geturl()


def database_name(uri: str) -> str:
    return urlsplit(uri).path.lstrip("/")


def drop_database(uri: str, name: str) -> None:
    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(name)
    finally:
        client.close()


@contextlib.contextmanager
def database(scratch: Path) -> Iterator[Database]:
    """MONGODB_URI with a scratch database, else an embedded nx-27017 in `scratch`."""
    external = os.environ.get("MONGODB_URI", "")
    if external:
        uri, name = _scratch_uri(external)
        where = urlsplit(uri)
        local = where.hostname in ("localhost", "127.0.0.1", "::1")
        pid = listening_pid(where.port or 27017) if local else None
        try:
            yield Database(uri, "MONGODB_URI", pid)
        finally:
            drop_database(uri, name)
        return
    server = EmbeddedDatabase(scratch / "db", database="chat_bench")
    try:
        server.start()
        pid = listening_pid(server.port)
        yield Database(server.uri, "embedded nx-27017", pid, scratch / "db" / "nx-27017.log")
    finally:
        server.stop()


# The app


def procfile_web_command(procfile: Path = PROCFILE) -> str:
    """The command of the Procfile's `web:` process."""
    for line in procfile.read_text().splitlines():
        name, colon, command = line.partition(":")
        if colon and name.strip() == "web" and command.strip():
            return command.strip()
    raise RuntimeError(f"{procfile} has no web: line")


class App:
    """One app process, started with the Procfile's web command unless given another;
    stop() ends its whole process group."""

    def __init__(
        self,
        name: str,
        *,
        mongo_uri: str,
        data_dir: Path,
        secret_key: str,
        command: str | None = None,
    ) -> None:
        self.name = name
        self.command = command or procfile_web_command()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = data_dir / "app.log"
        self.pid: int | None = None  # the serving process, once ready
        self._shell: subprocess.Popen[bytes] | None = None
        venv_bin = str(Path(sys.executable).parent)  # where the Procfile's commands live
        self._env = {
            **os.environ,
            "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
            "PORT": str(self.port),
            "MONGODB_URI": mongo_uri,
            "DATA_DIR": str(data_dir),
            "SECRET_KEY": secret_key,
            "PYTHONUNBUFFERED": "1",
        }

    def start(self) -> None:
        """Runs its command and waits until GET /healthz answers 200."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self._shell = subprocess.Popen(  # noqa: S603 (the Procfile's, or the benchmark's)
                ["/bin/sh", "-c", self.command],
                cwd=ROOT,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one group to stop; Ctrl-C reaches the benchmark only
                preexec_fn=die_with_parent,
            )
        self._wait_until_ready()
        self.pid = listening_pid(self.port) or self._shell.pid

    @property
    def running(self) -> bool:
        return self._shell is not None

    def _wait_until_ready(self) -> None:
        assert self._shell is not None
        deadline = time.monotonic() + READY_SECS
        while time.monotonic() < deadline:
            if self._shell.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready in {READY_SECS:g}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL to what is left of it after STOP_SECS."""
        shell, self._shell = self._shell, None
        if shell is None:
            return
        group = shell.pid  # the shell leads the group: start_new_session
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECS
        while time.monotonic() < deadline and _group_alive(group, shell):
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        shell.wait()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _group_alive(group: int, shell: subprocess.Popen[bytes]) -> bool:
    """Whether a process of the group still runs. One that has exited but not been reaped
    (a zombie) does not count: the server the shell started is orphaned when the shell goes,
    and who reaps it then (the machine's init) may take seconds to."""
    shell.poll()  # reaps the shell once it exits
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()  # state, ppid, pgrp, ...
            if int(fields[2]) == group and fields[0] != "Z":
                return True
    return False


@contextlib.contextmanager
def app(
    name: str, *, mongo_uri: str, data_dir: Path, secret_key: str, command: str | None = None
) -> Iterator[App]:
    """A started app, stopped on the way out whatever happens."""
    server = App(
        name, mongo_uri=mongo_uri, data_dir=data_dir, secret_key=secret_key, command=command
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()
