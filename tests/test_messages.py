"""The message endpoints over real HTTP: posting, reading, paging, bad input, edit and delete.

Registering someone costs an argon2 hash, so each test makes only the people it needs and runs
its cases as subtests over them.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from bson import ObjectId

from tests.html import Element, fragment, is_page, parse
from tests.support import (
    AppServer,
    Db,
    Person,
    StartApp,
    message_element,
    message_id,
    message_ids,
    user_id,
)
from webapp.rules.keys import PUBLIC, dm_key
from webapp.rules.rates import POSTING

MakePerson = Callable[..., Person]
HX = {"HX-Request": "true"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
UTC_SECOND = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")  # a <time>'s datetime
CHANGES = [  # every way to reach a message's edit form or change it
    ("GET", "/messages/{id}/edit"),
    ("PATCH", "/messages/{id}"),
    ("DELETE", "/messages/{id}"),
    ("POST", "/messages/{id}/edit"),
    ("POST", "/messages/{id}/delete"),
]


@pytest.fixture
def pair(make_person: MakePerson) -> tuple[Person, Person]:
    """Two fresh people, so their direct conversation starts empty."""
    return make_person(), make_person()


def unique_text(label: str) -> str:
    return f"{label}-{secrets.token_hex(6)}"


def dm(username: str) -> str:
    return f"/dm/{username}/messages"


def read(someone: Person, path: str) -> str:
    """A conversation's latest messages, as htmx fetches them."""
    response = someone.client.get(path, headers=HX)
    assert response.status_code == 200, response.text
    assert not is_page(response.text)
    return response.text


def body_of(html: str | Element, msg_id: str) -> str:
    """The text of one message in a listing or fragment, exactly as shown."""
    return message_element(html, msg_id).one(class_="body").raw_text


def shows_edited(article: Element) -> bool:
    """Whether a message says it was edited (an element whose text is that word)."""
    return any(element.text == "edited" for element in article.iter() if not element.elements())


def assert_empty(someone: Person, path: str) -> None:
    page = read(someone, path)
    assert message_ids(page) == [], page
    assert "No messages yet" in parse(page).text


def assert_fragment(response: httpx.Response, sender: str, status: int = 201) -> str:
    """The response is one rendered message (not a page); returns its id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    article = fragment(response.text)
    assert article.tag == "article"
    assert len(message_ids(response.text)) == 1
    assert article.one("span", class_="sender").raw_text == sender
    time = article.one("time")
    assert UTC_SECOND.fullmatch(time.get("datetime")), response.text
    assert time.raw_text, response.text
    return message_id(article)


def browser_post(someone: Person, path: str, data: dict[str, str]) -> httpx.Response:
    """A form posted by a browser without JavaScript: token in the form, no htmx header."""
    return someone.client.post(path, data={**data, "csrf_token": someone.csrf}, headers=BROWSER)


def bearer_post(someone: Person, token: str, path: str, data: dict[str, str]) -> httpx.Response:
    """A script's post: a Bearer token, no cookie and no CSRF token."""
    return httpx.post(
        someone.base_url + path, data=data, headers={"Authorization": f"Bearer {token}"}
    )


def change(someone: Person, method: str, url: str, body: str) -> httpx.Response:
    """The edit form (htmx GET), or a change as htmx sends it (CSRF header)."""
    if method == "GET":
        return someone.client.get(url, headers=HX)
    return someone.send(method, url, {"body": body})


def count_stored(db: Db, text: str) -> int:
    return db["message"].count_documents({"body": {"$regex": re.escape(text)}})


def assert_unchanged(someone: Person, path: str, msg_id: str, text: str) -> None:
    article = message_element(read(someone, path), msg_id)
    assert text in article.one(class_="body").raw_text
    assert not shows_edited(article), article
    assert "message deleted" not in article.text


def alerts(html: str) -> list[Element]:
    return parse(html).find_all(role="alert")


# Posting


