"""Reading and typing over HTTP: POST .../read and POST .../typing on any conversation."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from webapp.actions import reading, typing
from webapp.errors import BadRequest
from webapp.rules.text import clean_seq
from webapp.web import auth, conversations, state
from webapp.web.session import signed_in


async def mark_read(request: Request) -> Response:
    """POST .../read: the reader has seen this conversation up to the message numbered `seq`
    (everything so far, without it). 204; a client that accepts JSON is told where that leaves
    it, as a read event tells the reader's other tabs (actions/reading.ReadState)."""
    me = signed_in(request)
    form = await auth.checked_form(request)
    conversation = await conversations.named_by(request, me)
    seqs = form.getlist("seq")
    conversation.seat.must_read()
    if len(seqs) > 1:
        raise BadRequest("Send one seq: the number of the last message seen.")
    seq = clean_seq(str(seqs[0])) if seqs else None
    db = state.db(request)
    await reading.mark_read(db, conversation.seat, reader=me.user, seq=seq)
    if "application/json" not in request.headers.get("accept", ""):
        return Response(status_code=204)
    read = await reading.state(db, conversation.room, key=conversation.key, reader=me.user)
    return JSONResponse(read.as_json())


async def post_typing(request: Request) -> Response:
    """POST .../typing: tell the others in this conversation that the user is typing. 204,
    whether or not this notice goes out (at most one every few seconds does)."""
    me = signed_in(request)
    await auth.checked_form(request)
    conversation = await conversations.named_by(request, me)
    await typing.notice(state.db(request), conversation.seat, typist=me.user)
    return Response(status_code=204)
