"""The chat in real browsers: two people, each in their own browser context, watching live."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Locator, Page, Route, expect

from tests.browser.conftest import ConsoleLog, NewPage
from tests.browser.locators import composer, log, message
from tests.support import PASSWORD, Person, unique_name

MakePerson = Callable[..., Person]


def person_entry(page: Page, username: str) -> Locator:
    return page.get_by_role("list", name="Online users").get_by_role("link", name=username)


def open_chat(new_page: NewPage, someone: Person, path: str = "/") -> Page:
    page = new_page(someone)
    page.goto(path)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return page


def message_ids(page: Page) -> list[str]:
    ids: list[str] = log(page).locator('[id^="msg-"]').evaluate_all("els => els.map(e => e.id)")
    return ids


def test_public_room_is_live_on_both_screens(new_page: NewPage, make_person: MakePerson) -> None:
    alice_p, bob_p = (
        make_person(username=unique_name("alice")),
        make_person(username=unique_name("bob")),
    )
    alice, bob = open_chat(new_page, alice_p), open_chat(new_page, bob_p)
    hello = f"hello from alice {unique_name('m')}"

    field = composer(alice)
    field.fill(hello)
    field.press("Enter")
    expect(message(alice, hello)).to_have_count(1)
    expect(message(bob, hello)).to_have_count(1)
    expect(message(bob, hello)).to_contain_text(alice_p.username)
    expect(field).to_have_value("")
    expect(field).to_be_focused()

    # Shift+Enter is a new line in the message, not a send.
    first, second = f"line one {unique_name('m')}", f"line two {unique_name('m')}"
    field.type(first)
    field.press("Shift+Enter")
    field.type(second)
    expect(field).to_have_value(f"{first}\n{second}")
    expect(log(alice)).not_to_contain_text(first)
    field.press("Enter")
    expect(message(bob, first)).to_contain_text(second)
    expect(message(alice, first).locator("br")).to_have_count(1)

    reply = f"hi alice {unique_name('m')}"
    composer(bob).fill(reply)
    bob.get_by_role("button", name="Send").click()
    expect(message(bob, reply)).to_have_count(1)
    expect(message(alice, reply)).to_contain_text(bob_p.username)
    # Only your own messages have Edit and Delete.
    expect(message(alice, reply).get_by_role("button", name="Edit")).to_have_count(0)
    expect(message(alice, reply).get_by_role("button", name="Delete")).to_have_count(0)
    expect(message(alice, hello).get_by_role("button", name="Edit")).to_be_visible()
    expect(message(alice, hello).get_by_role("button", name="Delete")).to_be_visible()
    # No message appears twice (the sender's copy and the stream's echo are one).
    for page in (alice, bob):
        ids = message_ids(page)
        assert len(ids) == len(set(ids)), ids


def test_message_text_is_escaped(new_page: NewPage, make_person: MakePerson) -> None:
    alice_p, bob_p = make_person(), make_person()
    alice, bob = open_chat(new_page, alice_p), open_chat(new_page, bob_p)
    marker = unique_name("m")
    text = f"<b>x</b> {marker}"
    composer(alice).fill(text)
    composer(alice).press("Enter")
    for page in (alice, bob):
        body = message(page, marker).locator(".body")
        expect(body).to_contain_text(text)
        expect(body.locator("b")).to_have_count(0)


def test_direct_message_with_unread_badge(new_page: NewPage, make_person: MakePerson) -> None:
    alice_p, bob_p = (
        make_person(username=unique_name("alice")),
        make_person(username=unique_name("bob")),
    )
    alice, bob = open_chat(new_page, alice_p), open_chat(new_page, bob_p)

    person_entry(alice, bob_p.username).click()
    expect(alice).to_have_url(re.compile(rf"/dm/{bob_p.username}$"))
    expect(alice.get_by_role("heading", level=1)).to_have_text(bob_p.username)
    secret = f"secret {unique_name('m')}"
    composer(alice).fill(secret)
    composer(alice).press("Enter")
    expect(message(alice, secret)).to_have_count(1)

    # Bob has the public room open: no message there, but an unread badge on alice's entry.
    badge = person_entry(bob, alice_p.username).locator(".badge")
    expect(badge).to_be_visible()
    expect(badge).to_have_text("1")
    expect(log(bob)).not_to_contain_text(secret)
    expect(bob.get_by_role("link", name="Public room").locator(".badge")).to_be_hidden()

    person_entry(bob, alice_p.username).click()
    expect(bob).to_have_url(re.compile(rf"/dm/{alice_p.username}$"))
    expect(message(bob, secret)).to_contain_text(alice_p.username)
    expect(person_entry(bob, alice_p.username).locator(".badge")).to_be_hidden()


def test_edit_and_delete_show_on_both_screens(new_page: NewPage, make_person: MakePerson) -> None:
    alice_p, bob_p = make_person(), make_person()
    alice, bob = open_chat(new_page, alice_p), open_chat(new_page, bob_p)
    alice.on("dialog", lambda dialog: dialog.accept())
    original, edited = f"typo hre {unique_name('m')}", f"typo here {unique_name('m')}"
    composer(alice).fill(original)
    composer(alice).press("Enter")
    expect(message(bob, original)).to_have_count(1)
    element_id = message(alice, original).get_attribute("id")
    assert element_id
    on_alice, on_bob = alice.locator(f"#{element_id}"), bob.locator(f"#{element_id}")

    on_alice.get_by_role("button", name="Edit").click()
    field = alice.get_by_label("Edit message")
    expect(field).to_be_visible()
    expect(field).to_have_value(original)
    field.fill(edited)
    alice.get_by_role("button", name="Save").click()
    for element in (on_alice, on_bob):
        expect(element).to_contain_text(edited)
        expect(element).to_contain_text("edited")
        expect(element).not_to_contain_text(original)
    expect(alice.get_by_label("Edit message")).to_have_count(0)

    on_alice.get_by_role("button", name="Delete").click()
    for element in (on_alice, on_bob):
        expect(element).to_contain_text("message deleted")
        expect(element).not_to_contain_text(edited)
        expect(element.get_by_role("button")).to_have_count(0)


def test_history_after_reload_is_the_same_oldest_first(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = make_person(), make_person()
    alice, bob = open_chat(new_page, alice_p), open_chat(new_page, bob_p)
    texts = [f"history {n} {unique_name('m')}" for n in range(3)]
    for n, text in enumerate(texts):
        sender = alice if n % 2 == 0 else bob
        composer(sender).fill(text)
        composer(sender).press("Enter")
        expect(message(sender, text)).to_have_count(1)
    for page in (alice, bob):
        expect(message(page, texts[-1])).to_have_count(1)

    alice.reload()
    bob.reload()
    for page in (alice, bob):
        for text in texts:
            expect(message(page, text)).to_have_count(1)
    ids = message_ids(alice)
    assert ids == message_ids(bob)
    mine = [message(alice, text).get_attribute("id") for text in texts]
    assert [i for i in ids if i in mine] == mine, "oldest message at the top"
    times = (
        log(alice).locator("time").evaluate_all("els => els.map(e => e.getAttribute('datetime'))")
    )
    assert times == sorted(times)


def test_without_javascript_sign_in_and_post(new_page: NewPage, make_person: MakePerson) -> None:
    someone = make_person()
    page = new_page(java_script_enabled=False)
    page.goto("/login")
    page.get_by_label("Username").fill(someone.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    text = f"no script needed {unique_name('m')}"
    composer(page).fill(text)
    page.get_by_role("button", name="Send").click()
    expect(message(page, text)).to_contain_text(someone.username)
    expect(page).to_have_url(re.compile(r"#msg-"))


def _expect_inside(inner: Locator, outer: Locator) -> None:
    box, frame = inner.bounding_box(), outer.bounding_box()
    assert box and frame
    assert box["x"] >= frame["x"] - 1, (box, frame)
    assert box["x"] + box["width"] <= frame["x"] + frame["width"] + 1, (box, frame)


def test_sidebar_controls_fit_in_the_sidebar(new_page: NewPage, person: Person) -> None:
    """On a desktop and on a phone (menu open), the sidebar's buttons stay inside it."""
    for viewport in ({"width": 1280, "height": 800}, {"width": 390, "height": 844}):
        page = new_page(person, viewport=viewport, reduced_motion="reduce")
        page.goto("/")
        sign_out = page.get_by_role("button", name="Sign out")
        if viewport["width"] < 720:
            page.get_by_label("Show conversations").click()
        expect(sign_out).to_be_in_viewport(ratio=1)
        sidebar = page.get_by_role("complementary")
        for name in ("Set away", "Sign out"):
            _expect_inside(page.get_by_role("button", name=name), sidebar)
        _expect_inside(page.get_by_label("Away message"), sidebar)


