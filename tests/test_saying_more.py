"""Saying more over real HTTP and real event streams: formatted messages, reactions and replies
(DESIGN.md, "Saying more"). Every refusal changes nothing, and is tested as carefully as the
success; what an attacker would send is tried, not only what the page sends."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from bson import ObjectId

from tests.html import Element, fragment
from tests.support import (
    Db,
    EventStream,
    Person,
    SSEEvent,
    create_room,
    message_element,
    message_id,
    open_stream,
    post_in_room,
)

MakePerson = Callable[..., Person]
NOT_ONE_EMOJI = "A reaction is one emoji."
NO_SUCH_ORIGINAL = "reply_to names no message of this conversation."


def reactions_of(article: Element) -> dict[str, tuple[str, str, str]]:
    """A message's reactions: emoji -> (visible text, who, aria-pressed)."""
    listed = article.find("ul", class_="reactions")
    buttons = listed.find_all("button", class_="reaction") if listed else []
    return {b.get("data-emoji"): (b.text, b.get("data-by"), b.get("aria-pressed")) for b in buttons}


async def first(stream: EventStream, name: str, matches: Callable[[SSEEvent], bool]) -> SSEEvent:
    """The first `name` event on the stream that matches."""
    return (await stream.until(name, matches))[-1]


def react(someone: Person, msg_id: str, emoji: str) -> httpx.Response:
    return someone.send("POST", f"/messages/{msg_id}/reactions", {"emoji": emoji})


def unreact(someone: Person, msg_id: str, emoji: str) -> httpx.Response:
    return someone.client.delete(
        f"/messages/{msg_id}/reactions",
        params={"emoji": emoji},
        headers={"X-CSRF-Token": someone.csrf, "HX-Request": "true"},
    )


def stored_reactions(db: Db, msg_id: str) -> tuple[dict[str, object], int]:
    doc = db["message"].find_one({"_id": ObjectId(msg_id)})
    assert doc is not None
    return doc.get("reactions", {}), doc.get("reaction_kinds", 0)


# Formatting


def test_a_message_is_stored_as_typed_and_shown_formatted(person: Person, db: Db) -> None:
    text = "**done** with `code`, see https://example.com\n\n- one\n- two"
    posted = person.post_public(text)
    assert posted.status_code == 201
    article = fragment(posted.text)
    body = article.one("div", class_="body")
    assert body.one("strong").text == "done"
    assert body.one("code").text == "code"
    assert body.one("a").get("href") == "https://example.com"
    assert body.one("a").get("rel") == "noopener nofollow ugc"
    assert [li.text for li in body.find_all("li")] == ["one", "two"]
    stored = db["message"].find_one({"_id": ObjectId(message_id(posted.text))})
    assert stored is not None and stored["body"] == text
    # The edit box shows the text as typed; an edit renders again.
    msg_id = message_id(posted.text)
    edit_form = fragment(
        person.client.get(f"/messages/{msg_id}/edit", headers={"HX-Request": "true"}).text
    )
    assert edit_form.one("textarea").raw_text == text
    edited = person.send("PATCH", f"/messages/{msg_id}", {"body": "_now_ ~~gone~~"})
    body = fragment(edited.text).one("div", class_="body")
    assert (body.one("em").text, body.one("s").text) == ("now", "gone")


