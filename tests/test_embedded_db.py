"""The app on its own embedded database (no MONGODB_URI): start, stop, restart, one owner."""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient, ReturnDocument

from tests.support import PASSWORD, AppServer, Person, wait_for
from webapp.data.embedded import EmbeddedDatabase

STOP_SECS = 10


def embedded_server(data_dir: Path) -> AppServer:
    """An app process on the embedded database in data_dir, with the development secret."""
    server = AppServer("", data_dir=data_dir)
    server.env.pop("SECRET_KEY", None)  # the key kept in data_dir, as `make run` has it
    server.env.pop("APP_ENV", None)
    return server


def assert_clean_stop(server: AppServer, code: int, sig: int = signal.SIGTERM) -> None:
    """Shut down in order. uvicorn finishes its shutdown, then re-raises the signal it caught
    (cooperative signal handling), so "killed by SIGTERM" after a complete shutdown is clean."""
    log = server.log()
    assert code in (0, -sig), f"exit code {code}:\n{log}"
    assert "Application shutdown complete." in log, log
    assert "Finished server process" in log, log
    assert "Traceback" not in log, log


def _is_running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next((line for line in status.splitlines() if line.startswith("State:")), "")
    return "Z" not in state.split()[1:2]  # a zombie has stopped running


def nx_pids(data_dir: Path) -> list[int]:
    """The running nx-27017 processes serving data_dir's database, from the process table."""
    database = str(data_dir / "chat.db")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any("nx-27017" in arg for arg in args) and database in args:
            pid = int(entry.name)
            if _is_running(pid):
                pids.append(pid)
    return pids


def the_nx_pid(data_dir: Path) -> int:
    pids = nx_pids(data_dir)
    assert len(pids) == 1, f"expected one nx-27017 for {data_dir}, found {pids}"
    pid_file = data_dir / "nx-27017.pid"
    if pid_file.exists():
        assert int(pid_file.read_text().strip()) == pids[0]
    return pids[0]


def wait_until_gone(pid: int, within: float = 5.0) -> None:
    """No event tells us another process's child has gone: poll, with a deadline."""
    wait_for(lambda: not _is_running(pid), within, what=f"nx-27017 (pid {pid}) gone")


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    path.mkdir()  # AppServer keeps its log there
    yield path
    for pid in nx_pids(path):  # a failed test must not leave a server behind
        os.kill(pid, signal.SIGTERM)


