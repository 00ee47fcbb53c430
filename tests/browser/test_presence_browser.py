"""Presence in real browsers: who is online, away messages, typing notices and unread badges."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import ConsoleLog, NewPage
from tests.browser.locators import composer, message
from tests.support import Person, unique_name

MakePerson = Callable[..., Person]

NO_UNREAD_PREFIX = re.compile(r"^(?!\(\d+\) )")


def online_list(page: Page) -> Locator:
    return page.get_by_role("list", name="Online users")


def offline_list(page: Page) -> Locator:
    return page.get_by_role("list", name="Offline")


def entry(page: Page, username: str) -> Locator:
    """Someone's entry in the sidebar, online or offline."""
    return page.locator("#people").get_by_role("link", name=username)


def open_chat(new_page: NewPage, someone: Person, path: str = "/") -> Page:
    page = new_page(someone)
    page.goto(path)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return page


def set_away(page: Page, text: str) -> None:
    page.get_by_label("Away message").fill(text)
    page.get_by_role("button", name="Set away").click()


def two_people(make_person: MakePerson) -> tuple[Person, Person]:
    return make_person(username=unique_name("alice")), make_person(username=unique_name("bob"))


def test_people_come_online_and_go_offline(new_page: NewPage, make_person: MakePerson) -> None:
    alice_p, bob_p = two_people(make_person)
    alice = open_chat(new_page, alice_p)
    expect(online_list(alice).get_by_role("link", name=bob_p.username)).to_have_count(0)

    bob = open_chat(new_page, bob_p)
    bob_online = online_list(alice).get_by_role("link", name=bob_p.username)
    expect(bob_online).to_be_visible(timeout=5_000)
    expect(bob_online.locator(".dot")).to_have_class(re.compile(r"\bdot\b.*\bonline\b"))
    # Bob sees alice too.
    expect(online_list(bob).get_by_role("link", name=alice_p.username)).to_be_visible()

    bob.close()
    expect(bob_online).to_have_count(0)
    bob_offline = offline_list(alice).get_by_role("link", name=bob_p.username)
    expect(bob_offline).to_be_visible()
    expect(bob_offline.locator(".dot")).to_have_class(re.compile(r"\boffline\b"))
    expect(bob_offline).to_contain_text("last seen")


def test_away_message_shows_for_others(
    new_page: NewPage, make_person: MakePerson, console_log: ConsoleLog
) -> None:
    alice_p, bob_p = two_people(make_person)
    alice = open_chat(new_page, alice_p)
    bob = open_chat(new_page, bob_p)
    bob_entry = online_list(alice).get_by_role("link", name=bob_p.username)
    expect(bob_entry).to_be_visible()

    first = f"lunch {unique_name('away')}"
    set_away(bob, first)
    expect(bob_entry).to_contain_text(first)
    expect(bob_entry.locator(".dot")).to_have_class(re.compile(r"\baway\b"))

    bob_entry.click()
    expect(alice).to_have_url(re.compile(rf"/dm/{bob_p.username}$"))
    peer_away = alice.locator("#peer-away")
    expect(peer_away).to_be_visible()
    expect(peer_away).to_have_text(f"Away: {first}")

    # Cleared: gone from the top of the DM and from the sidebar.
    set_away(bob, "")
    expect(peer_away).to_be_hidden()
    expect(bob_entry).not_to_contain_text(first)
    expect(bob_entry.locator(".dot")).to_have_class(re.compile(r"\bonline\b"))

    second = f"in a meeting {unique_name('away')}"
    set_away(bob, second)
    expect(peer_away).to_have_text(f"Away: {second}")
    expect(bob_entry).to_contain_text(second)

    # Too long: refused with a visible reason; alice still sees the previous note.
    # Chromium logs the 400, and htmx logs its responseError event: both expected here.
    console_log.allow(r"Failed to load resource: .* 400 ")
    console_log.allow(r"Response Status Error Code 400 from /away")
    field = bob.get_by_label("Away message")
    field.evaluate("el => el.removeAttribute('maxlength')")
    field.fill("x" * 201)
    bob.get_by_role("button", name="Set away").click()
    error = bob.locator(".away-form").get_by_role("alert")
    expect(error).to_be_visible()
    expect(error).to_contain_text("200 characters")
    expect(peer_away).to_have_text(f"Away: {second}")
    expect(bob_entry).to_contain_text(second)
    alice.reload()
    expect(alice.locator("#peer-away")).to_have_text(f"Away: {second}")


