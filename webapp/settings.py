"""Settings, read once from the environment (and a .env file when there is one)."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from starlette.config import Config
from starlette.datastructures import Secret

ROOT = Path(__file__).resolve().parent.parent
config = Config(ROOT / ".env" if (ROOT / ".env").exists() else None)

APP_ENV: str = config("APP_ENV", default="development")
PRODUCTION: bool = APP_ENV == "production"
# Unset: the app runs its own embedded database (webapp/embedded_db.py).
MONGODB_URI: str = config("MONGODB_URI", default="")
PORT: int = config("PORT", cast=int, default=8000)
# App processes `python -m webapp` starts (Heroku sets it from the dyno's size).
WEB_CONCURRENCY: int = config("WEB_CONCURRENCY", cast=int, default=1)
# Heroku sets DYNO in every dyno; its router is then in front of the app.
ON_HEROKU: bool = bool(config("DYNO", default=""))
# How many proxies in front of the app append to X-Forwarded-For: 1 behind Heroku's router,
# else 0 (the header is ignored, since any client can write it) unless the operator says so.
TRUSTED_PROXY_HOPS: int = config("TRUSTED_PROXY_HOPS", cast=int, default=1 if ON_HEROKU else 0)
# Where the embedded database file and the development secret live.
DATA_DIR: Path = config("DATA_DIR", cast=Path, default=ROOT / "data")

SESSION_COOKIE = "session"
TOKEN_LIFETIME_SECS = 7 * 24 * 60 * 60  # one week
CSRF_MAX_AGE_SECS = TOKEN_LIFETIME_SECS
KEEPALIVE_SECS = 15  # well under the 55 s idle cut-off of Heroku-style routers
# A stream's presence lapses this long after its process last vouched for it (a process that
# dies without a goodbye takes its users offline within this time and a sweep).
PRESENCE_TTL_SECS: int = config("PRESENCE_TTL_SECS", cast=int, default=30)
# An event stream whose socket takes nothing for this long is closed (and its user goes offline).
STREAM_SEND_TIMEOUT_SECS: float = config("STREAM_SEND_TIMEOUT_SECS", cast=float, default=10.0)
# Recent message changes each process keeps in memory, so that a reconnecting stream replays
# from there; a cursor older than that replays from the database's change stream.
REPLAY_RING_SIZE: int = config("REPLAY_RING_SIZE", cast=int, default=5000)
# Above this many people online, a presence change goes live only to those who share a room
# with the person (a DM or a group room); everyone's list catches up every
# PRESENCE_REFRESH_SECS, so that presence does not grow with the square of the users.
LIVE_PRESENCE_LIMIT: int = config("LIVE_PRESENCE_LIMIT", cast=int, default=500)
PRESENCE_REFRESH_SECS: float = config("PRESENCE_REFRESH_SECS", cast=float, default=60.0)
# How the process writes its logs: "json" (one object a line) or "text".
LOG_FORMAT: str = config("LOG_FORMAT", default="json" if PRODUCTION else "text")
# The bearer token GET /metrics asks for; unset, there are no metrics to see (404).
METRICS_TOKEN: Secret = Secret(config("METRICS_TOKEN", default=""))
# Every rate limit's window stretched this many times (bursts unchanged): a test server with
# a large factor counts its limits exactly, however slowly it runs.
LIMIT_WINDOW_SCALE: float = config("LIMIT_WINDOW_SCALE", cast=float, default=1.0)


def _development_secret() -> str:
    """A random secret made once and kept in the data folder, so sessions survive restarts."""
    path = DATA_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(value)
    return value


def _secret_key() -> Secret:
    value = config("SECRET_KEY", default="")
    if value:
        if PRODUCTION and len(value) < 32:
            sys.exit("SECRET_KEY must be at least 32 characters when APP_ENV=production.")
        return Secret(value)
    if PRODUCTION:
        sys.exit("SECRET_KEY is required when APP_ENV=production.")
    return Secret(_development_secret())


SECRET_KEY: Secret = _secret_key()
