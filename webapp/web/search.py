"""GET /search: the messages a query finds among those the asker may read, newest first, a page
at a time; a fragment for htmx, a page otherwise."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from webapp.actions import finding
from webapp.web import respond, state
from webapp.web.session import signed_in
from webapp.web.templating import url_for


async def search_messages(request: Request) -> Response:
    """?q= (1 to 200 characters), ?in=ROOM_ID to look in one conversation, ?before=ID for
    older results."""
    me = signed_in(request)
    hub = state.hub(request)
    params = request.query_params
    results = await finding.find(
        hub.db,
        reader=me.user,
        public=hub.public,
        query=params.get("q", ""),
        within=params.get("in", ""),
        before=params.get("before", ""),
    )
    older = ""
    if results.older:
        query = {"q": results.query.text, "in": params.get("in", ""), "before": results.older}
        older = url_for("search") + "?" + urlencode({k: v for k, v in query.items() if v})
    context = {"results": results, "older_url": older, "within": params.get("in", "")}
    template = "_search_results.html" if respond.wants_fragment(request) else "search.html"
    return respond.render(request, template, context, vary=True)