async def test_what_an_attacker_types_reaches_readers_as_text(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    attack = '<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror="alert(1)">'
    async with open_stream(bob.base_url, token=bob.token()) as events:
        posted = alice.post_public(attack)
        event = await first(
            events, "message", lambda e: message_id(e.data) == message_id(posted.text)
        )
    for html in (posted.text, event.data):
        body = fragment(html).one("div", class_="body")
        assert [e.tag for e in body.iter()] == ["p"]  # nothing but a paragraph of text
        assert "<script>alert(1)</script>" in body.raw_text


# Reactions


async def test_reactions_are_live_for_every_reader_and_yours_is_marked_on_your_page(
    make_person: MakePerson,
) -> None:
    alice, bob, carol = make_person(), make_person(), make_person()
    msg_id = message_id(alice.post_public("react to me").text)
    async with (
        open_stream(alice.base_url, token=alice.token()) as alices,
        open_stream(carol.base_url, token=carol.token()) as carols,
    ):
        answered = react(bob, msg_id, "👍")
        assert answered.status_code == 200
        # His own answer is made for him: his reaction is pressed.
        assert reactions_of(fragment(answered.text)) == {"👍": ("👍 1", bob.username, "true")}
        for stream in (alices, carols):  # the same message again, with its reaction
            event = await first(stream, "message", lambda e: bool(reactions_of(fragment(e.data))))
            assert message_id(event.data) == msg_id
            shown = reactions_of(fragment(event.data))
            assert shown == {"👍": ("👍 1", bob.username, "false")}  # nobody's state in it
            assert not fragment(event.data).has("data-new")  # not a new message
        assert react(carol, msg_id, "👍").status_code == 200
        assert react(carol, msg_id, "🎉").status_code == 200
        again = react(bob, msg_id, "👍")  # again: no change
        assert reactions_of(fragment(again.text)) == {
            "👍": ("👍 2", f"{bob.username} {carol.username}", "true"),
            "🎉": ("🎉 1", carol.username, "false"),
        }
        # On bob's own page, his reaction is pressed and carol's alone is not.
        page = bob.page("/rooms/public")
        shown = reactions_of(message_element(page, msg_id))
        assert shown["👍"][2] == "true" and shown["🎉"][2] == "false"
        # Taking it back: by htmx, then by a plain form.
        removed = unreact(bob, msg_id, "👍")
        assert reactions_of(fragment(removed.text))["👍"] == ("👍 1", carol.username, "false")
        assert unreact(bob, msg_id, "👍").status_code == 200  # none: no change
        plain = carol.client.post(
            f"/messages/{msg_id}/reactions/remove",
            data={"csrf_token": carol.csrf, "emoji": "🎉"},
            headers={"Accept": "text/html"},
        )
        assert plain.status_code == 303 and plain.headers["location"].endswith(f"#msg-{msg_id}")
        final = {"👍": ("👍 1", carol.username, "false")}  # after every change above, in order
        await first(carols, "message", lambda e: reactions_of(fragment(e.data)) == final)


def test_people_reacting_at_once_all_count(make_person: MakePerson, db: Db) -> None:
    author = make_person()
    crowd = [make_person() for _ in range(8)]
    msg_id = message_id(author.post_public("everyone at once").text)
    emoji = ["👍", "❤️"]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda p: react(p[1], msg_id, emoji[p[0] % 2]), enumerate(crowd)))
    assert [a.status_code for a in answers] == [200] * 8
    stored, kinds = stored_reactions(db, msg_id)
    assert kinds == 2
    for n, mark in enumerate(emoji):
        entry = stored[mark]
        assert isinstance(entry, dict)
        assert entry["n"] == 4
        assert set(entry["by"]) == {p.username for k, p in enumerate(crowd) if k % 2 == n}


@pytest.mark.parametrize(
    "emoji",
    ["", "a", "yes", "👍👍", "👍 ", "😀😃", "x" * 1000, "<b>👍</b>", "👍" * 40, "\u200d", "1"],
    ids=[
        "empty",
        "letter",
        "word",
        "two",
        "space",
        "two others",
        "1000",
        "markup",
        "40",
        "joiner",
        "digit",
    ],
)
def test_a_reaction_that_is_not_one_emoji_is_refused(person: Person, db: Db, emoji: str) -> None:
    msg_id = message_id(person.post_public("not that").text)
    answer = react(person, msg_id, emoji)
    assert (answer.status_code, answer.text) == (
        400,
        f'<p class="form-error" role="alert">{NOT_ONE_EMOJI}</p>',
    )
    assert stored_reactions(db, msg_id) == ({}, 0)


