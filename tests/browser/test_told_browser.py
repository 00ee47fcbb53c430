"""Being told, in real browsers: desktop notifications, muted rooms, unread counts that mean
"seen", the "New messages" line, "Jump to new messages", the menu's count, pending sends.

Desktop notifications are observed by replacing window.Notification, before any page script
runs (context.add_init_script), with a subclass that records every notification it makes and
still makes it; the permission is granted to the app's origin with context.grant_permissions.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from playwright.sync_api import Locator, Page, Response, Route, expect

from tests.browser.conftest import ConsoleLog, NewPage
from tests.browser.locators import composer, log, message, open_room_details
from tests.browser.seeding import post
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


def test_seeing_a_message_and_reloading_at_once_leaves_it_read(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = two_people(make_person)
    alice = open_chat(new_page, alice_p, f"/dm/{bob_p.username}")
    text = f"seen just before the reload {unique_name('m')}"
    sent = bob_p.post_dm(alice_p.username, text)
    assert sent.status_code == 201
    with alice.expect_navigation():
        alice.evaluate(
            """async id => {
                const frame = () => new Promise(resolve => requestAnimationFrame(resolve));
                while (!document.getElementById(id)) await frame();
                await frame();
                await frame();
                location.reload();
            }""",
            f"msg-{message_id(sent.text)}",
        )
    expect(message(alice, text)).to_have_count(1)
    expect(badge(alice, bob_p.username)).to_be_hidden()
    expect(alice).to_have_title(NO_UNREAD)
    expect(log(alice).get_by_text("New messages", exact=True)).to_have_count(0)  # it was seen
    alice.reload()
    expect(badge(alice, bob_p.username)).to_be_hidden()
    assert not server_title(alice_p).startswith("(")


def test_another_tab_counts_what_it_has_not_seen_until_it_is_seen(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = two_people(make_person)
    elsewhere = open_chat(new_page, alice_p)  # the public room
    reading = elsewhere.context.new_page()  # another tab, with bob's conversation open
    reading.goto(f"/dm/{bob_p.username}")
    expect(reading.get_by_role("button", name="Sign out")).to_be_visible()
    set_visibility(reading, "hidden")
    text = f"for the tab in the background {unique_name('m')}"
    assert bob_p.post_dm(alice_p.username, text).status_code == 201
    expect(message(reading, text)).to_have_count(1)
    for tab in (elsewhere, reading):
        expect(badge(tab, bob_p.username)).to_have_text("1")
        expect(tab).to_have_title(re.compile(r"^\(1\) "))
    set_visibility(reading, "visible")  # it is seen there: both tabs' counts go
    for tab in (reading, elsewhere):
        expect(badge(tab, bob_p.username)).to_be_hidden()
        expect(tab).to_have_title(NO_UNREAD)


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
    new = [f"new {n} {unique_name('m')}" for n in range(40)]  # runs of one sender are compact
    for text in new:
        post(bob_p, f"/dm/{alice_p.username}", text)  # waits out the posting limit

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

    # The read of the end (the one of the first screen may still be on its way).
    last_seq = message(alice, new[-1]).get_attribute("data-seq")
    assert last_seq

    def reads_the_end(response: Response) -> bool:
        sent = parse_qs(response.request.post_data or "").get("seq")
        return response.url.endswith("/read") and sent == [last_seq]

    with alice.expect_response(reads_the_end):
        log(alice).evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(left).to_be_hidden()
    expect(alice).to_have_title(NO_UNREAD)
    assert not server_title(alice_p).startswith("(")


def test_new_arrivals_while_reading_history_wait_behind_a_button(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = two_people(make_person)
    for n in range(45):  # more than a screenful, even as one sender's compact run
        post(bob_p, f"/dm/{alice_p.username}", f"history {n} {unique_name('m')}")
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


# Notifications

NOTICE_SECS = 5  # a notification shows within this of the post

# The recording Notification (see the module's docstring).
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  if (!Real) return;
  window.__notices = [];  // this page's
  window.__everyTab = [];  // every tab's of this browser, as they were made
  const tabs = new BroadcastChannel("test-notices");
  tabs.onmessage = event => window.__everyTab.push(event.data);
  class Recording extends Real {
    constructor(title, options) {
      super(title, options);
      const made = { title: title, body: (options && options.body) || "" };
      window.__notices.push({ ...made, notice: this });
      window.__everyTab.push(made);
      tabs.postMessage(made);
    }
  }
  window.Notification = Recording;
})();
"""


