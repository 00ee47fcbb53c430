"""The Jinja2 environment: templates/ plus the filters that turn message text into safe HTML."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from jinja2 import pass_context
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from webapp import settings
from webapp.auth import SignedInUser
from webapp.models import Message

URL_RE = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def render_text(text: str) -> Markup:
    """Message text as HTML: escaped, line breaks kept, http(s) links clickable, nothing else."""
    parts: list[str] = []
    last = 0
    for match in URL_RE.finditer(text):
        parts.append(escape(text[last : match.start()]))
        url = escape(match.group(0))
        parts.append(f'<a href="{url}" rel="noopener nofollow" target="_blank">{url}</a>')
        last = match.end()
    parts.append(escape(text[last:]))
    return Markup("".join(parts).replace("\n", "<br>\n"))  # noqa: S704 (every part escaped)


def iso_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def short_time(value: datetime) -> str:
    """A short label: the time today, else the date and time (UTC; the page may localise it)."""
    value = value.astimezone(UTC)
    if value.date() == datetime.now(UTC).date():
        return value.strftime("%H:%M")
    return value.strftime("%d %b %H:%M")


def order_key(message: Message) -> str:
    """Sorts messages as the server pages them: by time, then id (zero-padded, as text)."""
    return f"{int(message.created_at.timestamp() * 1000):015d}-{message.id}"


def _globals(request: Request) -> dict[str, Any]:
    user = request.user if isinstance(request.user, SignedInUser) else None
    return {"me": user.user if user else None, "csrf_token": user.csrf_token if user else ""}


@pass_context
def url_for(context: dict[str, Any], name: str, /, **path_params: Any) -> str:
    """A path, not an absolute URL: right behind any proxy, whatever scheme it speaks."""
    return str(context["request"].app.url_path_for(name, **path_params))


templates = Jinja2Templates(directory=settings.ROOT / "templates", context_processors=[_globals])
templates.env.filters.update(
    text=render_text, iso_time=iso_time, short_time=short_time, order_key=order_key
)
templates.env.globals["url_for"] = url_for


def render_fragment(request: Request, name: str, **context: Any) -> str:
    """A partial rendered outside a response (for the event stream)."""
    return templates.get_template(name).render(request=request, **_globals(request), **context)