def test_messages_caught_up_after_a_dropped_stream_keep_their_order(
    new_page: NewPage, make_person: MakePerson, console_log: ConsoleLog
) -> None:
    """A message that arrives late (replayed after a reconnect) goes in its place, not last."""
    alice_p, bob_p = make_person(), make_person()
    alice = new_page(alice_p)
    # Alice's stream cannot connect until `blocked` is cleared: her network is down. Chromium
    # logs each refused connection, and htmx logs the extension's sseError event.
    console_log.allow(r"net::ERR_FAILED \(\S+/events\?")
    console_log.allow(r"console error: \[object Event\] \(\S+/htmx\.min\.js\)$")
    blocked = [True]

    def events(route: Route) -> None:
        if blocked:
            route.abort()
        else:
            route.continue_()

    alice.context.route("**/events?*", events)
    alice.goto("/")
    texts = [f"order {n} {unique_name('m')}" for n in range(3)]
    composer(alice).fill(texts[0])
    composer(alice).press("Enter")
    expect(message(alice, texts[0])).to_have_count(1)
    assert bob_p.post_public(texts[1]).status_code == 201
    composer(alice).fill(texts[2])
    composer(alice).press("Enter")
    expect(message(alice, texts[2])).to_have_count(1)

    blocked.clear()  # the network is back: the stream reconnects and replays what she missed
    expect(message(alice, texts[1])).to_have_count(1)
    ids = message_ids(alice)
    mine = [message(alice, text).get_attribute("id") for text in texts]
    assert [i for i in ids if i in mine] == mine, "oldest message at the top"