def notified_chat(new_page: NewPage, someone: Person, base_url: str, path: str = "/") -> Page:
    """A chat page that may notify (permission granted), its notifications recorded."""
    page = new_page(someone)
    page.context.grant_permissions(["notifications"], origin=base_url)
    page.context.add_init_script(RECORD_NOTIFICATIONS)
    page.goto(path)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return page


def notices(page: Page, *, every_tab: bool = False) -> list[dict[str, str]]:
    """The notifications this page made (or, `every_tab`, that any tab made since it opened)."""
    found: list[dict[str, str]] = page.evaluate(
        "everyTab => (everyTab ? window.__everyTab : window.__notices)"
        ".map(n => ({ title: n.title, body: n.body }))",
        every_tab,
    )
    return found


def wait_for_notices(page: Page, count: int, *, every_tab: bool = False) -> None:
    page.wait_for_function(
        "([count, everyTab]) => (everyTab ? window.__everyTab : window.__notices).length >= count",
        arg=[count, every_tab],
        timeout=NOTICE_SECS * 1000,
    )


def new_room(owner: Person, *members: Person) -> tuple[str, str]:
    """A private room with these members: its path and name."""
    name = unique_name("room")
    made = owner.send("POST", "/rooms", {"name": name})
    assert made.status_code == 201, made.text
    path = str(made.headers["location"])
    for member in members:
        added = owner.send("POST", f"{path}/members", {"username": member.username})
        assert added.status_code == 201, added.text
    return path, name


def post_in(someone: Person, path: str, text: str) -> str:
    sent = someone.send("POST", f"{path}/messages", {"body": text})
    assert sent.status_code == 201, sent.text
    return message_id(sent.text)


def test_a_direct_message_elsewhere_notifies_once_and_opens_its_conversation(
    new_page: NewPage, make_person: MakePerson, base_url: str
) -> None:
    alice_p, bob_p = two_people(make_person)
    carol_p = make_person(username=unique_name("carol"))
    alice = notified_chat(new_page, alice_p, base_url)  # the public room is open
    text = f"are you there? {unique_name('m')}"
    posted = time.monotonic()
    assert bob_p.post_dm(alice_p.username, text).status_code == 201
    wait_for_notices(alice, 1)
    assert time.monotonic() - posted < NOTICE_SECS
    assert notices(alice) == [{"title": bob_p.username, "body": text}]
    # One each: the next notification is carol's, not a second one of bob's.
    later = f"me too {unique_name('m')}"
    assert carol_p.post_dm(alice_p.username, later).status_code == 201
    wait_for_notices(alice, 2)
    assert notices(alice)[1:] == [{"title": carol_p.username, "body": later}]

    alice.evaluate("window.__notices[0].notice.dispatchEvent(new Event('click'))")
    expect(alice).to_have_url(re.compile(rf"/dm/{bob_p.username}$"))
    expect(message(alice, text)).to_have_count(1)


def test_nothing_notifies_for_the_open_conversation_and_the_public_room_only_on_mentions(
    new_page: NewPage, make_person: MakePerson, base_url: str
) -> None:
    alice_p, bob_p = two_people(make_person)
    alice = notified_chat(new_page, alice_p, base_url, f"/dm/{bob_p.username}")
    here = f"in the open conversation {unique_name('m')}"
    assert bob_p.post_dm(alice_p.username, here).status_code == 201
    expect(message(alice, here)).to_have_count(1)
    hello = f"hello everyone {unique_name('m')}"
    assert bob_p.post_public(hello).status_code == 201
    expect(public_badge(alice)).to_have_text("1")
    mention = f"hey @{alice_p.username}, look {unique_name('m')}"
    assert bob_p.post_public(mention).status_code == 201
    wait_for_notices(alice, 1)
    # Had either of the first two notified, it would have come first.
    assert notices(alice) == [{"title": f"{bob_p.username} in Public room", "body": mention}]