def test_posting_answers_with_the_fragment(
    pair: tuple[Person, Person], db: Db, subtests: pytest.Subtests
) -> None:
    alice, bob = pair
    token = alice.token()
    places = [
        ("/rooms/public/messages", "/rooms/public"),
        (dm(bob.username), f"/dm/{bob.username}"),
    ]
    for path, page in places:
        # what the other party reads at the same conversation
        theirs = path if path.startswith("/rooms") else dm(alice.username)
        with subtests.test("htmx", path=path):
            text = unique_text("hello")
            response = alice.send("POST", path, {"body": text})
            msg_id = assert_fragment(response, alice.username)
            assert text in response.text
            assert text in body_of(read(bob, theirs), msg_id)
            assert count_stored(db, text) == 1
        with subtests.test("bearer, no CSRF", path=path):
            text = unique_text("from a script")
            response = bearer_post(alice, token, path, {"body": text})
            msg_id = assert_fragment(response, alice.username)
            assert text in body_of(read(bob, theirs), msg_id)
        with subtests.test("plain form", path=path):
            text = unique_text("no javascript")
            response = browser_post(alice, path, {"body": text})
            assert response.status_code == 303, response.text
            location = response.headers["location"]
            assert location.startswith(f"{page}#msg-")
            msg_id = location.rpartition("#msg-")[2]
            assert re.fullmatch(r"[0-9a-f]{24}", msg_id)
            assert text in body_of(read(bob, theirs), msg_id)
            landing = alice.client.get(location, headers=BROWSER)
            assert landing.status_code == 200
            assert is_page(landing.text)
            assert text in body_of(landing.text, msg_id)
    with subtests.test("both parties see the whole DM, in order"):
        assert len(message_ids(read(alice, dm(bob.username)))) == 3
        assert message_ids(read(alice, dm(bob.username))) == message_ids(
            read(bob, dm(alice.username))
        )


def test_message_text_is_rendered_safely(person: Person, subtests: pytest.Subtests) -> None:
    notes = dm(person.username)

    def post(body: str) -> list[Element]:
        """The sender's fragment and the message as read back from the conversation."""
        response = person.post_dm(person.username, body)
        msg_id = assert_fragment(response, person.username)
        return [fragment(response.text), message_element(read(person, notes), msg_id)]

    with subtests.test("newlines kept"):
        for article in post("first line\r\nsecond line\nthird line"):
            shown = article.one(class_="body")
            assert shown.lines() == ["first line", "second line", "third line"], shown
    with subtests.test("links"):
        body = "see https://example.com/a?b=1&c=2 and http://example.org. not javascript:alert(1)"
        for article in post(body):
            anchors = article.one(class_="body").find_all("a")
            linked = {a.raw_text: a for a in anchors if "nofollow" in a.get("rel").split()}
            assert set(linked) == {"https://example.com/a?b=1&c=2", "http://example.org"}
            for url, anchor in linked.items():
                assert anchor.get("href") == url
                assert anchor.get("rel") == "noopener nofollow ugc"
            hrefs = [element.get("href") for element in article.iter()]
            assert not [href for href in hrefs if href.lower().startswith("javascript")]
    with subtests.test("html escaped"):
        body = '<script>alert(1)</script> <b onmouseover="x">bold</b> & <img src=x onerror=y>'
        for article in post(body):
            assert article.find_all("script") == []
            assert article.find_all("b") == []
            assert article.find_all("img") == []
            shown = article.one(class_="body")
            assert [e.tag for e in shown.iter() if e.tag not in ("p", "br")] == [], shown
            assert shown.raw_text == body  # as text, markup and all


# Reading


def test_htmx_gets_a_fragment_and_a_browser_the_page(
    pair: tuple[Person, Person], subtests: pytest.Subtests
) -> None:
    alice, bob = pair
    sent = [
        message_id(alice.post_dm(bob.username, "one").text),
        message_id(bob.post_dm(alice.username, "two").text),
        message_id(alice.post_dm(bob.username, "three").text),
    ]
    public_id = message_id(alice.post_public(unique_text("public")).text)
    for path, expected in ((dm(bob.username), sent), ("/rooms/public/messages", [public_id])):
        with subtests.test("fragment", path=path):
            fragment = alice.client.get(path, headers=HX)
            assert fragment.status_code == 200
            assert "hx-request" in fragment.headers.get("vary", "").lower()
            assert not is_page(fragment.text)
            assert parse(fragment.text).find(role="log") is None
            assert message_ids(fragment.text)[-len(expected) :] == expected  # oldest at the top
        with subtests.test("page", path=path):
            page = alice.client.get(path, headers=BROWSER)
            assert page.status_code == 200
            assert "hx-request" in page.headers.get("vary", "").lower()
            assert is_page(page.text)
            log = parse(page.text).one(role="log")
            assert message_ids(log)[-len(expected) :] == expected
    with subtests.test("the other party sees the same order"):
        assert message_ids(read(bob, dm(alice.username))) == sent


