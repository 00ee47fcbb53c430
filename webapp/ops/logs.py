"""The process's logs: one JSON object a line with LOG_FORMAT=json (the default in production,
python-json-logger), plain lines otherwise; the server's own lines (uvicorn's) go the same way.
Every line written while a request is answered carries its request id.

What is logged never includes a password, a token, a cookie, a CSRF token or message text:
request lines name the path (no query string), the status, the time and the user id.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from webapp import settings

request_id: ContextVar[str] = ContextVar("request_id", default="")

PLAIN = "%(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


class RequestIdFilter(logging.Filter):
    """Puts the id of the request being answered (if any) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id.get()
        return True


def config(log_format: str = "") -> dict[str, Any]:
    """A logging dictConfig for the app and uvicorn alike (uvicorn.run(log_config=...))."""
    as_json = (log_format or settings.LOG_FORMAT) == "json"
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        }
        if as_json
        else {"format": PLAIN}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "line",
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"line": formatter},
        "handlers": {"line": handler},
        "root": {"handlers": ["line"], "level": "INFO"},
        "loggers": {
            # uvicorn's own loggers write through the root's one handler, as JSON too.
            "uvicorn": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": True},
        },
    }
