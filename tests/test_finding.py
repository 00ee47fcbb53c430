"""Finding over real HTTP: mentions (who is mentioned, who is told, and when) and search (what
is found, for whom, in what order), DESIGN.md "Saying more" and "Finding"."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from bson import ObjectId

from tests.html import Element, fragment, parse
from tests.support import (
    Db,
    EventStream,
    Person,
    SSEEvent,
    StartApp,
    add_to_room,
    bearer_client,
    create_room,
    message_id,
    open_stream,
    post_in_room,
    unique_name,
    user_id,
)

MakePerson = Callable[..., Person]


async def first(stream: EventStream, name: str, matches: Callable[[SSEEvent], bool]) -> SSEEvent:
    return (await stream.until(name, matches))[-1]


def mentions_in(article: Element) -> list[str]:
    return [span.get("data-username") for span in article.find_all("span", class_="mention")]


def search(someone: Person, q: str, **params: str) -> httpx.Response:
    return someone.client.get("/search", params={"q": q, **params}, headers={"HX-Request": "true"})


def found_ids(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    results = fragment(answer.text)
    return [
        link.get("href").rsplit("#msg-", 1)[1] for link in results.find_all("a", class_="result")
    ]


# Mentions


async def test_a_mention_reaches_a_reader_and_names_an_outsider(
    make_person: MakePerson, db: Db
) -> None:
    alice, bob, carol = make_person(), make_person(), make_person()
    room_id = create_room(alice)
    add_to_room(alice, room_id, bob)
    async with open_stream(bob.base_url, token=bob.token()) as bobs:
        posted = alice.send(
            "POST",
            f"/rooms/{room_id}/messages",
            {"body": f"hi @{bob.username.upper()} and @{carol.username}, not `@{bob.username}`"},
        )
        assert posted.status_code == 201
        msg_id = message_id(posted.text)
        event = await first(bobs, "message", lambda e: message_id(e.data) == msg_id)
    article = fragment(event.data)
    assert mentions_in(article) == [bob.username]  # as the name is, once; carol reads nothing here
    assert article.get("data-mentions") == user_id(db, bob)
    assert article.get("data-notify") == user_id(db, bob)
    # The author is told that carol is not in the room, and offered to add her.
    notice = parse(posted.text).one("p", id="mention-notice")
    assert notice.one(class_="outsider").text == f"{carol.username} is not in this room"
    assert notice.one("button").get("aria-label") == f"Add {carol.username} to this room"
    # Bob's badge for the room shows "@" until he reads it; carol's page knows nothing of it.
    entry = bob.page().one("li", id=f"room-{room_id}")
    assert not entry.one("span", class_="mentioned").has("hidden")
    assert bob.send("POST", f"/rooms/{room_id}/read").status_code == 204
    entry = bob.page().one("li", id=f"room-{room_id}")
    assert entry.one("span", class_="mentioned").has("hidden")
    assert room_id not in carol.client.get("/").text


async def test_mentions_by_edit_notify_once_and_a_deleted_message_stops_counting(
    make_person: MakePerson, db: Db
) -> None:
    alice, bob, carol = make_person(), make_person(), make_person()
    bob_id, carol_id = user_id(db, bob), user_id(db, carol)
    async with open_stream(bob.base_url, token=bob.token()) as bobs:
        posted = alice.post_public(f"hello @{bob.username}")
        msg_id = message_id(posted.text)

        async def next_copy() -> Element:
            event = await bobs.next_named("message")
            assert message_id(event.data) == msg_id
            return fragment(event.data)

        assert (await next_copy()).get("data-notify") == bob_id
        # An edit that keeps bob's mention notifies nobody again; adding carol notifies her.
        edit = f"hello @{bob.username} and @{carol.username}"
        assert alice.send("PATCH", f"/messages/{msg_id}", {"body": edit}).status_code == 200
        copy = await next_copy()
        assert set(copy.get("data-mentions").split()) == {bob_id, carol_id}
        assert copy.get("data-notify") == carol_id
        # Taking bob out and putting him back: no second notice, ever.
        for body in (f"hello @{carol.username}", edit):
            assert alice.send("PATCH", f"/messages/{msg_id}", {"body": body}).status_code == 200
            assert (await next_copy()).get("data-notify") == ""
        # A reaction re-sends the message, and notifies nobody.
        assert bob.send("POST", f"/messages/{msg_id}/reactions", {"emoji": "👍"}).status_code == 200
        assert (await next_copy()).get("data-notify") == ""
    public = bob.page().one("a", class_="room")
    assert not public.one("span", class_="mentioned").has("hidden")
    # Deleted, it mentions nobody and counts nowhere.
    assert alice.send("DELETE", f"/messages/{msg_id}").status_code == 200
    stored = db["message"].find_one({"_id": ObjectId(msg_id)})
    assert stored is not None and stored["mentions"] == [] and stored["plain"] == ""
    assert db["message_words"].find_one({"_id": ObjectId(msg_id)}) is None
    assert bob.page().one("a", class_="room").one("span", class_="mentioned").has("hidden")


def test_a_read_state_counts_unread_mentions(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    alice.post_dm(bob.username, f"@{bob.username} look")
    alice.post_dm(bob.username, "and this")
    told = bob.client.post(
        f"/dm/{alice.username}/read",
        data={"seq": "0"},
        headers={"X-CSRF-Token": bob.csrf, "Accept": "application/json"},
    )
    assert (told.json()["unread"], told.json()["mentions"]) == (2, 1)


def test_a_message_naming_hundreds_mentions_at_most_fifty(make_person: MakePerson, db: Db) -> None:
    alice = make_person()
    crowd = [make_person() for _ in range(3)]
    names = [p.username for p in crowd] + [unique_name("ghost") for _ in range(497)]
    body = " ".join(f"@{name}" for name in names[:3] + names[3:])[:3990]
    posted = alice.post_public(body)
    assert posted.status_code == 201
    stored = db["message"].find_one({"_id": ObjectId(message_id(posted.text))})
    assert stored is not None
    assert set(stored["mentions"]) == {user_id(db, p) for p in crowd}
    assert alice.post_public("@" + "a" * 1000).status_code == 201  # a name nobody can have


# Search


@pytest.fixture
def people(make_person: MakePerson) -> tuple[Person, Person, Person]:
    return make_person(), make_person(), make_person()


def test_every_word_or_its_start_ignoring_case_accents_and_formatting(
    people: tuple[Person, Person, Person],
) -> None:
    alice, bob, _ = people
    tag = unique_name("zq").replace("_", "")
    texts = {
        "computer": f"the **Computer** room {tag}",
        "cafe": f"meet at the Café Crème {tag}",
        "code": f"run `make test` in {tag}",
        "other": f"nothing to see {tag}",
    }
    ids = {k: message_id(alice.post_public(t).text) for k, t in texts.items()}
    assert found_ids(search(bob, f"comp {tag}")) == [ids["computer"]]
    assert found_ids(search(bob, f"COMPUTER {tag.upper()}")) == [ids["computer"]]
    assert found_ids(search(bob, f"cafe creme {tag}")) == [ids["cafe"]]
    assert found_ids(search(bob, f"CAFÉ {tag}")) == [ids["cafe"]]
    assert found_ids(search(bob, f"make {tag}")) == [ids["code"]]
    assert found_ids(search(bob, f"bold computer {tag}")) == []  # every word must match
    # Newest first, and the matched words marked.
    assert found_ids(search(bob, tag)) == [ids[k] for k in ("other", "code", "cafe", "computer")]
    results = fragment(search(bob, f"comp {tag}").text)
    marks = [mark.text for mark in results.find_all("mark")]
    assert marks == ["Computer", tag]


@pytest.mark.parametrize(
    "query",
    [".*", "(a|b)", "[", "\\", '"quoted"', "-", "$where", "^", "a{1000}", "日本語", "مرحبا", "🎉"],
)
def test_any_query_is_plain_words(person: Person, query: str) -> None:
    answer = search(person, query)
    assert answer.status_code == 200
    fragment(answer.text)  # a fragment of results, however few


@pytest.mark.parametrize(("query", "status"), [("", 400), ("   ", 400), ("x" * 201, 400)])
def test_a_query_must_be_one_to_two_hundred_characters(
    person: Person, query: str, status: int
) -> None:
    answer = search(person, query)
    assert answer.status_code == status
    page = person.client.get("/search", params={"q": query}, headers={"Accept": "text/html"})
    assert page.status_code == status
    assert parse(page.text).one("h1").text in (
        "Type something to search for.",
        "Search for at most 200 characters.",
    )
    with bearer_client(person) as script:
        answer = script.get("/search", params={"q": query})
    assert answer.status_code == status and "error" in answer.json()


def test_search_without_a_session(base_url: str) -> None:
    assert (
        httpx.get(
            base_url + "/search", params={"q": "x"}, headers={"HX-Request": "true"}
        ).status_code
        == 401
    )
    plain = httpx.get(base_url + "/search", params={"q": "x"}, headers={"Accept": "text/html"})
    assert (plain.status_code, plain.headers["location"]) == (303, "/login")


def test_only_what_one_may_read_now(make_person: MakePerson, db: Db) -> None:
    alice, bob, carol, dave = (make_person() for _ in range(4))
    tag = unique_name("zr").replace("_", "")
    room_id = create_room(alice)
    add_to_room(alice, room_id, bob)
    in_room = post_in_room(alice, room_id, f"room words {tag}")
    in_dm = message_id(alice.post_dm(bob.username, f"dm words {tag}").text)
    in_public = message_id(alice.post_public(f"public words {tag}").text)
    edited = message_id(alice.post_public(f"before edit {tag}").text)
    assert (
        alice.send("PATCH", f"/messages/{edited}", {"body": f"after change {tag}"}).status_code
        == 200
    )
    deleted = message_id(alice.post_public(f"soon gone {tag}").text)
    assert alice.send("DELETE", f"/messages/{deleted}").status_code == 200
    assert set(found_ids(search(bob, tag))) == {in_room, in_dm, in_public, edited}
    assert found_ids(search(bob, f"before {tag}")) == []  # the words an edit removed
    assert found_ids(search(bob, f"change {tag}")) == [edited]
    assert set(found_ids(search(carol, tag))) == {in_public, edited}  # a third person
    # Removed from the room: its messages leave bob's results at once.
    assert alice.send("DELETE", f"/rooms/{room_id}/members/{bob.username}").status_code == 200
    assert in_room not in found_ids(search(bob, tag))
    # Narrowed to one conversation; one that is not yours is not found.
    assert found_ids(search(alice, tag, **{"in": room_id})) == [in_room]
    assert search(dave, tag, **{"in": room_id}).status_code == 404


def test_results_page_twenty_at_a_time(make_person: MakePerson) -> None:
    person, other = make_person(), make_person()  # (each well within the posting limit)
    tag = unique_name("zs").replace("_", "")
    posted = [
        message_id((person if n % 2 else other).post_public(f"page {n} {tag}").text)
        for n in range(45)
    ]
    seen: list[str] = []
    answer = search(person, tag)
    pages = 0
    while True:
        ids = found_ids(answer)
        assert len(ids) <= 20
        seen += ids
        pages += 1
        older = fragment(answer.text).find("a", class_="older-results")
        if older is None:
            break
        answer = person.client.get(older.get("href"), headers={"HX-Request": "true"})
    assert (pages, seen) == (3, posted[::-1])


def test_a_result_opens_its_conversation_at_it(person: Person) -> None:
    tag = unique_name("zt").replace("_", "")
    msg_id = message_id(person.post_public(f"find me {tag}").text)
    link = fragment(search(person, tag).text).one("a", class_="result").get("href")
    assert link == f"/messages/{msg_id}#msg-{msg_id}"
    opened = person.client.get(link.split("#")[0])
    assert opened.status_code == 303 and opened.headers["location"].endswith(f"#msg-{msg_id}")


def test_a_message_is_found_as_soon_as_it_is_answered(person: Person) -> None:
    tag = unique_name("zu").replace("_", "")
    for n in range(5):
        msg_id = message_id(person.post_public(f"at once {n} {tag}").text)
        assert found_ids(search(person, f"once {tag}"))[0] == msg_id


def test_the_read_json_still_parses(person: Person) -> None:
    told = person.client.post(
        "/rooms/public/read", headers={"X-CSRF-Token": person.csrf, "Accept": "application/json"}
    )
    assert set(json.loads(told.text)) == {"key", "read_seq", "unread", "upto", "mentions"}


def test_messages_from_before_search_are_found_once_an_app_starts(
    person: Person, db: Db, start_app: StartApp
) -> None:
    """A message stored without its words (as before search) gets them at the next start-up."""
    tag = unique_name("zv").replace("_", "")
    msg_id = message_id(person.post_public(f"older **Words** {tag}").text)
    db["message"].update_one({"_id": ObjectId(msg_id)}, {"$unset": {"plain": ""}})
    db["message_words"].delete_one({"_id": ObjectId(msg_id)})
    assert found_ids(search(person, tag)) == []
    restarted = start_app()
    with person.on(restarted.url) as there:
        assert found_ids(search(there, f"word {tag}")) == [msg_id]
    stored = db["message"].find_one({"_id": ObjectId(msg_id)})
    assert stored is not None and stored["plain"] == f"older Words {tag}"


def test_words_kept_on_messages_move_beside_them_at_the_next_start_up(
    person: Person, db: Db, start_app: StartApp
) -> None:
    """Messages that kept their words on themselves (the shape before MessageWords) are found
    after the next start-up, and their words leave the message; a deleted one stays unfound."""
    tag = unique_name("zm").replace("_", "")
    kept = message_id(person.post_public(f"kept words {tag}").text)
    gone = message_id(person.post_public(f"gone words {tag}").text)
    assert person.send("DELETE", f"/messages/{gone}").status_code == 200
    for msg_id, words in ((kept, ["kept", "words", tag]), (gone, [])):
        db["message"].update_one({"_id": ObjectId(msg_id)}, {"$set": {"words": words}})
        db["message_words"].delete_one({"_id": ObjectId(msg_id)})
    assert found_ids(search(person, tag)) == []
    db["message"].create_index("words")  # the index those words had
    restarted = start_app()
    with person.on(restarted.url) as there:
        assert found_ids(search(there, f"wor {tag}")) == [kept]
    assert {"words": 1} not in [dict(index["key"]) for index in db["message"].list_indexes()]
    for msg_id in (kept, gone):
        stored = db["message"].find_one({"_id": ObjectId(msg_id)})
        assert stored is not None and "words" not in stored
    assert db["message_words"].find_one({"_id": ObjectId(gone)}) is None


def test_what_a_failed_write_leaves_finds_nothing_and_an_edit_mends_it(
    make_person: MakePerson, db: Db
) -> None:
    """A message's words are stored before it, and taken away after it is deleted: a failure in
    between (an outage) leaves words without a message, or beside a deleted one, and search
    shows neither; a message left without its words gets them back with its next edit."""
    alice, bob = make_person(), make_person()
    tag = unique_name("zf").replace("_", "")
    shown = message_id(alice.post_public(f"shown {tag}").text)
    deleted = message_id(alice.post_public(f"deleted {tag}").text)
    stored = db["message_words"].find_one({"_id": ObjectId(deleted)})
    assert stored is not None and stored["words"] == ["deleted", tag]
    assert alice.send("DELETE", f"/messages/{deleted}").status_code == 200
    db["message_words"].insert_one(stored)  # as if taking them away had failed
    never_posted = {**stored, "_id": ObjectId(), "words": ["never", "posted", tag]}
    db["message_words"].insert_one(never_posted)  # as if the post had failed after them
    assert found_ids(search(bob, tag)) == [shown]
    assert found_ids(search(bob, f"never {tag}")) == []
    # Its words lost: not found, until an edit stores them again.
    db["message_words"].delete_one({"_id": ObjectId(shown)})
    assert found_ids(search(bob, tag)) == []
    edit = {"body": f"shown again {tag}"}
    assert alice.send("PATCH", f"/messages/{shown}", edit).status_code == 200
    assert found_ids(search(bob, f"again {tag}")) == [shown]