@pytest.mark.parametrize("emoji", ["👍🏽", "👨‍👩‍👧", "🏳️‍🌈", "❤️", "#️⃣", "🇫🇷"])
def test_one_emoji_of_any_make_is_taken(person: Person, db: Db, emoji: str) -> None:
    msg_id = message_id(person.post_public("any emoji").text)
    assert react(person, msg_id, emoji).status_code == 200
    assert list(stored_reactions(db, msg_id)[0]) == [emoji]


def test_the_21st_different_emoji_is_refused(person: Person, db: Db) -> None:
    msg_id = message_id(person.post_public("twenty at most").text)
    twenty = [chr(0x1F600 + n) for n in range(20)]
    for emoji in twenty:
        assert react(person, msg_id, emoji).status_code == 200
    refused = react(person, msg_id, "🎉")
    assert refused.status_code == 409
    stored, kinds = stored_reactions(db, msg_id)
    assert (list(stored), kinds) == (twenty, 20)
    assert react(person, msg_id, twenty[0]).status_code == 200  # one already there: fine
    # One taken away makes room again.
    assert unreact(person, msg_id, twenty[0]).status_code == 200
    assert react(person, msg_id, "🎉").status_code == 200
    assert stored_reactions(db, msg_id)[1] == 20


def test_reactions_to_what_one_cannot_read_are_not_found(make_person: MakePerson, db: Db) -> None:
    alice, bob, mallory = make_person(), make_person(), make_person()
    in_dm = message_id(alice.post_dm(bob.username, "between us").text)
    room_id = create_room(alice)
    in_room = post_in_room(alice, room_id, "members only")
    gone = message_id(alice.post_public("soon gone").text)
    assert alice.send("DELETE", f"/messages/{gone}").status_code == 200
    unknown = react(mallory, str(ObjectId()), "👍")
    assert unknown.status_code == 404
    for msg_id in (in_dm, in_room):
        for answer in (react(mallory, msg_id, "👍"), unreact(mallory, msg_id, "👍")):
            assert (answer.status_code, answer.text) == (404, unknown.text)
        assert stored_reactions(db, msg_id) == ({}, 0)
    assert react(mallory, "not-an-id", "👍").status_code == 404
    assert react(bob, gone, "👍").status_code == 409  # deleted
    assert stored_reactions(db, gone)[0] == {}
    # Without the CSRF token, nothing.
    forged = bob.client.post(f"/messages/{in_dm}/reactions", data={"emoji": "👍"})
    assert forged.status_code == 403
    assert stored_reactions(db, in_dm) == ({}, 0)