def test_a_muted_room_notifies_nobody(
    new_page: NewPage, make_person: MakePerson, base_url: str
) -> None:
    alice_p, bob_p = two_people(make_person)
    quiet, quiet_name = new_room(bob_p, alice_p)
    loud, loud_name = new_room(bob_p, alice_p)
    alice = notified_chat(new_page, alice_p, base_url, quiet)
    open_room_details(alice)
    alice.get_by_role("button", name="Mute room").click()
    expect(alice.get_by_role("button", name="Unmute room")).to_be_visible()
    expect(entry(alice, quiet_name)).to_have_attribute("data-muted", "true")
    alice.get_by_role("link", name="Public room").click()
    expect(alice).to_have_url(re.compile(r"/$|/rooms/public$"))
    expect(entry(alice, quiet_name)).to_have_attribute("data-muted", "true")  # kept

    post_in(bob_p, quiet, f"nobody is told of this {unique_name('m')}")
    expect(badge(alice, quiet_name)).to_have_text("1")  # it arrived, and counts
    text = f"but this one {unique_name('m')}"
    post_in(bob_p, loud, text)
    wait_for_notices(alice, 1)
    assert notices(alice) == [{"title": f"{bob_p.username} in {loud_name}", "body": text}]

    # Unmuted, it notifies again (on a new page, which records its own notifications).
    alice.goto(quiet)
    open_room_details(alice)
    alice.get_by_role("button", name="Unmute room").click()
    expect(alice.get_by_role("button", name="Mute room")).to_be_visible()
    alice.get_by_role("link", name="Public room").click()
    expect(entry(alice, quiet_name)).not_to_have_attribute("data-muted", "true")
    again = f"now you hear me {unique_name('m')}"
    post_in(bob_p, quiet, again)
    wait_for_notices(alice, 1)
    assert notices(alice) == [{"title": f"{bob_p.username} in {quiet_name}", "body": again}]


def test_two_tabs_notify_once_and_not_while_one_of_them_shows_the_conversation(
    new_page: NewPage, make_person: MakePerson, base_url: str
) -> None:
    alice_p, bob_p = two_people(make_person)
    carol_p = make_person(username=unique_name("carol"))
    first = notified_chat(new_page, alice_p, base_url)
    second = first.context.new_page()  # another tab of the same browser
    second.goto("/rooms/public")
    expect(second.get_by_role("button", name="Sign out")).to_be_visible()

    text = f"to both tabs {unique_name('m')}"
    assert bob_p.post_dm(alice_p.username, text).status_code == 201
    for tab in (first, second):
        expect(badge(tab, bob_p.username)).to_have_text("1")
    wait_for_notices(first, 1, every_tab=True)
    # The next one comes from carol: had a second tab told of bob's, it would have come first.
    later = f"carol now {unique_name('m')}"
    assert carol_p.post_dm(alice_p.username, later).status_code == 201
    wait_for_notices(first, 2, every_tab=True)
    assert notices(first, every_tab=True) == [
        {"title": bob_p.username, "body": text},
        {"title": carol_p.username, "body": later},
    ]

    # One tab shows bob's conversation: neither tab tells of what he says there.
    second.goto(f"/dm/{bob_p.username}")
    expect(second.get_by_role("button", name="Sign out")).to_be_visible()
    seen = f"seen in the other tab {unique_name('m')}"
    assert bob_p.post_dm(alice_p.username, seen).status_code == 201
    expect(message(second, seen)).to_have_count(1)
    last = f"carol again {unique_name('m')}"
    assert carol_p.post_dm(alice_p.username, last).status_code == 201
    wait_for_notices(first, 3, every_tab=True)
    assert notices(first, every_tab=True)[2:] == [{"title": carol_p.username, "body": last}]