def test_data_and_the_development_secret_survive_a_restart(data_dir: Path) -> None:
    server = embedded_server(data_dir).start()
    try:
        health = httpx.get(server.url + "/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
        someone = Person.register(server.url)
        old_cookie = someone.cookie
        text = f"kept across restarts {secrets.token_hex(6)}"
        assert someone.post_public(text).status_code == 201
        someone.close()
        nx_pid = the_nx_pid(data_dir)
        assert (data_dir / "chat.db").exists()
        assert (data_dir / "secret_key").exists()
        key = (data_dir / "secret_key").read_text()

        # A live event stream must not hold the shutdown up.
        cookies = {"session": old_cookie}
        with httpx.stream(
            "GET", server.url + "/events", cookies=cookies, timeout=httpx.Timeout(10, read=30)
        ) as stream:
            assert stream.status_code == 200
            for line in stream.iter_lines():
                if line == ": connected":
                    break
            code = server.stop(within=STOP_SECS)  # or subprocess.TimeoutExpired
    finally:
        server.stop()
    assert_clean_stop(server, code)
    wait_until_gone(nx_pid)
    assert nx_pids(data_dir) == []

    again = embedded_server(data_dir).start()
    try:
        assert (data_dir / "secret_key").read_text() == key
        with httpx.Client(base_url=again.url, cookies=cookies, timeout=10) as old_session:
            page = old_session.get("/")
            assert page.status_code == 200, "the old cookie no longer works after a restart"
            assert someone.username in page.text
            assert text in page.text
        signed_in = httpx.post(
            again.url + "/login", data={"username": someone.username, "password": PASSWORD}
        )
        assert signed_in.status_code == 303
    finally:
        assert_clean_stop(again, again.stop())


def test_a_second_process_on_the_same_data_folder_refuses_to_start(data_dir: Path) -> None:
    first = embedded_server(data_dir).start()
    try:
        nx_pid = the_nx_pid(data_dir)
        second = embedded_server(data_dir)
        try:
            with pytest.raises(RuntimeError) as refused:
                second.start()
        finally:
            second.stop()
        message = str(refused.value)
        assert "exited at start-up" in message  # it said so and stopped, rather than hanging
        assert str(data_dir) in message
        assert "MONGODB_URI" in message

        # The first one is untouched.
        assert the_nx_pid(data_dir) == nx_pid
        assert httpx.get(first.url + "/healthz").status_code == 200
        with Person.register(first.url) as someone:
            assert someone.post_public("still here").status_code == 201
    finally:
        assert_clean_stop(first, first.stop())
    wait_until_gone(nx_pid)


def test_sigint_stops_cleanly_without_orphaning_the_database(data_dir: Path) -> None:
    server = embedded_server(data_dir).start()
    try:
        nx_pid = the_nx_pid(data_dir)
        code = server.stop(signal.SIGINT, within=STOP_SECS)  # or subprocess.TimeoutExpired
    finally:
        server.stop()
    assert_clean_stop(server, code, signal.SIGINT)
    wait_until_gone(nx_pid)
    assert nx_pids(data_dir) == []


def test_if_the_app_dies_the_database_goes_too(data_dir: Path) -> None:
    server = embedded_server(data_dir).start()
    with Person.register(server.url) as someone:
        name = someone.username
    nx_pid = the_nx_pid(data_dir)
    assert server.process is not None
    server.process.kill()  # no chance to clean up
    server.process.wait()
    server.stop()
    wait_until_gone(nx_pid)

    # The folder is free again, and nothing was lost.
    again = embedded_server(data_dir).start()
    try:
        response = httpx.post(again.url + "/login", data={"username": name, "password": PASSWORD})
        assert response.status_code == 303
    finally:
        assert_clean_stop(again, again.stop())


def _threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def test_the_embedded_server_answers_commands_in_its_loop_not_in_threads(tmp_path: Path) -> None:
    """Commands from many connections at once are all answered, each as it should be, and the
    server's process starts no thread for them (nx_compat/serving.py)."""
    server = EmbeddedDatabase(tmp_path / "db", database="in_the_loop")
    server.start()
    client: MongoClient[dict[str, Any]] = MongoClient(server.uri, maxPoolSize=16)
    try:
        pid = int((tmp_path / "db" / "nx-27017.pid").read_text())
        db = client.get_default_database()
        db.counters.insert_one({"_id": "n", "value": 0})
        before = _threads(pid)

        def write(sender: int) -> list[int]:
            numbers = []
            for i in range(25):
                db.notes.insert_one({"sender": sender, "i": i})
                counter = db.counters.find_one_and_update(
                    {"_id": "n"}, {"$inc": {"value": 1}}, return_document=ReturnDocument.AFTER
                )
                assert counter is not None
                numbers.append(counter["value"])
            return numbers

        with ThreadPoolExecutor(16) as pool:
            numbers = [n for some in pool.map(write, range(16)) for n in some]
        assert sorted(numbers) == list(range(1, 16 * 25 + 1))
        assert db.notes.count_documents({}) == 16 * 25
        assert _threads(pid) == before
    finally:
        client.close()
        server.stop()


def test_the_change_table_keeps_the_last_thousand_changes_a_stream_may_resume_from(
    tmp_path: Path,
) -> None:
    """Once every open stream has passed them, a collection's changes go, but for the newest
    thousand: a stream resumes from any of those, and from an older one it gets what is left
    (nx_compat/serving.py prunes as nx-27017 does, by an index)."""
    server = EmbeddedDatabase(tmp_path / "db", database="pruning")
    server.start()
    client: MongoClient[dict[str, Any]] = MongoClient(server.uri)
    retained, made = 1000, 1500
    try:
        notes = client.get_default_database().notes
        tokens: list[Any] = []
        with notes.watch(full_document="updateLookup") as changes:
            notes.insert_many([{"i": i} for i in range(1, made // 2 + 1)])
            notes.insert_many([{"i": i} for i in range(made // 2 + 1, made + 1)])
            while len(tokens) < made:  # getMore answers at once: no wait here
                if (change := changes.try_next()) is not None:
                    assert change["fullDocument"]["i"] == len(tokens) + 1
                    tokens.append(change["_id"])

            def first_after(nth: int) -> int:
                with notes.watch(start_after=tokens[nth - 1]) as resumed:
                    while (change := resumed.try_next()) is None:
                        pass
                    return int(change["fullDocument"]["i"])

            oldest_kept = made - retained + 1
            assert first_after(made - retained + 100) == made - retained + 101  # kept
            assert first_after(oldest_kept) == oldest_kept + 1
            assert first_after(100) == oldest_kept  # those in between went
    finally:
        client.close()
        server.stop()
