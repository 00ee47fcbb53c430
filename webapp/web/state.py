"""What the app holds while it runs (set up by the lifespan in app.py), reached from a request
through these functions, so that the imports say who uses what."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from webapp.data.connection import Connection, Db
from webapp.live.hub import Hub


@dataclass(frozen=True)
class AppState:
    connection: Connection
    hub: Hub

    @property
    def db(self) -> Db:
        return self.connection.db


def of(conn: HTTPConnection) -> AppState:
    app_state: AppState = conn.app.state.chat
    return app_state


def db(conn: HTTPConnection) -> Db:
    return of(conn).connection.db


def hub(conn: HTTPConnection) -> Hub:
    return of(conn).hub
