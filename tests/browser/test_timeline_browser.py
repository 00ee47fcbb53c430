"""Reading a busy room: runs of one sender, day separators, the reader's own clock, text
direction, drafts per conversation, and the newest message in view without script."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect
from pymongo import MongoClient
from pymongo.database import Database

from tests.browser.conftest import NewPage
from tests.browser.locators import composer, log, message
from tests.support import Person, unique_name

MakePerson = Callable[..., Person]
Db = Database[dict[str, Any]]


@pytest.fixture(scope="module")
def db(mongo_uri: str) -> Iterator[Db]:
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, tz_aware=True)
    yield client.get_default_database()
    client.close()


def notes_room(db: Db, someone: Person) -> str:
    """The id of someone's notes to self, made by a first note."""
    assert someone.post_dm(someone.username, "first note").status_code == 201
    user = db["user"].find_one({"username": someone.username})
    assert user is not None
    room = db["room"].find_one({"key": f"dm:{user['_id']}:{user['_id']}"})
    assert room is not None
    return str(room["_id"])


def seed(db: Db, someone: Person, room_id: str, *when: datetime) -> None:
    """Notes written at these times (straight into the database: nobody can post in the past)."""
    user = db["user"].find_one({"username": someone.username})
    assert user is not None
    sequence = db["room_sequences"].find_one_and_update(
        {"_id": room_id}, {"$inc": {"value": len(when)}}, return_document=True
    )
    first = sequence["value"] - len(when) + 1
    db["message"].insert_many(
        [
            {
                "room_id": room_id,
                "seq": first + n,
                "sender_id": str(user["_id"]),
                "sender_name": someone.username,
                "body": f"note at {moment.isoformat()}",
                "created_at": moment,
                "edited_at": None,
                "deleted": False,
            }
            for n, moment in enumerate(when)
        ]
    )


def open_page(new_page: NewPage, someone: Person, path: str, **options: Any) -> Page:
    page = new_page(someone, **options)
    page.goto(path)
    expect(log(page)).to_be_visible()
    return page


def test_a_run_of_one_sender_shows_one_name_and_time(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice, bob = make_person(username=unique_name("alice")), make_person()
    room = alice.send("POST", "/rooms", {"name": unique_name("run")}).headers["location"]
    assert alice.send("POST", f"{room}/members", {"username": bob.username}).status_code == 201
    page = open_page(new_page, alice, room)
    for text in ("one", "two", "three"):
        assert alice.send("POST", f"{room}/messages", {"body": text}).status_code == 201
        expect(message(page, text)).to_be_visible()
    assert bob.send("POST", f"{room}/messages", {"body": "four"}).status_code == 201
    assert alice.send("POST", f"{room}/messages", {"body": "five"}).status_code == 201
    expect(message(page, "five")).to_be_visible()
    continued = {
        text: "continued" in (message(page, text).get_attribute("class") or "")
        for text in ("one", "two", "three", "four", "five")
    }
    assert continued == {"one": False, "two": True, "three": True, "four": False, "five": False}
    page.reload()  # as the server lays it out
    expect(message(page, "two")).to_have_class("message mine continued")
    expect(message(page, "four")).not_to_have_class("continued")


def test_day_separators_and_times_follow_the_readers_clock(
    new_page: NewPage, make_person: MakePerson, db: Db
) -> None:
    alice = make_person()
    room_id = notes_room(db, alice)
    now = datetime.now(UTC)
    seed(db, alice, room_id, now - timedelta(days=9), now - timedelta(days=1))
    tokyo = ZoneInfo("Asia/Tokyo")
    page = open_page(
        new_page, alice, f"/dm/{alice.username}", timezone_id="Asia/Tokyo", locale="en-GB"
    )
    separators = log(page).locator(".day-separator")
    nine_days_ago = (now - timedelta(days=9)).astimezone(tokyo)
    expected_old = page.evaluate(
        "([y, m, d]) => new Intl.DateTimeFormat(undefined, "
        "{ weekday: 'long', day: 'numeric', month: 'long' }).format(new Date(y, m - 1, d))",
        [nine_days_ago.year, nine_days_ago.month, nine_days_ago.day],
    )
    if nine_days_ago.year != now.astimezone(tokyo).year:  # early January: a full date
        expected_old = separators.first.inner_text()
    expect(separators).to_have_text([expected_old, "Yesterday", "Today"])
    # Each time in the reader's zone (Tokyo here), not the server's UTC.
    note = message(page, "first note")
    shown = note.locator("time").first.inner_text()
    stamp = note.locator("time").first.get_attribute("datetime")
    assert stamp is not None
    local = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(tokyo)
    assert shown == local.strftime("%H:%M"), (shown, local)
    expect(page.locator(".day-separator .zone")).to_have_count(0)  # said only without script


def test_text_runs_in_its_own_direction(new_page: NewPage, make_person: MakePerson) -> None:
    alice = make_person()
    page = open_page(new_page, alice, f"/dm/{alice.username}")
    composer(page).fill("שלום לכולם")
    composer(page).press("Enter")
    body = message(page, "שלום").locator(".body")
    expect(body).to_have_attribute("dir", "auto")
    expect(body).to_have_css("direction", "rtl")
    composer(page).fill("hello everyone")
    composer(page).press("Enter")
    english = message(page, "hello everyone").locator(".body")
    expect(english).to_have_css("direction", "ltr")  # waits out the pending copy's swap


def test_drafts_are_kept_per_conversation(new_page: NewPage, make_person: MakePerson) -> None:
    alice = make_person()
    page = open_page(new_page, alice, "/rooms/public")
    composer(page).fill("half a thought for everyone")
    page.get_by_role("link", name="Public room").press("Tab")  # nothing sent
    page.goto(f"/dm/{alice.username}")
    expect(composer(page)).to_have_value("")
    composer(page).fill("a note to self")
    page.goto("/rooms/public")
    expect(composer(page)).to_have_value("half a thought for everyone")
    page.reload()
    expect(composer(page)).to_have_value("half a thought for everyone")
    composer(page).press("Enter")  # sent: the draft goes
    expect(message(page, "half a thought for everyone")).to_be_visible()
    page.reload()
    expect(composer(page)).to_have_value("")
    page.goto(f"/dm/{alice.username}")
    expect(composer(page)).to_have_value("a note to self")


def test_without_script_the_page_opens_at_the_newest_message(
    new_page: NewPage, make_person: MakePerson, db: Db
) -> None:
    alice = make_person()
    room_id = notes_room(db, alice)
    start = datetime.now(UTC) - timedelta(hours=2)
    seed(db, alice, room_id, *(start + timedelta(minutes=n) for n in range(59)))
    assert alice.post_dm(alice.username, "the newest note").status_code == 201
    page = open_page(new_page, alice, f"/dm/{alice.username}", java_script_enabled=False)
    newest = message(page, "the newest note")
    expect(newest).to_be_in_viewport()
    expect(newest).to_be_focused()  # how it came into view; the keyboard goes on from here
    oldest = f"note at {start.isoformat()}"
    expect(message(page, oldest)).not_to_be_in_viewport()
    expect(log(page).locator(".day-separator").first).to_contain_text("(times in UTC)")
