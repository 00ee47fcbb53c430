"""Being told, in real browsers: unread counts that mean "seen", the "New messages" line,
"Jump to new messages", the menu's count.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import NewPage
from tests.browser.locators import log, message
from tests.support import Person, message_id, unique_name

MakePerson = Callable[..., Person]

DESKTOP = {"width": 1280, "height": 720}
NO_UNREAD = re.compile(r"^(?!\(\d+\) )")


def two_people(make_person: MakePerson) -> tuple[Person, Person]:
    return make_person(username=unique_name("alice")), make_person(username=unique_name("bob"))


def open_chat(new_page: NewPage, someone: Person, path: str = "/", **options: Any) -> Page:
    page = new_page(someone, **options)
    page.goto(path)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return page


def entry(page: Page, conversation_link: str) -> Locator:
    return page.locator("#people").get_by_role("link", name=conversation_link)


def badge(page: Page, conversation_link: str) -> Locator:
    return entry(page, conversation_link).locator(".badge")


def public_badge(page: Page) -> Locator:
    return page.get_by_role("link", name="Public room").locator(".badge")


def server_title(someone: Person) -> str:
    """The title of a fresh page of someone's notes to self: "(n) ..." counts their unread."""
    page = someone.client.get(f"/dm/{someone.username}").text
    match = re.search(r"<title>([^<]*)</title>", page)
    assert match
    return match.group(1)