def test_pages_of_fifty_with_load_older(pair: tuple[Person, Person]) -> None:
    alice, bob = pair
    sent = []
    for n in range(55):  # taking turns, each within a burst of the posting limit
        sender, peer = (alice, bob) if n % 2 == 0 else (bob, alice)
        response = sender.post_dm(peer.username, f"numbered {n:02d}")
        assert response.status_code == 201, response.text
        sent.append(message_id(response.text))

    latest = parse(read(bob, dm(alice.username)))
    assert message_ids(latest) == sent[5:]
    older = latest.one("a", class_="load-older")
    assert older.text == "Load older"
    href = older.get("href")
    assert href == f"{dm(alice.username)}?before={sent[5]}"
    assert latest.before(older, message_element(latest, sent[5]))

    oldest = bob.client.get(href, headers=HX)
    assert oldest.status_code == 200
    assert message_ids(oldest.text) == sent[:5]
    shown = parse(oldest.text)
    assert [f"numbered {n:02d}" in shown.text for n in range(6)] == [True] * 5 + [False]
    assert shown.find("a", class_="load-older") is None
    assert "Load older" not in shown.text
    assert "No messages yet" not in shown.text

    page = bob.client.get(href, headers=BROWSER)  # the same link without JavaScript
    assert page.status_code == 200
    assert is_page(page.text)
    assert message_ids(page.text) == sent[:5]


def test_before_must_name_a_message_of_this_conversation(
    pair: tuple[Person, Person], subtests: pytest.Subtests
) -> None:
    alice, bob = pair
    ours = unique_text("ours")
    alice.post_dm(bob.username, ours)
    secret = unique_text("secret")
    bobs_notes = message_id(bob.post_dm(bob.username, secret).text)
    cases = {
        "malformed": (dm(bob.username), "abc"),
        "malformed 23 hex": (dm(bob.username), "0" * 23),
        "unknown": (dm(bob.username), "0" * 24),
        "another DM": (dm(bob.username), bobs_notes),
        "a DM, in the public room": ("/rooms/public/messages", bobs_notes),
        "another DM, in notes to self": (dm(alice.username), bobs_notes),
    }
    for name, (path, before) in cases.items():
        for headers in (HX, BROWSER, {}):
            with subtests.test(name, headers=headers):
                response = alice.client.get(path, params={"before": before}, headers=headers)
                assert response.status_code == 404, response.text
                assert secret not in response.text
                assert ours not in response.text


def test_notes_to_self(person: Person) -> None:
    text = unique_text("remember")
    response = person.post_dm(person.username, text)
    msg_id = assert_fragment(response, person.username)
    assert message_ids(read(person, dm(person.username))) == [msg_id]
    page = person.page(f"/dm/{person.username}", **BROWSER)
    assert "Notes to self" in page.text
    assert text in body_of(page, msg_id)


def test_first_messages_at_once_make_one_conversation_with_its_two_members(
    pair: tuple[Person, Person], db: Db
) -> None:
    """Both people write first at the same moment: one room, its two memberships made in one
    insert before it, and none left behind by the requests that lost the race."""
    alice, bob = pair
    jobs = [(alice, bob), (bob, alice)] * 4
    with ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(lambda job: job[0].post_dm(job[1].username, "first!"), jobs))
    assert [answer.status_code for answer in answers] == [201] * len(jobs)
    ids = [user_id(db, person) for person in pair]
    rooms = list(db["room"].find({"key": dm_key(*ids)}))
    assert len(rooms) == 1
    room_id = str(rooms[0]["_id"])
    public = db["room"].find_one({"key": PUBLIC})
    assert public is not None
    theirs = db["membership"].find({"user_id": {"$in": ids}})
    kept = sorted(
        (m["room_id"], m["user_id"]) for m in theirs if m["room_id"] != str(public["_id"])
    )
    assert kept == [(room_id, user) for user in sorted(ids)]
    assert db["message"].count_documents({"room_id": room_id}) == len(jobs)


def test_a_third_person_can_neither_read_nor_touch_a_dm(
    make_person: MakePerson, subtests: pytest.Subtests
) -> None:
    alice, bob, carol = make_person(), make_person(), make_person()
    secret = unique_text("just between us")
    secret_id = message_id(alice.post_dm(bob.username, secret).text)
    reply_id = message_id(bob.post_dm(alice.username, secret + "-reply").text)
    for path in (dm(alice.username), dm(bob.username), f"/dm/{alice.username}"):
        for headers in (HX, BROWSER):
            with subtests.test("reading shows carol's own, empty conversation", path=path):
                response = carol.client.get(path, headers=headers)
                assert response.status_code == 200
                assert secret not in response.text
                assert secret_id not in response.text
                assert "No messages yet" in parse(response.text).text
    for method, path in CHANGES:
        with subtests.test(f"{method} is 404, not 403", url=path):
            response = change(carol, method, path.format(id=secret_id), "meddling")
            assert response.status_code == 404, response.text
            assert secret not in response.text
            assert "own messages" not in response.text
            assert_unchanged(bob, dm(alice.username), secret_id, secret)
    with subtests.test("carol's conversation with alice is theirs alone"):
        mine = message_id(carol.post_dm(alice.username, "hello alice").text)
        assert message_ids(read(carol, dm(alice.username))) == [mine]
        assert message_ids(read(alice, dm(carol.username))) == [mine]
        assert message_ids(read(alice, dm(bob.username))) == [secret_id, reply_id]