async def test_a_reaction_is_replayed_after_a_reconnect(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    token = bob.token()
    async with open_stream(bob.base_url, token=token) as events:
        msg_id = message_id(alice.post_public("before the drop").text)
        seen = await first(events, "message", lambda e: message_id(e.data) == msg_id)
        cursor = seen.id
    assert react(alice, msg_id, "😮").status_code == 200  # while bob is away
    async with open_stream(bob.base_url, token=token, last_event_id=cursor or "") as events:
        replayed = await first(events, "message", lambda e: message_id(e.data) == msg_id)
    assert reactions_of(fragment(replayed.data)) == {"😮": ("😮 1", alice.username, "false")}


def test_reacting_without_script(person: Person) -> None:
    msg_id = message_id(person.post_public("plain forms").text)
    palette = person.page(f"/messages/{msg_id}/reactions")
    buttons = palette.find("ul", class_="palette").find_all("button")
    names = [b.get("aria-label") for b in buttons]
    assert names[:6] == [f"React with {e}" for e in ("👍", "❤️", "😂", "🎉", "😮", "😢")]
    posted = person.client.post(
        f"/messages/{msg_id}/reactions",
        data={"csrf_token": person.csrf, "emoji": "😂"},
        headers={"Accept": "text/html"},
    )
    assert posted.status_code == 303 and posted.headers["location"].endswith(f"#msg-{msg_id}")
    page = person.page("/rooms/public")
    assert reactions_of(message_element(page, msg_id))["😂"][2] == "true"


# Replies


async def test_a_reply_quotes_the_original_as_it_is_now(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    original = message_id(alice.post_public("the **original** words, " + "long " * 40).text)
    async with open_stream(alice.base_url, token=alice.token()) as events:
        reply = bob.send("POST", "/rooms/public/messages", {"body": "agreed", "reply_to": original})
        assert reply.status_code == 201
        reply_id = message_id(reply.text)
        live = await first(events, "message", lambda e: message_id(e.data) == reply_id)
    for html in (reply.text, live.data):
        quote = fragment(html).one("a", class_="quote")
        assert quote.get("href").endswith(f"#msg-{original}")
        assert quote.one(class_="quote-sender").text == alice.username
        assert quote.one(class_="quote-text").text.startswith("the original words, long")
        assert quote.one(class_="quote-text").text.endswith("…")
    # Following it opens the conversation at the original.
    followed = bob.client.get(f"/messages/{original}")
    assert followed.status_code == 303
    assert followed.headers["location"] == f"/rooms/public?at={original}#msg-{original}"
    at = bob.page(followed.headers["location"].split("#")[0])
    assert at.find("article", id=f"msg-{original}") is not None
    # The original deleted: the quote says so, and keeps none of its words.
    assert alice.send("DELETE", f"/messages/{original}").status_code == 200
    page = bob.page("/rooms/public")
    quote = message_element(page, reply_id).one("a", class_="quote")
    assert quote.text == "message deleted"


def test_reply_to_must_be_a_message_of_the_same_conversation(
    make_person: MakePerson, db: Db
) -> None:
    alice, bob = make_person(), make_person()
    elsewhere = message_id(alice.post_dm(bob.username, "in a DM").text)
    count = db["message"].count_documents({})
    for reply_to in (elsewhere, str(ObjectId()), "garbage", "0" * 25, "$where"):
        answer = alice.send("POST", "/rooms/public/messages", {"body": "hi", "reply_to": reply_to})
        assert (answer.status_code, answer.text) == (
            400,
            f'<p class="form-error" role="alert">{NO_SUCH_ORIGINAL}</p>',
        ), reply_to
    # A first message of a DM nobody wrote in answers nothing there either, and makes no room.
    carol = make_person()
    rooms = db["room"].count_documents({})
    answer = alice.send(
        "POST", f"/dm/{carol.username}/messages", {"body": "hi", "reply_to": elsewhere}
    )
    assert answer.status_code == 400
    assert db["room"].count_documents({}) == rooms
    assert db["message"].count_documents({}) == count


def test_replying_without_script(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    original = message_id(alice.post_public("answer me").text)
    chosen = bob.client.get(f"/messages/{original}", params={"reply": "1"})
    assert chosen.status_code == 303
    location = chosen.headers["location"]
    assert location == f"/rooms/public?reply_to={original}#message-body"
    page = bob.page(location.split("#")[0])
    replying = page.one("div", id="replying")
    assert not replying.has("hidden")
    assert replying.one(id="replying-sender").text == alice.username
    assert page.one("input", id="reply-to").get("value") == original
    sent = bob.client.post(
        "/rooms/public/messages",
        data={"csrf_token": bob.csrf, "body": "answered", "reply_to": original},
        headers={"Accept": "text/html"},
    )
    assert sent.status_code == 303
    reply_id = sent.headers["location"].rsplit("#msg-", 1)[1]
    quote = message_element(bob.page("/rooms/public"), reply_id).one("a", class_="quote")
    assert quote.get("data-reply-to") == original
