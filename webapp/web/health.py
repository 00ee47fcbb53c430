"""GET /healthz: 200 while the database answers, 503 otherwise."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from webapp.web import state


async def show_health(request: Request) -> Response:
    healthy = await state.of(request).connection.is_healthy()
    status = "ok" if healthy else "database unavailable"
    return JSONResponse({"status": status}, status_code=200 if healthy else 503)