# Bad input: a clear message and nothing stored


def test_bad_bodies_are_refused_and_not_stored(
    person: Person, db: Db, subtests: pytest.Subtests
) -> None:
    notes = dm(person.username)
    token = person.token()
    too_long = "x" * 3999 + "yz"
    cases: dict[str, tuple[dict[str, str], int, str]] = {
        "empty": ({"body": ""}, 400, "empty"),
        "whitespace": ({"body": "   \n\t  \r\n "}, 400, "empty"),
        "missing": ({}, 400, "empty"),
        "4001 chars": ({"body": too_long}, 413, "4000"),
    }
    for name, (data, status, words) in cases.items():
        with subtests.test(name, client="htmx"):
            response = person.send("POST", notes, data)
            assert response.status_code == status, response.text
            assert [words in alert.text for alert in alerts(response.text)] == [True]
        with subtests.test(name, client="plain form"):
            response = browser_post(person, notes, data)
            assert response.status_code == status, response.text
            assert is_page(response.text)
            assert words in parse(response.text).text
        with subtests.test(name, client="bearer"):
            response = bearer_post(person, token, notes, data)
            assert response.status_code == status, response.text
            assert words in response.json()["error"]
    assert_empty(person, notes)
    assert count_stored(db, too_long) == 0

    with subtests.test("4000 chars are accepted"):
        body = "x" * 3999 + "y"
        msg_id = assert_fragment(person.post_dm(person.username, body), person.username)
        assert body_of(read(person, notes), msg_id) == body


def test_request_over_64_kib_is_refused(person: Person, db: Db) -> None:
    marker = unique_text("huge")
    notes = dm(person.username)
    data = {"body": "short " + marker, "padding": "p" * (64 * 1024)}
    response = person.send("POST", notes, data)
    assert response.status_code == 413, response.text
    assert "too large" in response.text
    assert_empty(person, notes)
    assert count_stored(db, marker) == 0


