"""Mentions, search and sending once, in real browsers (DESIGN.md "Saying more" (Mentions),
"Finding (search)" and "Being told").

The mention list and search are driven by keyboard alone; each person has their own browser
context, and what one does shows on the other's open page without a reload. Desktop
notifications are recorded as test_told_browser.py records them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import Locator, Page, Request, Route, expect

from tests.browser.conftest import ConsoleLog, NewPage
from tests.browser.locators import (
    LAPTOP,
    PHONE,
    composer,
    log,
    message,
    open_chat,
    open_room_details,
)
from tests.browser.seeding import make_room, post
from tests.browser.test_keyboard_browser import is_narrow, press_until
from tests.browser.test_told_browser import notices, notified_chat, wait_for_notices
from tests.support import Person, message_id, unique_name

MakePerson = Callable[..., Person]

VIEWPORTS = pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390", "1280"])
HIGHLIGHT = re.compile(r"\bhighlight\b")


def to_composer(page: Page) -> None:
    """Focus in the message box, by keyboard (a laptop starts there)."""
    if is_narrow(page):
        press_until(page, composer(page), "Tab", limit=16)
    expect(composer(page)).to_be_focused()


def sidebar_entry(page: Page, name: str) -> Locator:
    return page.locator("#people").get_by_role("link", name=name)


def mentioned(page: Page, name: str) -> Locator:
    """The "@" beside a conversation's unread badge."""
    return sidebar_entry(page, name).locator(".mentioned")


def search_field(page: Page) -> Locator:
    return page.get_by_role("searchbox", name="Search messages")


def results(page: Page) -> Locator:
    return page.get_by_role("region", name="Search results")


def search_again(page: Page) -> None:
    """Ctrl+K and Enter, then waits for the answer: the last results stay shown until it
    replaces them, and a Tab into them before that would land on links about to go."""
    page.evaluate(
        "document.querySelectorAll('#search-results a.result')"
        ".forEach((a) => { a.dataset.earlier = ''; })"
    )
    page.keyboard.press("Control+k")
    expect(search_field(page)).to_be_focused()
    page.keyboard.press("Enter")
    expect(results(page).locator("a.result[data-earlier]")).to_have_count(0)


# Mentions