def test_notifications_are_asked_for_by_a_button(
    new_page: NewPage, make_person: MakePerson, base_url: str
) -> None:
    alice_p, bob_p = two_people(make_person)
    asked = open_chat(new_page, alice_p)
    enable = asked.get_by_role("button", name="Enable notifications")
    expect(enable).to_be_visible()
    assert asked.evaluate("Notification.permission") == "default"  # nothing asked on its own
    asked.context.grant_permissions(["notifications"], origin=base_url)
    enable.click()
    expect(asked.get_by_role("status").filter(has_text="Notifications on")).to_be_visible()
    expect(enable).to_be_hidden()

    refused = open_chat(new_page, bob_p)  # this browser says no when asked
    refused.get_by_role("button", name="Enable notifications").click()
    state = refused.get_by_role("status").filter(has_text="blocked")
    expect(state).to_be_visible()
    expect(refused.get_by_role("button", name="Enable notifications")).to_be_hidden()

    granted = notified_chat(new_page, alice_p, base_url)  # allowed before: no button at all
    expect(granted.get_by_role("status").filter(has_text="Notifications on")).to_be_visible()
    expect(granted.get_by_role("button", name="Enable notifications")).to_be_hidden()


# Sending


def test_a_message_being_sent_is_pending_and_a_failed_one_can_be_retried(
    new_page: NewPage, make_person: MakePerson, console_log: ConsoleLog
) -> None:
    someone = make_person()
    page = open_chat(new_page, someone)
    console_log.allow(r"net::ERR_CONNECTION_FAILED \(\S+/rooms/public/messages\)$")  # below
    held: list[Route] = []
    page.route("**/rooms/public/messages", lambda route: held.append(route))
    text = f"through a bad line {unique_name('m')}"
    composer(page).fill(text)
    composer(page).press("Enter")
    pending = log(page).locator(".message.pending")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text(text)
    expect(pending).to_contain_text("Sending…")
    expect(composer(page)).to_have_value("")
    expect(message(page, text)).to_have_count(0)  # not the server's copy yet

    held[0].abort("connectionfailed")  # the POST fails
    expect(pending).to_contain_text("Not sent")
    expect(pending).to_contain_text(text)  # the text is kept
    alert = page.locator("#composer").get_by_role("alert")
    expect(alert).to_contain_text("Could not reach the server")
    retry = pending.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()

    page.unroute("**/rooms/public/messages")
    retry.click()
    expect(message(page, text)).to_have_count(1)
    expect(pending).to_have_count(0)
    expect(alert).to_be_hidden()
    page.reload()
    expect(message(page, text)).to_have_count(1)  # sent once


def test_the_streams_copy_arriving_first_replaces_the_pending_one(
    new_page: NewPage, make_person: MakePerson
) -> None:
    someone = make_person()
    page = open_chat(new_page, someone)
    held: list[Route] = []
    page.route("**/rooms/public/messages", lambda route: held.append(route))
    text = f"the stream is quicker {unique_name('m')}"
    composer(page).fill(text)
    composer(page).press("Enter")
    expect(log(page).locator(".message.pending")).to_have_count(1)
    answer = held[0].fetch()  # the server has it: its copy comes down the stream
    expect(message(page, text)).to_have_count(1)
    expect(log(page).locator(".message.pending")).to_have_count(0)
    held[0].fulfill(response=answer)  # and then the POST's own answer
    expect(message(page, text).locator(".actions")).to_have_count(1)
    ids = log(page).locator('[id^="msg-"]').evaluate_all("els => els.map(e => e.id)")
    assert len(ids) == len(set(ids)) and f"msg-{message_id(answer.text())}" in ids
    expect(log(page).get_by_text(text)).to_have_count(1)  # never shown twice


def test_a_send_refused_for_want_of_a_session_goes_to_the_sign_in_page(
    new_page: NewPage, make_person: MakePerson, console_log: ConsoleLog
) -> None:
    """As htmx would: a 401 that names where to go (HX-Redirect) is followed."""
    someone = make_person()
    page = open_chat(new_page, someone)
    console_log.allow(r"status of 401 \(Unauthorized\) \(\S+/rooms/public/messages\)$")  # below
    page.route(
        "**/rooms/public/messages",
        lambda route: route.fulfill(status=401, headers={"HX-Redirect": "/login"}, body=""),
    )
    composer(page).fill(f"too late {unique_name('m')}")
    composer(page).press("Enter")
    expect(page).to_have_url(re.compile(r"/login$"))