def set_visibility(page: Page, state: str) -> None:
    """Makes the page believe it is in a background tab ("hidden") or at the front again."""
    page.evaluate(
        """state => {
            const fixed = value => ({ value: value, configurable: true });
            Object.defineProperty(document, "visibilityState", fixed(state));
            Object.defineProperty(document, "hidden", fixed(state === "hidden"));
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        state,
    )


# Unread counts that mean "seen"


def test_seeing_a_message_and_switching_at_once_leaves_it_read(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = two_people(make_person)
    alice = open_chat(new_page, alice_p)  # the public room
    expect(entry(alice, bob_p.username)).to_be_visible()
    text = f"seen in a glance {unique_name('m')}"
    sent = bob_p.post_public(text)
    assert sent.status_code == 201
    # On screen for two frames, then the reader is off to bob's conversation.
    on_screen_ms = alice.evaluate(
        """async ([id, username]) => {
            const frame = () => new Promise(resolve => requestAnimationFrame(resolve));
            while (!document.getElementById(id)) await frame();
            const shown = performance.now();
            await frame();
            await frame();
            document.querySelector('#people a[data-username="' + username + '"]').click();
            return performance.now() - shown;
        }""",
        [f"msg-{message_id(sent.text)}", bob_p.username],
    )
    assert on_screen_ms < 200
    expect(alice).to_have_url(re.compile(rf"/dm/{bob_p.username}$"))
    expect(public_badge(alice)).to_be_hidden()
    expect(alice).to_have_title(NO_UNREAD)
    alice.reload()
    expect(public_badge(alice)).to_be_hidden()
    assert not server_title(alice_p).startswith("(")

    # One she never saw (bob's DM is open) is counted, and stays counted.
    unseen = f"not seen {unique_name('m')}"
    assert bob_p.post_public(unseen).status_code == 201
    expect(public_badge(alice)).to_have_text("1")
    alice.reload()
    expect(public_badge(alice)).to_have_text("1")
    expect(alice).to_have_title(re.compile(r"^\(1\) "))


def test_a_background_tab_counts_until_it_is_looked_at(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = two_people(make_person)
    alice = new_page(alice_p)
    alice.clock.install()  # the page's timers wait for the test: a read it means to send waits
    alice.goto(f"/dm/{bob_p.username}")
    expect(alice.get_by_role("button", name="Sign out")).to_be_visible()
    reads: list[str] = []
    alice.on("request", lambda r: reads.append(r.url) if r.url.endswith("/read") else None)
    alice.clock.pause_at(int(alice.evaluate("Date.now()")) + 50)

    set_visibility(alice, "hidden")
    text = f"while you were away {unique_name('m')}"
    assert bob_p.post_dm(alice_p.username, text).status_code == 201
    expect(message(alice, text)).to_have_count(1)  # on the page, at the bottom of the log
    expect(alice).to_have_title(re.compile(r"^\(1\) "))
    alice.clock.run_for(5_000)  # whatever the page meant to send, it sends now
    assert alice.evaluate("fetch('/healthz').then(r => r.status)") == 200  # a later request
    assert reads == []
    expect(alice).to_have_title(re.compile(r"^\(1\) "))
    assert server_title(alice_p).startswith("(1) ")

    with alice.expect_response(lambda r: r.url.endswith("/read")) as read:
        set_visibility(alice, "visible")
        alice.clock.run_for(1_000)
    assert read.value.status == 204
    expect(alice).to_have_title(NO_UNREAD)
    assert not server_title(alice_p).startswith("(")


def test_a_conversation_with_unread_messages_opens_at_the_new_messages_line(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = two_people(make_person)
    for n in range(4):
        assert bob_p.post_dm(alice_p.username, f"old {n} {unique_name('m')}").status_code == 201
    assert alice_p.send("POST", f"/dm/{bob_p.username}/read").status_code == 204
    new = [f"new {n} {unique_name('m')}" for n in range(14)]
    for text in new:
        assert bob_p.post_dm(alice_p.username, text).status_code == 201

    alice = open_chat(
        new_page, alice_p, f"/dm/{bob_p.username}", viewport={"width": 1280, "height": 720}
    )
    line = log(alice).get_by_text("New messages", exact=True)
    expect(line).to_have_count(1)
    expect(line).to_be_in_viewport()
    expect(message(alice, new[0])).to_be_in_viewport()
    expect(message(alice, new[-1])).not_to_be_in_viewport()
    line_box, first_box = line.bounding_box(), message(alice, new[0]).bounding_box()
    assert line_box and first_box and line_box["y"] < first_box["y"]
    # What is on screen was read; what is below it is still unread.
    left = badge(alice, bob_p.username)
    expect(left).to_have_text(re.compile(r"^\d+$"))
    expect(alice).to_have_title(re.compile(r"^\(\d+\) "))
    unread = int(left.inner_text())
    assert 0 < unread < len(new)

    with alice.expect_response(lambda r: r.url.endswith("/read")):
        log(alice).evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(left).to_be_hidden()
    expect(alice).to_have_title(NO_UNREAD)
    assert not server_title(alice_p).startswith("(")


def test_new_arrivals_while_reading_history_wait_behind_a_button(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = two_people(make_person)
    for n in range(16):
        assert bob_p.post_dm(alice_p.username, f"history {n} {unique_name('m')}").status_code == 201
    assert alice_p.send("POST", f"/dm/{bob_p.username}/read").status_code == 204
    alice = open_chat(
        new_page, alice_p, f"/dm/{bob_p.username}", viewport={"width": 1280, "height": 720}
    )
    jump = alice.get_by_role("button", name="Jump to new messages")
    expect(jump).to_be_hidden()
    log(alice).evaluate("el => { el.scrollTop = 0; }")

    text = f"something new {unique_name('m')}"
    assert bob_p.post_dm(alice_p.username, text).status_code == 201
    expect(message(alice, text)).to_have_count(1)
    expect(jump).to_be_visible()
    assert log(alice).evaluate("el => el.scrollTop") == 0  # the view stayed where it was
    expect(message(alice, text)).not_to_be_in_viewport()
    expect(badge(alice, bob_p.username)).to_have_text("1")

    jump.click()
    expect(message(alice, text)).to_be_in_viewport()
    expect(jump).to_be_hidden()
    expect(badge(alice, bob_p.username)).to_be_hidden()
    expect(alice).to_have_title(NO_UNREAD)


def test_the_menu_button_counts_what_is_unread_on_a_phone(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = two_people(make_person)
    alice = new_page(alice_p, viewport={"width": 390, "height": 844})
    alice.goto("/")
    menu = alice.locator(".nav-open")  # the sidebar, Sign out and all, is behind it
    expect(menu).to_be_visible()
    expect(menu.locator(".nav-badge")).to_be_hidden()
    for n in range(2):
        assert bob_p.post_dm(alice_p.username, f"psst {n}").status_code == 201
    expect(menu.locator(".nav-badge")).to_be_visible()
    expect(menu.locator(".nav-badge")).to_have_text("2")
    expect(menu).to_have_accessible_name(re.compile(r"Show conversations.*2 unread"))
    assert alice_p.send("POST", f"/dm/{bob_p.username}/read").status_code == 204  # another tab
    expect(menu.locator(".nav-badge")).to_be_hidden()