@VIEWPORTS
def test_the_mention_list_by_keyboard(
    new_page: NewPage, make_person: MakePerson, viewport: dict[str, int]
) -> None:
    stem = unique_name("m")  # the room's other members' names start alike
    alice_p = make_person(username=unique_name("alice"))
    ann, andy, bob = (make_person(username=stem + end) for end in ("ann", "andy", "bob"))
    room = make_room(alice_p, unique_name("Who"), ann, andy, bob)
    page = open_chat(new_page, alice_p, room, viewport)
    to_composer(page)
    box = composer(page)
    people = page.get_by_role("listbox", name="People to mention")
    options = people.get_by_role("option")
    expect(people).to_be_hidden()
    expect(box).to_have_attribute("aria-autocomplete", "list")
    expect(box).to_have_attribute("aria-haspopup", "listbox")

    # "@" and letters: the members whose names start so, the first one chosen.
    page.keyboard.type(f"ask @{stem.upper()}an")
    expect(people).to_be_visible()
    expect(options).to_have_text([andy.username, ann.username])
    expect(box).to_have_attribute("aria-controls", str(people.get_attribute("id")))
    expect(page.get_by_role("status").filter(has_text="2 people")).to_have_count(1)
    first, second = options.nth(0), options.nth(1)
    expect(first).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", str(first.get_attribute("id")))
    page.keyboard.press("ArrowDown")
    expect(second).to_have_attribute("aria-selected", "true")
    expect(first).to_have_attribute("aria-selected", "false")
    expect(box).to_have_attribute("aria-activedescendant", str(second.get_attribute("id")))
    page.keyboard.press("ArrowDown")  # round to the first
    expect(first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowUp")
    expect(second).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")  # inserts the name; sends nothing
    expect(people).to_be_hidden()
    expect(box).not_to_have_attribute("aria-activedescendant", re.compile(".*"))
    expect(box).to_have_value(f"ask @{ann.username} ")
    expect(box).to_be_focused()

    # Escape closes the list (that "@" stays closed as the name is typed on).
    page.keyboard.type(f"and @{stem}b")
    expect(options).to_have_text([bob.username])
    expect(page.get_by_role("status").filter(has_text="1 person")).to_have_count(1)
    page.keyboard.press("Escape")
    expect(people).to_be_hidden()
    page.keyboard.type("ob")
    expect(people).to_be_hidden()
    expect(box).to_have_value(f"ask @{ann.username} and @{bob.username}")
    expect(box).to_be_focused()

    # Tab inserts too, and keeps focus in the box.
    page.keyboard.type(f" @{stem}and")
    expect(options).to_have_text([andy.username])
    page.keyboard.press("Tab")
    expect(box).to_have_value(f"ask @{ann.username} and @{bob.username} @{andy.username} ")
    expect(box).to_be_focused()
    page.keyboard.press("Enter")  # the list is closed: this sends
    sent = message(page, "ask")
    expect(sent.locator(".mention")).to_have_text(
        [f"@{ann.username}", f"@{bob.username}", f"@{andy.username}"]
    )
    expect(box).to_have_value("")


def test_a_mention_is_marked_for_everyone_and_for_the_one_mentioned_only(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p = make_person(username=unique_name("alice"))
    bob_p = make_person(username=unique_name("bob"))
    carol_p = make_person(username=unique_name("carol"))
    alice, bob, carol = (open_chat(new_page, p) for p in (alice_p, bob_p, carol_p))
    text = f"lunch, @{bob_p.username}? {unique_name('m')}"
    composer(alice).fill(text)
    composer(alice).press("Enter")
    background = "el => getComputedStyle(el).backgroundColor"
    for page in (alice, bob, carol):
        name = message(page, text).locator(".mention")
        expect(name).to_have_text(f"@{bob_p.username}")
        assert name.evaluate(background) != "rgba(0, 0, 0, 0)"  # marked for everyone
    expect(message(bob, text)).to_have_class(re.compile(r"\bmentions-me\b"))
    expect(message(bob, text).locator(".mention")).to_have_class(re.compile(r"\byours\b"))
    for page in (alice, carol):
        expect(message(page, text)).not_to_have_class(re.compile(r"\bmentions-me\b"))
        expect(message(page, text).locator(".mention")).not_to_have_class(re.compile(r"\byours\b"))
    assert message(bob, text).evaluate(background) != message(carol, text).evaluate(background)
    names = [message(p, text).locator(".mention") for p in (bob, carol)]
    assert names[0].evaluate(background) != names[1].evaluate(background)
    assert names[0].evaluate("el => getComputedStyle(el).display") == "inline"

    bob.reload()  # the page as the server renders it for bob
    expect(message(bob, text)).to_have_class(re.compile(r"\bmentions-me\b"))
    expect(message(bob, text).locator(".mention")).to_have_class(re.compile(r"\byours\b"))


def test_the_at_badge_shows_live_and_goes_when_read(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p = make_person(username=unique_name("alice"))
    bob_p = make_person(username=unique_name("bob"))
    name = unique_name("Lunch")
    room = make_room(alice_p, name, bob_p)
    bob = open_chat(new_page, bob_p)  # the public room is open
    phone = open_chat(new_page, bob_p, viewport=PHONE)  # his phone: the menu button tells
    menu = phone.get_by_role("button", name=re.compile("^Show conversations"))
    badge = sidebar_entry(bob, name).locator(".badge")
    expect(mentioned(bob, name)).to_be_hidden()

    post(alice_p, room, f"plain news {unique_name('m')}")
    expect(badge).to_have_text("1")
    expect(mentioned(bob, name)).to_be_hidden()  # no mention yet
    post(alice_p, room, f"@{bob_p.username} are you coming? {unique_name('m')}")
    expect(badge).to_have_text("2")
    expect(mentioned(bob, name)).to_be_visible()
    expect(mentioned(bob, name)).to_have_text("@")
    expect(menu).to_have_accessible_name(re.compile(r"\d+ unread, mentioned$"))

    # Read elsewhere (another tab of his): the "@" goes with the count.
    assert bob_p.send("POST", f"{room}/read").status_code == 204
    expect(mentioned(bob, name)).to_be_hidden()
    expect(badge).to_be_hidden()
    expect(menu).not_to_have_accessible_name(re.compile("mentioned"))
    bob.reload()
    expect(mentioned(bob, name)).to_be_hidden()

    # Again, and he opens the room: seen there, it goes.
    text = f"@{bob_p.username} one more thing {unique_name('m')}"
    post(alice_p, room, text)
    expect(mentioned(bob, name)).to_be_visible()
    sidebar_entry(bob, name).click()
    expect(message(bob, text)).to_have_class(re.compile(r"\bmentions-me\b"))
    expect(mentioned(bob, name)).to_be_hidden()
    expect(menu).not_to_have_accessible_name(re.compile("mentioned"))
    bob.goto("/")
    expect(mentioned(bob, name)).to_be_hidden()


def test_a_mention_notifies_even_in_a_muted_room_and_only_once(
    new_page: NewPage, make_person: MakePerson, base_url: str
) -> None:
    alice_p = make_person(username=unique_name("alice"))
    bob_p = make_person(username=unique_name("bob"))
    name = unique_name("Quiet")
    room = make_room(alice_p, name, bob_p)
    assert bob_p.send("POST", f"{room}/mute", {"muted": "on"}).status_code in (200, 303)
    bob = notified_chat(new_page, bob_p, base_url)  # the public room is open
    expect(sidebar_entry(bob, name)).to_have_attribute("data-muted", "true")

    plain = f"nobody is told of this {unique_name('m')}"
    plain_id = message_id(post(alice_p, room, plain))
    expect(sidebar_entry(bob, name).locator(".badge")).to_have_text("1")
    text = f"@{bob_p.username} but you are {unique_name('m')}"
    post(alice_p, room, text)
    wait_for_notices(bob, 1)
    # Had the plain one notified, it would have come first.
    assert notices(bob) == [{"title": f"{alice_p.username} in {name}", "body": text}]

    # An edit that mentions him tells him; saving it again does not, nor a reaction.
    edited = f"nobody? @{bob_p.username} after all {unique_name('m')}"
    for _ in range(2):
        response = alice_p.send("PATCH", f"/messages/{plain_id}", {"body": edited})
        assert response.status_code == 200, response.text
    reacted = alice_p.send("POST", f"/messages/{plain_id}/reactions", {"emoji": "👍"})
    assert reacted.status_code == 200, reacted.text
    last = f"@{bob_p.username} last one {unique_name('m')}"
    post(alice_p, room, last)
    wait_for_notices(bob, 3)
    assert notices(bob)[1:] == [
        {"title": f"{alice_p.username} in {name}", "body": edited},
        {"title": f"{alice_p.username} in {name}", "body": last},
    ]


def test_mentioning_someone_outside_the_room_offers_to_add_them(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p = make_person(username=unique_name("alice"))
    bob_p = make_person(username=unique_name("bob"))
    carol_p = make_person(username=unique_name("carol"))
    room = make_room(alice_p, unique_name("Team"), bob_p)
    page = open_chat(new_page, alice_p, room)
    notice = page.locator("#mention-notice")  # role="status"
    expect(notice).to_have_attribute("role", "status")
    expect(notice).to_have_text("")

    composer(page).fill(f"ask @{carol_p.username} too")
    composer(page).press("Enter")
    expect(message(page, "ask")).to_have_count(1)
    expect(notice).to_contain_text(f"{carol_p.username} is not in this room")
    add = notice.get_by_role("button", name=f"Add {carol_p.username} to this room")
    expect(add).to_have_text("Add")
    add.focus()
    page.keyboard.press("Enter")
    expect(notice).to_contain_text(f"{carol_p.username} was added to this room")
    expect(add).to_have_count(0)
    expect(composer(page)).to_be_focused()
    open_room_details(page)
    expect(page.get_by_role("list", name="Members", exact=True)).to_contain_text(carol_p.username)
    assert 'id="composer"' in carol_p.client.get(room).text  # she is in

    composer(page).fill(f"welcome {unique_name('m')}")
    composer(page).press("Enter")
    expect(notice).to_have_text("")  # the next send clears it

    # In a direct conversation: said, and nothing to add.
    dm = open_chat(new_page, alice_p, f"/dm/{bob_p.username}")
    composer(dm).fill(f"what does @{carol_p.username} think")
    composer(dm).press("Enter")
    told = dm.locator("#mention-notice")
    expect(told).to_contain_text(f"{carol_p.username} is not in this conversation")
    expect(told.get_by_role("button")).to_have_count(0)


# Search


def test_search_by_keyboard_opens_a_result_at_its_message(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = make_person(), make_person()
    room = make_room(alice_p, unique_name("Archive"), bob_p)
    marker = unique_name("needle").replace("_", "")  # one word ("_" separates words)
    old = f"first {marker} of all"
    old_id = message_id(post(bob_p, room, old))
    for n in range(55):  # more than a page: the first is not on it
        post(bob_p, room, f"chatter {n}")
    recent = f"latest {marker} here"
    post(bob_p, room, recent)
    # Read up to now, so that the page opens at its end: opened at the first unread, at the
    # top of the log, it would load older messages (the first among them) by itself.
    assert alice_p.send("POST", f"{room}/read").status_code == 204
    page = open_chat(new_page, alice_p, room)
    expect(message(page, recent)).to_have_count(1)
    expect(message(page, old)).to_have_count(0)
    expect(search_field(page)).to_have_attribute("placeholder", re.compile(r"\(/\)"))

    # "/" (not while typing) goes to the field; Enter searches; Escape hides the results and
    # goes back where focus was.
    expect(composer(page)).to_be_focused()
    press_until(page, log(page), "Shift+Tab", limit=4)
    page.keyboard.press("/")
    expect(search_field(page)).to_be_focused()
    page.keyboard.type(marker)
    page.keyboard.press("Enter")
    found = results(page).locator("a.result")
    expect(found).to_have_count(2)
    expect(found.nth(0)).to_contain_text(recent)  # newest first
    expect(found.nth(1)).to_contain_text(old)
    expect(found.nth(0).locator("mark")).to_have_text(marker)
    expect(page.get_by_role("status").filter(has_text="2 results")).to_have_count(1)
    page.keyboard.press("Escape")
    expect(results(page)).to_have_count(0)  # hidden
    expect(log(page)).to_be_focused()
    expect(search_field(page)).to_have_value(marker)

    # Ctrl+K, Enter, Tab to the newest: it is on the page, shown there.
    url = page.url
    search_again(page)
    expect(found).to_have_count(2)
    press_until(page, found.nth(0), limit=4)
    page.keyboard.press("Enter")
    shown = message(page, recent)
    expect(shown).to_be_focused()
    expect(shown).to_have_class(HIGHLIGHT)
    expect(shown).to_be_in_viewport()
    assert page.url == url

    # Escape in the results (still shown) goes back too, to the message Ctrl+K came from.
    page.keyboard.press("Control+k")
    press_until(page, found.nth(0), limit=4)
    page.keyboard.press("Escape")
    expect(results(page)).to_have_count(0)
    expect(shown).to_be_focused()

    # The oldest is not on the page: its conversation opens at it, history loaded.
    expect(message(page, old)).to_have_count(0)
    search_again(page)
    press_until(page, found.nth(1), limit=5)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"at={old_id}#msg-{old_id}$"))
    target = message(page, old)
    expect(target).to_be_focused()
    expect(target).to_have_class(HIGHLIGHT)
    expect(target).to_be_in_viewport()
    assert target.evaluate("el => el.matches(':target')")


def test_a_search_that_cannot_be_run_says_why(
    new_page: NewPage, make_person: MakePerson, console_log: ConsoleLog
) -> None:
    console_log.allow(r"Failed to load resource: .* 400 .*/search")
    console_log.allow(r"Response Status Error Code 400 from /search")
    page = open_chat(new_page, make_person())
    search_field(page).fill("   ")
    search_field(page).press("Enter")
    error = page.get_by_role("search").get_by_role("alert")
    expect(error).to_be_visible()
    expect(error).not_to_have_text("")
    expect(results(page)).to_have_count(0)

    search_field(page).fill(f"nothing like {unique_name('x')}")
    search_field(page).press("Enter")
    expect(results(page)).to_contain_text("Nothing found")
    expect(error).to_be_hidden()


# Sending once


def test_a_retry_after_a_lost_answer_posts_once(
    new_page: NewPage, make_person: MakePerson, console_log: ConsoleLog
) -> None:
    someone = make_person()
    page = new_page(someone, viewport=LAPTOP)
    # No event stream: only the POST's answer can bring the message back.
    console_log.allow(r"net::ERR_FAILED \(\S+/events\?")
    console_log.allow(r"console error: \[object Event\] \(\S+/htmx\.min\.js\)$")
    console_log.allow(r"net::ERR_CONNECTION_FAILED \(\S+/rooms/public/messages\)$")
    page.context.route("**/events?*", lambda route: route.abort())
    keys: list[str] = []

    def note_key(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/rooms/public/messages"):
            keys.append(parse_qs(request.post_data or "")["client_key"][0])

    page.on("request", note_key)

    def lose_the_answer(route: Route) -> None:
        route.fetch()  # the server gets it and posts it ...
        route.abort("connectionfailed")  # ... and its answer is lost

    page.route("**/rooms/public/messages", lose_the_answer)
    page.goto("/")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.wait_for_function("document.documentElement.classList.contains('js')")
    text = f"sent once only {unique_name('m')}"
    composer(page).fill(text)
    composer(page).press("Enter")
    pending = log(page).locator(".message.pending")
    expect(pending).to_contain_text("Not sent")
    assert someone.client.get("/").text.count(f">{text}<") == 1  # posted, all the same

    page.unroute("**/rooms/public/messages")
    pending.get_by_role("button", name="Retry").click()
    expect(message(page, text)).to_have_count(1)
    expect(pending).to_have_count(0)
    assert len(keys) == 2 and keys[0] == keys[1], keys  # the retry names the same message
    assert re.fullmatch(r"[A-Za-z0-9_-]{8,64}", keys[0]), keys
    page.reload()
    expect(message(page, text)).to_have_count(1)
    assert someone.client.get("/").text.count(f">{text}<") == 1

    composer(page).fill(f"another {unique_name('m')}")  # a new message: a new key
    composer(page).press("Enter")
    expect(log(page).locator(".message.pending")).to_have_count(0)
    assert len(keys) == 3 and keys[2] != keys[0], keys


def test_the_streams_copy_finds_its_pending_one_by_its_key(
    new_page: NewPage, make_person: MakePerson
) -> None:
    """The server's copy shows the text rendered (Markdown, a mention): not the text typed."""
    someone, other = make_person(), make_person()
    page = open_chat(new_page, someone)
    held: list[Route] = []
    page.route("**/rooms/public/messages", lambda route: held.append(route))
    marker = unique_name("m")
    composer(page).fill(f"**bold** and _lean_ for @{other.username} {marker}")
    composer(page).press("Enter")
    pending = log(page).locator(".message.pending")
    expect(pending).to_have_count(1)
    answer = held[0].fetch()  # the server has it: its copy comes down the stream
    expect(pending).to_have_count(0)
    sent = message(page, marker)
    expect(sent).to_have_count(1)
    expect(sent.get_by_role("strong")).to_have_text("bold")
    held[0].fulfill(response=answer)  # and then the POST's own answer
    expect(sent.locator(".actions")).to_have_count(1)
    expect(log(page).get_by_text(marker)).to_have_count(1)  # never shown twice
