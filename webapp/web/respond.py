"""How a request is answered, decided in one place for every handler and the error handler.

Three kinds of client ask: htmx (HX-Request: a fragment to swap in), a browser without script
(a page, and after a change a redirect to the page: 303), and scripts (a Bearer token, or no
HTML accepted: JSON, and a change's status with its fragment). A URL that serves both a page
and a fragment says so with `Vary: HX-Request`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from webapp.errors import ChatError, Unauthorized, retry_headers
from webapp.web.templating import templates


def is_htmx(request: Request) -> bool:
    return bool(request.headers.get("hx-request"))


def wants_fragment(request: Request) -> bool:
    """An htmx request that wants a fragment (boosted navigation wants the page)."""
    return is_htmx(request) and not request.headers.get("hx-boosted")


def is_plain_form(request: Request) -> bool:
    """A browser form without JavaScript: a change is answered with a redirect to the page."""
    return not is_htmx(request) and "text/html" in request.headers.get("accept", "")


def wants_json(request: Request) -> bool:
    """A script: a Bearer token, the API, or a client that accepts no HTML and is not htmx."""
    return (
        request.url.path.startswith(("/api/", "/events"))
        or "authorization" in request.headers
        or ("text/html" not in request.headers.get("accept", "") and not is_htmx(request))
    )


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    vary: bool = False,
) -> Response:
    """A page or a fragment; `vary` when the same URL serves the other too."""
    response = templates.TemplateResponse(
        request, template, dict(context), status_code=status_code, headers=headers
    )
    if vary:
        response.headers["Vary"] = "HX-Request"
    return response


def changed(
    request: Request,
    location: str,
    *,
    status_code: int = 200,
    fragment: tuple[str, Mapping[str, Any]] | None = None,
    json: Mapping[str, Any] | None = None,
    go: bool = False,
) -> Response:
    """The answer to a change: a plain form goes on to `location` (303); htmx gets `fragment`
    (else `json`, else nothing) with `status_code`, and is sent to `location` too when `go` (a
    room just made or joined opens); a script gets `json`, else the same as htmx. Location
    says where the changed thing is."""
    if is_plain_form(request):
        return RedirectResponse(location, status_code=303)
    headers = {"Location": location}
    if go and is_htmx(request):
        headers["HX-Location"] = location
    if fragment is not None and (is_htmx(request) or json is None):
        template, context = fragment
        return render(request, template, context, status_code=status_code, headers=headers)
    if json is not None:
        return JSONResponse(dict(json), status_code=status_code, headers=headers)
    return Response(status_code=status_code, headers=headers)


def error(request: Request, exc: ChatError) -> Response:
    """A refusal: JSON {"error"} for scripts; a sign-in for someone not signed in; the error as
    a fragment for htmx and as a page otherwise. Retry-After on a refusal for now."""
    headers = retry_headers(exc)
    if wants_json(request):
        return JSONResponse({"error": exc.message}, status_code=exc.status_code, headers=headers)
    if isinstance(exc, Unauthorized):
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login", status_code=303)
    template = "_error.html" if is_htmx(request) else "error.html"
    return render(request, template, {"error": exc}, status_code=exc.status_code, headers=headers)