def test_request_just_under_64_kib_is_accepted(person: Person, db: Db) -> None:
    """The limit counts the body once, whether declared or streamed."""
    marker = unique_text("big")
    data = {"body": "fits " + marker, "padding": "p" * (60 * 1024)}
    response = person.send("POST", dm(person.username), data)
    assert response.status_code == 201, response.text
    assert count_stored(db, marker) == 1

    def chunks() -> Iterator[bytes]:
        yield f"body=streamed+{marker}&padding=".encode()
        for _ in range(15):
            yield b"p" * 4096

    headers = {
        **HX,
        "X-CSRF-Token": person.csrf,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    response = person.client.post(dm(person.username), content=chunks(), headers=headers)
    assert response.status_code == 201, response.text
    assert count_stored(db, marker) == 2


def test_chunked_request_over_64_kib_is_refused(person: Person, db: Db) -> None:
    """The size limit holds without a Content-Length header (Transfer-Encoding: chunked)."""
    marker = unique_text("chunked")
    notes = dm(person.username)

    def chunks() -> Iterator[bytes]:
        yield f"body=short+{marker}&padding=".encode()
        for _ in range(20):
            yield b"p" * 4096

    headers = {
        **HX,
        "X-CSRF-Token": person.csrf,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    response = person.client.post(notes, content=chunks(), headers=headers)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text
    assert "too large" in response.text
    assert_empty(person, notes)
    assert count_stored(db, marker) == 0


def test_unknown_users_and_messages_are_404(
    person: Person, db: Db, subtests: pytest.Subtests
) -> None:
    nobody = f"nobody_{secrets.token_hex(4)}"
    text = unique_text("into the void")
    with subtests.test("DM to an unknown user, htmx"):
        response = person.post_dm(nobody, text)
        assert response.status_code == 404, response.text
        assert alerts(response.text)
    with subtests.test("DM to an unknown user, plain form"):
        assert browser_post(person, dm(nobody), {"body": text}).status_code == 404
    with subtests.test("DM to an unknown user, bearer"):
        token = person.token()
        assert bearer_post(person, token, dm(nobody), {"body": text}).status_code == 404
    for headers in (HX, BROWSER, {}):
        with subtests.test("reading a DM with an unknown user", headers=headers):
            assert person.client.get(dm(nobody), headers=headers).status_code == 404
    assert count_stored(db, text) == 0

    odd_names = {
        "%3Cscript%3Ealert(1)%3C%5Cscript%3E": "<script>alert",
        "%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E": "<img src=x",
        "%3Csvg%20onload%3Dalert(1)%3E": "<svg onload",
    }
    for quoted, raw in odd_names.items():
        path = f"/dm/{quoted}/messages"
        with subtests.test("odd name is not reflected", name=raw):
            responses = [
                person.client.get(path, headers=HX),
                person.client.get(path, headers=BROWSER),
                person.client.get(f"/dm/{quoted}", headers=BROWSER),
                person.send("POST", path, {"body": "hi"}),
                browser_post(person, path, {"body": "hi"}),
            ]
            for response in responses:
                assert response.status_code == 404, response.text
                assert response.headers["content-type"].startswith("text/html")
                assert raw not in response.text
            api = person.client.get(path)  # a script's request: JSON, never HTML
            assert api.status_code == 404
            assert api.headers["content-type"].startswith("application/json")

    for msg_id in ("abc", "0" * 23, "zz" * 12, "0" * 25, "0" * 24, "f" * 24):
        for method, path in CHANGES:
            with subtests.test("malformed or unknown message id", method=method, id=msg_id):
                response = change(person, method, path.format(id=msg_id), "anything")
                assert response.status_code == 404, response.text
                assert alerts(response.text)


# Edit and delete


def test_author_edits(pair: tuple[Person, Person], subtests: pytest.Subtests) -> None:
    alice, bob = pair
    with subtests.test("edit form fragment for htmx"):
        text = unique_text("to be changed")
        msg_id = message_id(alice.post_dm(bob.username, text).text)
        response = alice.client.get(f"/messages/{msg_id}/edit", headers=HX)
        assert response.status_code == 200, response.text
        form = fragment(response.text)
        assert form.get("id") == f"msg-{msg_id}"
        [label] = form.by_text("Edit message", "label")
        field = form.one("textarea", id=label.get("for"), name="body")
        assert field.raw_text == text
        assert form.by_text("Save", "button")
    with subtests.test("edit form page without htmx"):
        response = alice.client.get(f"/messages/{msg_id}/edit", headers=BROWSER)
        assert response.status_code == 200
        assert is_page(response.text)
        page = parse(response.text)
        assert page.by_text("Edit message", "label")
        # Cancel, without JavaScript, goes back to the message in its own conversation.
        cancel = page.by_text("Cancel", "a")
        assert [a.get("href") for a in cancel] == [f"/dm/{bob.username}#msg-{msg_id}"]
    for body, status in (("", 400), ("  \n ", 400), ("x" * 4001, 413)):
        with subtests.test("bad body leaves it unchanged", status=status, length=len(body)):
            response = alice.send("PATCH", f"/messages/{msg_id}", {"body": body})
            assert response.status_code == status, response.text
            assert alerts(response.text)
            assert_unchanged(bob, dm(alice.username), msg_id, text)
    with subtests.test("PATCH from htmx"):
        new_text = unique_text("changed")
        response = alice.send("PATCH", f"/messages/{msg_id}", {"body": new_text})
        assert assert_fragment(response, alice.username, status=200) == msg_id
        assert new_text in body_of(response.text, msg_id)
        assert text not in response.text
        assert shows_edited(fragment(response.text)), response.text
        article = message_element(read(bob, dm(alice.username)), msg_id)
        assert new_text in article.one(class_="body").raw_text
        assert text not in article.raw_text
        assert shows_edited(article), article
    with subtests.test("plain form"):
        text = unique_text("original")
        msg_id = message_id(alice.post_dm(bob.username, text).text)
        new_text = unique_text("changed without js")
        response = browser_post(alice, f"/messages/{msg_id}/edit", {"body": new_text})
        assert response.status_code == 303, response.text
        assert response.headers["location"] == f"/dm/{bob.username}#msg-{msg_id}"
        article = message_element(read(bob, dm(alice.username)), msg_id)
        assert new_text in article.one(class_="body").raw_text
        assert text not in article.raw_text
        assert shows_edited(article), article


def test_someone_elses_message_is_403(
    pair: tuple[Person, Person], subtests: pytest.Subtests
) -> None:
    alice, bob = pair
    public_text = unique_text("alice in public")
    dm_text = unique_text("alice to bob")
    places = [
        ("/rooms/public/messages", message_id(alice.post_public(public_text).text), public_text),
        (dm(bob.username), message_id(alice.post_dm(bob.username, dm_text).text), dm_text),
    ]
    for listing, msg_id, text in places:
        for method, path in CHANGES:
            url = path.format(id=msg_id)
            with subtests.test(method, url=path, listing=listing):
                response = change(bob, method, url, "hijacked")
                assert response.status_code == 403, response.text
                assert "own messages" in response.text
                assert_unchanged(alice, listing, msg_id, text)
            if method == "POST":
                with subtests.test(f"{method} as a plain form", url=path, listing=listing):
                    response = browser_post(bob, url, {"body": "hijacked"})
                    assert response.status_code == 403, response.text
                    assert_unchanged(alice, listing, msg_id, text)


def test_author_deletes_for_everyone(
    pair: tuple[Person, Person], db: Db, subtests: pytest.Subtests
) -> None:
    alice, bob = pair
    by_htmx = unique_text("deleted by htmx")
    by_form = unique_text("deleted by form")
    htmx_id = message_id(alice.post_dm(bob.username, by_htmx).text)
    form_id = message_id(alice.post_dm(bob.username, by_form).text)

    with subtests.test("DELETE from htmx"):
        response = alice.send("DELETE", f"/messages/{htmx_id}")
        assert assert_fragment(response, alice.username, status=200) == htmx_id
        assert "message deleted" in fragment(response.text).text
        assert by_htmx not in response.text
    with subtests.test("plain form"):
        response = browser_post(alice, f"/messages/{form_id}/delete", {})
        assert response.status_code == 303, response.text
        assert response.headers["location"] == f"/dm/{bob.username}#msg-{form_id}"

    for someone, path in ((alice, dm(bob.username)), (bob, dm(alice.username))):
        with subtests.test("tombstones", reader=someone.username):
            for html in (read(someone, path), someone.client.get(path, headers=BROWSER).text):
                assert message_ids(html) == [htmx_id, form_id]
                for msg_id in (htmx_id, form_id):
                    assert "message deleted" in message_element(html, msg_id).text
                assert by_htmx not in html
                assert by_form not in html
    assert count_stored(db, by_htmx) == 0
    assert count_stored(db, by_form) == 0

    for method, path in CHANGES:
        with subtests.test(f"{method} after deletion is 409", url=path):
            response = change(alice, method, path.format(id=htmx_id), "back from the dead")
            assert response.status_code == 409, response.text
            assert "deleted" in response.text
            listing = read(bob, dm(alice.username))
            assert "message deleted" in message_element(listing, htmx_id).text
            assert "back from the dead" not in listing


def test_changes_without_csrf_token_are_refused(
    person: Person, db: Db, subtests: pytest.Subtests
) -> None:
    notes = dm(person.username)
    text = unique_text("original")
    msg_id = message_id(person.post_dm(person.username, text).text)
    for method, path in CHANGES[1:]:
        for token in (None, "", "not-a-token"):
            with subtests.test(method, url=path, token=token):
                headers = {**HX} if token is None else {**HX, "X-CSRF-Token": token}
                response = person.client.request(
                    method, path.format(id=msg_id), data={"body": "forged"}, headers=headers
                )
                assert response.status_code == 403, response.text
                assert_unchanged(person, notes, msg_id, text)
    with subtests.test("posting"):
        forged = unique_text("forged post")
        response = person.client.post(notes, data={"body": forged}, headers=HX)
        assert response.status_code == 403
        assert message_ids(read(person, notes)) == [msg_id]
        assert count_stored(db, forged) == 0


# The posting limit: 10 a second per user, bursts of up to 30

SCALE = 1000  # LIMIT_WINDOW_SCALE of the strict processes
SCALED_INTERVAL = math.ceil(POSTING.interval * SCALE)  # seconds between posts past a burst


@pytest.fixture(scope="module")
def strict_servers(start_app: StartApp) -> tuple[AppServer, AppServer]:
    """Two processes whose limits' windows are a thousand times as long: the burst of 30 is
    admitted and the 31st refused, however slowly the test runs."""
    one, two = start_app.together(*[{"LIMIT_WINDOW_SCALE": str(SCALE)}] * 2)
    return one, two


async def post_at_once(
    base_url: str, token: str, path: str, texts: list[str]
) -> list[httpx.Response]:
    """These messages posted all at once by a script (Bearer token)."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=None)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=30, limits=limits
    ) as c:
        return await asyncio.gather(*(c.post(path, data={"body": text}) for text in texts))


def all_ids(someone: Person, path: str) -> list[str]:
    """Every message of a conversation, following "Load older" to the first page."""
    ids: list[str] = []
    url = path
    while True:
        page = parse(read(someone, url))
        ids = message_ids(page) + ids
        older = page.find("a", class_="load-older")
        if older is None:
            return ids
        url = older.get("href")


def assert_refused_for_now(response: httpx.Response) -> None:
    """A 429 that asks to wait at most the (scaled) interval of the posting rate."""
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= SCALED_INTERVAL
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json()) == {"error"}
    assert "too fast" in response.json()["error"]


def assert_stored_exactly(someone: Person, path: str, responses: list[httpx.Response]) -> None:
    """The conversation holds the posts answered 201, and none of those refused."""
    posted = [message_id(r.text) for r in responses if r.status_code == 201]
    assert sorted(all_ids(someone, path)) == sorted(posted)


async def test_posting_faster_than_the_limit_is_refused(
    person: Person, strict_servers: tuple[AppServer, AppServer]
) -> None:
    token, notes, url = person.token(), dm(person.username), strict_servers[0].url
    responses = await post_at_once(url, token, notes, [f"at once {n}" for n in range(40)])
    statuses = [r.status_code for r in responses]
    assert (statuses.count(201), statuses.count(429)) == (30, 10), statuses
    for response in responses:
        if response.status_code != 201:
            assert_refused_for_now(response)
    assert_stored_exactly(person, notes, responses)
    assert len(all_ids(person, notes)) == 30


async def test_a_sender_at_ten_a_second_is_never_refused(person: Person) -> None:
    """At the real rate (the session's process): the burst, then 10 a second for ever."""
    token, notes = person.token(), dm(person.username)
    burst = await post_at_once(person.base_url, token, notes, [f"burst {n}" for n in range(30)])
    assert [r.status_code for r in burst] == [201] * 30
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=person.base_url, headers=headers, timeout=30) as c:
        for n in range(20):  # two seconds, each post a tenth of a second after the last
            await asyncio.sleep(0.1)  # the sender's pace (never faster), not a wait for the app
            response = await c.post(notes, data={"body": f"paced {n}"})
            assert response.status_code == 201, (n, response.text)


async def test_two_processes_share_the_limit(
    person: Person, strict_servers: tuple[AppServer, AppServer]
) -> None:
    token, notes = person.token(), dm(person.username)
    one, two = strict_servers
    first = await post_at_once(one.url, token, notes, [f"first {n}" for n in range(30)])
    assert [r.status_code for r in first] == [201] * 30
    # Had each process a limit of its own, all of these would pass.
    second = await post_at_once(two.url, token, notes, [f"second {n}" for n in range(30)])
    assert [r.status_code for r in second] == [429] * 30
    for response in second:
        assert_refused_for_now(response)
    assert_stored_exactly(person, notes, first + second)
    assert len(all_ids(person, notes)) == 30


async def test_a_retry_answered_by_its_key_is_not_counted_again(
    person: Person, strict_servers: tuple[AppServer, AppServer], db: Db
) -> None:
    """A retry after a lost answer was counted with its first try: it is answered with that
    try's message (also past the limit), and the burst still admits as many new posts. A new
    post refused lets go of its key."""
    token, notes, url = person.token(), dm(person.username), strict_servers[0].url
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as c:

        async def send(text: str, key: str) -> httpx.Response:
            return await c.post(notes, data={"body": text, "client_key": key})

        keys = [secrets.token_hex(8) for _ in range(POSTING.burst - 1)]
        firsts = [await send(f"keyed {n}", key) for n, key in enumerate(keys)]
        assert [r.status_code for r in firsts] == [201] * len(keys)
        retries = await asyncio.gather(*(send("keyed 0", keys[0]) for _ in range(3)))
        assert [r.status_code for r in retries] == [200] * 3
        assert {message_id(r.text) for r in retries} == {message_id(firsts[0].text)}
        last = await send("the last of the burst", secrets.token_hex(8))
        assert last.status_code == 201, last.text
        refused_key = secrets.token_hex(8)
        assert_refused_for_now(await send("one too many", refused_key))
        user = db["user"].find_one({"username": person.username})
        assert user is not None
        assert db["post_keys"].find_one({"_id": f"{user['_id']}:{refused_key}"}) is None
        assert db["post_keys"].find_one({"_id": f"{user['_id']}:{keys[1]}"}) is not None
        retry_past_the_limit = await send("keyed 1", keys[1])
        assert retry_past_the_limit.status_code == 200
        assert message_id(retry_past_the_limit.text) == message_id(firsts[1].text)
        # Refused, that retry counted nothing, and so gave nothing back: still one too many.
        assert_refused_for_now(await send("still one too many", secrets.token_hex(8)))
    assert_stored_exactly(person, notes, [*firsts, last])


def ahead(server: AppServer, outcome: str) -> float:
    """How many posts this process numbered at once with their count, by how it turned out."""
    return server.metrics().get(f'chat_posts_ahead_total{{outcome="{outcome}"}}', 0.0)


def words_in_room_of(db: Db, response: httpx.Response) -> int:
    """How many messages' words are stored in the room of the message this answer made."""
    message = db["message"].find_one({"_id": ObjectId(message_id(response.text))})
    assert message is not None
    return db["message_words"].count_documents({"room_id": message["room_id"]})


async def test_a_post_gone_ahead_of_its_count_and_refused_leaves_nothing(
    person: Person, strict_servers: tuple[AppServer, AppServer], db: Db
) -> None:
    """A process that foresees a post admitted numbers it at once with its count. When the
    other process has counted the rest of the burst meanwhile, it is refused all the same, and
    nothing of it stays: no message, no words, no key."""
    token, notes = person.token(), dm(person.username)
    one, two = strict_servers
    [first] = await post_at_once(one.url, token, notes, ["what the first process knows"])
    rest = await post_at_once(two.url, token, notes, [f"two {n}" for n in range(POSTING.burst - 1)])
    assert [r.status_code for r in [first, *rest]] == [201] * POSTING.burst
    in_vain, refused_key = ahead(one, "in_vain"), secrets.token_hex(8)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=one.url, headers=headers, timeout=30) as c:
        refused = await c.post(notes, data={"body": "one too many", "client_key": refused_key})
    assert_refused_for_now(refused)
    assert ahead(one, "in_vain") == in_vain + 1  # it did go ahead
    assert_stored_exactly(person, notes, [first, *rest])
    assert words_in_room_of(db, first) == POSTING.burst
    assert db["post_keys"].find_one({"_id": f"{user_id(db, person)}:{refused_key}"}) is None


async def test_a_retry_gone_ahead_of_its_count_is_answered_by_its_first_try(
    person: Person, strict_servers: tuple[AppServer, AppServer], db: Db
) -> None:
    """A retry numbered at once with its count is answered with its first try's message, its
    own words go, and the poster's next post waits for its count."""
    token, notes, one = person.token(), dm(person.username), strict_servers[0]
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=one.url, headers=headers, timeout=30) as c:

        async def send(text: str, key: str) -> httpx.Response:
            return await c.post(notes, data={"body": text, "client_key": key})

        first = await send("first", secrets.token_hex(8))  # the process knew nothing yet
        admitted, key = ahead(one, "admitted"), secrets.token_hex(8)
        second = await send("second", key)
        assert (second.status_code, ahead(one, "admitted")) == (201, admitted + 1)
        in_vain = ahead(one, "in_vain")
        retry = await send("second", key)
        assert retry.status_code == 200, retry.text
        assert message_id(retry.text) == message_id(second.text)
        assert ahead(one, "in_vain") == in_vain + 1
        third = await send("third", secrets.token_hex(8))
        assert third.status_code == 201, third.text
        assert ahead(one, "admitted") == admitted + 1  # held back: counted first
    assert_stored_exactly(person, notes, [first, second, third])
    assert words_in_room_of(db, first) == 3


async def test_edits_count_as_posts(
    person: Person, strict_servers: tuple[AppServer, AppServer]
) -> None:
    token, notes, url = person.token(), dm(person.username), strict_servers[0].url
    [posted] = await post_at_once(url, token, notes, ["to be edited"])
    msg_id = message_id(posted.text)
    headers = {"Authorization": f"Bearer {token}"}
    texts = [f"edit {n}" for n in range(40)]
    limits = httpx.Limits(max_connections=None)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30, limits=limits) as c:
        responses = await asyncio.gather(
            *(c.patch(f"/messages/{msg_id}", data={"body": text}) for text in texts)
        )
    admitted = [text for text, r in zip(texts, responses, strict=True) if r.status_code == 200]
    assert len(admitted) == 29  # the rest of the burst of 30, after the post
    for response in responses:
        if response.status_code != 200:
            assert_refused_for_now(response)
    assert body_of(read(person, notes), msg_id) in admitted  # a refused edit changed nothing