def test_typing_notice_reaches_only_the_other_party(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = two_people(make_person)
    carol_p = make_person(username=unique_name("carol"))
    alice = open_chat(new_page, alice_p, f"/dm/{bob_p.username}")
    bob = open_chat(new_page, bob_p, f"/dm/{alice_p.username}")
    carol = open_chat(new_page, carol_p, "/")
    # Everyone's stream is up (each sees the others online) before anyone types.
    for page, others in (
        (alice, (bob_p, carol_p)),
        (bob, (alice_p, carol_p)),
        (carol, (alice_p, bob_p)),
    ):
        for other in others:
            expect(online_list(page).get_by_role("link", name=other.username)).to_be_visible()

    composer(bob).press_sequentially("hel")
    expect(alice.locator("#typing")).to_have_text(f"{bob_p.username} is typing…")
    expect(bob.locator("#typing")).to_have_text("")
    # Carol's stream has delivered everything up to a later public message: still no notice.
    marker = f"public after typing {unique_name('m')}"
    assert alice_p.post_public(marker).status_code == 201
    expect(message(carol, marker)).to_have_count(1)
    expect(carol.locator("#typing")).to_have_text("")

    text = f"hello {unique_name('m')}"
    composer(bob).press_sequentially(f"lo {text}")
    expect(alice.locator("#typing")).to_have_text(f"{bob_p.username} is typing…")
    composer(bob).press("Enter")
    # Gone because the message came, well before the notice's own 6 s timeout.
    expect(alice.locator("#typing")).to_have_text("", timeout=3_000)
    expect(message(alice, text)).to_contain_text(bob_p.username)
    expect(carol.locator("#typing")).to_have_text("")
    expect(message(carol, text)).to_have_count(0)


def test_typing_is_sent_sparingly_and_its_notice_fades(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = two_people(make_person)
    alice = open_chat(new_page, alice_p, f"/dm/{bob_p.username}")
    bob = open_chat(new_page, bob_p, f"/dm/{alice_p.username}")
    expect(online_list(alice).get_by_role("link", name=bob_p.username)).to_be_visible()
    expect(online_list(bob).get_by_role("link", name=alice_p.username)).to_be_visible()
    notices: list[str] = []
    bob.on("request", lambda r: notices.append(r.url) if r.url.endswith("/typing") else None)

    # A burst of keystrokes sends one notice (at most one every few seconds).
    composer(bob).press_sequentially("a quick burst of typing", delay=10)
    expect(alice.locator("#typing")).to_have_text(f"{bob_p.username} is typing…")
    assert len(notices) == 1, notices
    # Bob stops without sending: the notice goes away by itself.
    expect(alice.locator("#typing")).to_have_text("", timeout=10_000)
    assert len(notices) == 1, notices


def test_unread_badges_for_dms_and_the_public_room(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = two_people(make_person)
    alice = open_chat(new_page, alice_p)
    texts = [f"dm {n} {unique_name('m')}" for n in range(2)]
    for text in texts:
        assert bob_p.post_dm(alice_p.username, text).status_code == 201

    badge = entry(alice, bob_p.username).locator(".badge")
    expect(badge).to_be_visible()
    expect(badge).to_have_text("2")
    expect(alice).to_have_title(re.compile(r"^\(2\) "))

    entry(alice, bob_p.username).click()
    expect(alice).to_have_url(re.compile(rf"/dm/{bob_p.username}$"))
    for text in texts:
        expect(message(alice, text)).to_have_count(1)
    expect(badge).to_be_hidden()
    expect(alice).to_have_title(NO_UNREAD_PREFIX)
    alice.reload()
    expect(message(alice, texts[-1])).to_have_count(1)
    expect(badge).to_be_hidden()
    expect(alice).to_have_title(NO_UNREAD_PREFIX)

    # Public room: a post while alice is in the DM counts, and the count survives a reload.
    public = f"public {unique_name('m')}"
    assert bob_p.post_public(public).status_code == 201
    room_badge = alice.get_by_role("link", name="Public room").locator(".badge")
    expect(room_badge).to_have_text("1")
    expect(room_badge).to_be_visible()
    expect(alice).to_have_title(re.compile(r"^\(1\) "))
    expect(message(alice, public)).to_have_count(0)
    alice.reload()
    expect(room_badge).to_have_text("1")
    expect(room_badge).to_be_visible()
    expect(alice).to_have_title(re.compile(r"^\(1\) "))

    alice.get_by_role("link", name="Public room").click()
    expect(alice).to_have_url(re.compile(r"/(rooms/public)?$"))
    expect(message(alice, public)).to_have_count(1)
    expect(room_badge).to_be_hidden()
    expect(alice).to_have_title(NO_UNREAD_PREFIX)
