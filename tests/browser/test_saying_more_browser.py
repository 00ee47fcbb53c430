"""Saying more in real browsers: formatting, reactions and replies (DESIGN.md "Saying more"),
and a group room's "Room details" (DESIGN.md "Rooms").

Everything is found by accessible names; each person has their own browser context, and what
one does shows on the other's open page without a reload. The keyboard tests press keys only.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Dialog, Locator, Page, expect

from tests.browser.conftest import NewPage
from tests.browser.locators import LAPTOP, PHONE, composer, log, message, open_chat
from tests.browser.seeding import make_room, post, react
from tests.browser.test_keyboard_browser import is_narrow, press_until, to_message
from tests.support import Person, message_id, unique_name

MakePerson = Callable[..., Person]

VIEWPORTS = pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390", "1280"])
OFFERED = ["👍", "❤️", "😂", "🎉", "😮", "😢"]
LIVE_MS = 3_000  # DESIGN.md: every reader's stream gets a reaction within 3 s


def original_of(page: Page, text: str) -> Locator:
    """The message whose own text (not a quote of it) contains `text`."""
    return log(page).locator('[id^="msg-"]').filter(has=page.locator(".body", has_text=text))


def reaction(target: Locator, emoji: str) -> Locator:
    """A message's reaction button: its visible text is the emoji and the count, its name
    says who reacted."""
    return target.get_by_role("button", name=re.compile("^" + re.escape(emoji) + " "))


def palette(page: Page) -> Locator:
    return page.get_by_role("dialog", name="Add reaction")


def reveal(page: Page, target: Locator) -> None:
    """A message's controls on screen: hovered on a laptop, its menu opened on a phone."""
    if is_narrow(page):
        more = target.get_by_role("button", name="Message actions")
        if more.get_attribute("aria-expanded") != "true":
            more.click()
    else:
        target.hover()


def quote_of(target: Locator) -> Locator:
    """The quote above a reply: a link to its original."""
    return target.locator("a.quote")


def replying(page: Page) -> Locator:
    return page.locator("#replying")


def test_a_formatted_message_shows_formatted(new_page: NewPage, make_person: MakePerson) -> None:
    alice_p, bob_p = make_person(), make_person()
    alice, bob = open_chat(new_page, alice_p), open_chat(new_page, bob_p)
    marker = unique_name("fmt")
    text = f"**bold {marker}** and `code {marker}` and [a link](https://example.com/{marker})"
    composer(alice).fill(text)
    composer(alice).press("Enter")
    for page in (alice, bob):
        target = message(page, f"bold {marker}")
        expect(target).to_have_count(1)
        expect(target.get_by_role("strong")).to_have_text(f"bold {marker}")
        expect(target.get_by_role("code")).to_have_text(f"code {marker}")
        link = target.get_by_role("link", name="a link", exact=True)
        expect(link).to_have_attribute("href", f"https://example.com/{marker}")
        expect(target).not_to_contain_text("**")
        expect(target).not_to_contain_text("](")


def test_reactions_show_live_and_yours_are_pressed(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p = make_person(username=unique_name("alice"))
    bob_p = make_person(username=unique_name("bob"))
    text = f"react to this {unique_name('m')}"
    post(bob_p, "/rooms/public", text)
    alice, bob = open_chat(new_page, alice_p), open_chat(new_page, bob_p)
    on_alice, on_bob = message(alice, text), message(bob, text)

    reveal(alice, on_alice)
    add = on_alice.get_by_role("button", name="Add reaction")
    add.click()
    expect(add).to_have_attribute("aria-expanded", "true")
    for emoji in OFFERED:
        expect(palette(alice).get_by_role("button", name=f"React with {emoji}")).to_be_visible()
    palette(alice).get_by_role("button", name="React with 👍").click()
    expect(palette(alice)).to_have_count(0)
    mine = reaction(on_alice, "👍")
    expect(mine).to_have_text("👍 1")
    expect(mine).to_have_attribute("aria-pressed", "true")
    expect(mine).to_have_accessible_name(re.compile(alice_p.username))

    theirs = reaction(on_bob, "👍")
    expect(theirs).to_have_text("👍 1", timeout=LIVE_MS)
    expect(theirs).to_have_attribute("aria-pressed", "false")
    expect(theirs).to_have_accessible_name(re.compile(alice_p.username))

    theirs.click()  # bob adds his
    expect(theirs).to_have_text("👍 2")
    expect(theirs).to_have_attribute("aria-pressed", "true")
    expect(mine).to_have_text("👍 2", timeout=LIVE_MS)
    expect(mine).to_have_attribute("aria-pressed", "true")

    mine.click()  # alice takes hers back
    expect(mine).to_have_text("👍 1")
    expect(mine).to_have_attribute("aria-pressed", "false")
    expect(theirs).to_have_text("👍 1", timeout=LIVE_MS)
    expect(theirs).to_have_attribute("aria-pressed", "true")

    theirs.click()  # and bob his: none left
    expect(on_bob.locator(".reaction")).to_have_count(0)
    expect(on_alice.locator(".reaction")).to_have_count(0, timeout=LIVE_MS)
    for page in (alice, bob):  # never doubled
        ids = log(page).locator(".message").evaluate_all("els => els.map(e => e.id)")
        assert len(ids) == len(set(ids)), ids
    assert alice.url.endswith("/") and bob.url.endswith("/")  # no page was loaded for it


def test_the_palette_offers_what_you_used_lately(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = make_person(), make_person()
    text = f"unicorns {unique_name('m')}"
    msg_id = message_id(post(bob_p, "/rooms/public", text))
    react(bob_p, msg_id, "🦄")
    page = open_chat(new_page, alice_p)
    target = message(page, text)
    expect(palette(page)).to_have_count(0)
    reaction(target, "🦄").click()  # alice joins in
    expect(reaction(target, "🦄")).to_have_text("🦄 2")
    expect(reaction(target, "🦄")).to_have_attribute("aria-pressed", "true")

    page.reload()
    page.wait_for_load_state("load")
    reveal(page, target)
    target.get_by_role("button", name="Add reaction").click()
    expect(palette(page).get_by_role("button", name="React with 🦄")).to_be_visible()
    expect(palette(page).get_by_role("button", name="React with 👍")).to_be_visible()
    page.mouse.click(5, 5)  # a click elsewhere closes it
    expect(palette(page)).to_have_count(0)


def test_a_reply_quotes_its_original_and_leads_back_to_it(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p = make_person(username=unique_name("alice"))
    bob_p = make_person(username=unique_name("bob"))
    original = f"what time is lunch {unique_name('m')}"
    post(alice_p, "/rooms/public", original)
    for n in range(3):
        post(alice_p, "/rooms/public", f"meanwhile {n} {unique_name('m')}")
    alice, bob = open_chat(new_page, alice_p), open_chat(new_page, bob_p)
    before = bob.url

    target = message(bob, original)
    reveal(bob, target)
    target.get_by_role("button", name="Reply").click()
    expect(replying(bob)).to_be_visible()
    expect(replying(bob)).to_contain_text(f"Replying to {alice_p.username}")
    expect(replying(bob)).to_contain_text(original)
    expect(composer(bob)).to_be_focused()
    cancel = bob.get_by_role("button", name="Cancel reply")
    cancel.click()
    expect(replying(bob)).to_be_hidden()
    expect(bob).to_have_url(before)  # neither went anywhere

    reveal(bob, target)
    target.get_by_role("button", name="Reply").click()
    answer = f"at noon {unique_name('m')}"
    composer(bob).fill(answer)
    composer(bob).press("Enter")
    expect(replying(bob)).to_be_hidden()
    original_id = original_of(bob, original).get_attribute("id")
    for page in (bob, alice):
        quote = quote_of(message(page, answer))
        expect(quote).to_contain_text(alice_p.username)
        expect(quote).to_contain_text(original)
        expect(quote).to_have_attribute("href", re.compile(f"#{original_id}$"))

    # Following the quote (the original is on the page): there, focused and highlighted.
    alice_url = alice.url
    quote_of(message(alice, answer)).click()
    expect(original_of(alice, original)).to_be_focused()
    expect(original_of(alice, original)).to_have_class(re.compile(r"\bhighlight\b"))
    expect(original_of(alice, original)).to_be_in_viewport()
    assert alice.url == alice_url


def test_following_a_quote_opens_history_at_its_original(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = make_person(), make_person()
    room = make_room(alice_p, unique_name("Long"), bob_p)
    original = f"the very first plan {unique_name('m')}"
    original_id = message_id(post(alice_p, room, original))
    for n in range(55):  # more than a page
        post(bob_p, room, f"chatter {n}")
    answer = f"back to the first plan {unique_name('m')}"
    post(bob_p, room, answer, reply_to=original_id)
    page = open_chat(new_page, alice_p, room)
    expect(original_of(page, original)).to_have_count(0)

    quote = quote_of(message(page, answer))
    expect(quote).to_contain_text(original)
    quote.click()
    expect(page).to_have_url(re.compile(f"at={original_id}#msg-{original_id}$"))
    target = original_of(page, original)
    expect(target).to_be_in_viewport()
    expect(target).to_be_focused()
    expect(target).to_have_class(re.compile(r"\bhighlight\b"))
    assert target.evaluate("el => el.matches(':target')")


def test_a_quote_shows_its_original_as_it_is_now(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = make_person(), make_person()
    original = f"meet at the station {unique_name('m')}"
    original_id = message_id(post(alice_p, "/rooms/public", original))
    answer = f"which exit {unique_name('m')}"
    post(bob_p, "/rooms/public", answer, reply_to=original_id)
    page = open_chat(new_page, bob_p)
    quote = quote_of(message(page, answer))
    expect(quote).to_contain_text(original)

    changed = f"meet at the bridge {unique_name('m')}"
    edited = alice_p.send("PATCH", f"/messages/{original_id}", {"body": changed})
    assert edited.status_code == 200, edited.text
    expect(quote).to_contain_text(changed)
    expect(quote).not_to_contain_text(original)

    deleted = alice_p.send("DELETE", f"/messages/{original_id}")
    assert deleted.status_code == 200, deleted.text
    expect(quote).to_have_text("message deleted")
    expect(quote).not_to_contain_text(changed)
    expect(quote).not_to_contain_text(alice_p.username)


def test_a_reaction_or_an_edit_is_not_news(new_page: NewPage, make_person: MakePerson) -> None:
    """Only a new message counts as unread: a reaction or an edit to one already read does not."""
    alice_p, bob_p = make_person(), make_person()
    text = f"read already {unique_name('m')}"
    msg_id = message_id(post(alice_p, "/rooms/public", text))
    own_id = message_id(post(bob_p, "/rooms/public", f"bob's own {unique_name('m')}"))
    page = open_chat(new_page, bob_p, f"/dm/{bob_p.username}")  # bob looks at his notes
    badge = page.get_by_role("link", name="Public room").locator(".badge")
    expect(badge).to_have_text("1")  # alice's message
    react(alice_p, own_id, "🎉")
    edited = bob_p.send("PATCH", f"/messages/{own_id}", {"body": "bob's own, changed"})
    assert edited.status_code == 200, edited.text
    react(bob_p, msg_id, "👍")
    news = f"news {unique_name('m')}"
    post(alice_p, "/rooms/public", news)  # comes after the changes on the stream
    expect(badge).to_have_text("2")
    page.wait_for_timeout(300)
    expect(badge).to_have_text("2")


@VIEWPORTS
def test_reacting_and_replying_by_keyboard(
    new_page: NewPage, make_person: MakePerson, viewport: dict[str, int]
) -> None:
    alice_p, bob_p = make_person(), make_person()
    room = make_room(alice_p, unique_name("Keys"), bob_p)
    said = f"shall we meet {unique_name('m')}"
    post(bob_p, room, said)
    page = open_chat(new_page, alice_p, room, viewport)
    if is_narrow(page):
        press_until(page, composer(page), "Tab", limit=12)
    expect(composer(page)).to_be_focused()

    # "Add reaction" (behind "Message actions" on a phone) opens the palette on its first emoji.
    target = to_message(page, said)
    add = target.get_by_role("button", name="Add reaction")
    if is_narrow(page):
        press_until(page, target.get_by_role("button", name="Message actions"), limit=4)
        page.keyboard.press("Enter")
    press_until(page, add, limit=8)
    page.keyboard.press("Enter")
    thumbs = palette(page).get_by_role("button", name="React with 👍")
    heart = palette(page).get_by_role("button", name="React with ❤️")
    expect(thumbs).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(heart).to_be_focused()
    page.keyboard.press("ArrowLeft")
    expect(thumbs).to_be_focused()
    page.keyboard.press("Escape")  # closed, back on "Add reaction"
    expect(palette(page)).to_have_count(0)
    expect(add).to_be_focused()
    expect(add).to_be_visible()

    # Chosen: the reaction shows, pressed, with focus; Enter on it takes it back.
    page.keyboard.press("Enter")
    expect(thumbs).to_be_focused()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    expect(palette(page)).to_have_count(0)
    mine = reaction(target, "❤️")
    expect(mine).to_have_text("❤️ 1")
    expect(mine).to_have_attribute("aria-pressed", "true")
    expect(mine).to_be_focused()
    page.keyboard.press("Enter")
    expect(target.locator(".reaction")).to_have_count(0)
    expect(add).to_be_focused()

    # Reply; Escape in the message box cancels it; Reply again and send.
    reply = target.get_by_role("button", name="Reply")
    press_until(page, reply, "Shift+Tab", limit=3)
    page.keyboard.press("Enter")
    expect(composer(page)).to_be_focused()
    expect(replying(page)).to_contain_text(f"Replying to {bob_p.username}")
    page.keyboard.press("Escape")
    expect(replying(page)).to_be_hidden()
    expect(composer(page)).to_be_focused()
    target = original_of(page, said)
    press_until(page, log(page), "Shift+Tab", limit=3)
    press_until(page, target, "ArrowUp", limit=10)
    if is_narrow(page):
        press_until(page, target.get_by_role("button", name="Message actions"), limit=4)
        page.keyboard.press("Enter")
    press_until(page, reply, limit=8)
    page.keyboard.press("Enter")
    expect(replying(page)).to_be_visible()
    answer = f"tomorrow at ten {unique_name('m')}"
    page.keyboard.type(answer)
    page.keyboard.press("Enter")
    expect(quote_of(message(page, answer))).to_contain_text(said)
    expect(replying(page)).to_be_hidden()
    expect(composer(page)).to_be_focused()

    # The quote, from the reply: Tab reaches it first; Enter shows the original.
    answered = to_message(page, answer)
    page.keyboard.press("Tab")
    expect(quote_of(answered)).to_be_focused()
    page.keyboard.press("Enter")
    original = original_of(page, said)
    expect(original).to_be_focused()
    expect(original).to_have_class(re.compile(r"\bhighlight\b"))
    page.keyboard.press("ArrowDown")  # on to the next message: the highlight goes
    expect(original).not_to_have_class(re.compile(r"\bhighlight\b"))


@VIEWPORTS
def test_room_details_by_keyboard_and_leaving_asks_first(
    new_page: NewPage, make_person: MakePerson, viewport: dict[str, int]
) -> None:
    alice_p, bob_p = make_person(), make_person()
    name = unique_name("Details")
    room = make_room(alice_p, name, bob_p)
    page = open_chat(new_page, bob_p, room, viewport)
    if is_narrow(page):
        press_until(page, composer(page), "Tab", limit=12)
    expect(composer(page)).to_be_focused()
    details = page.get_by_role("button", name="Room details")
    members = page.get_by_role("list", name="Members", exact=True)
    expect(details).to_have_attribute("aria-expanded", "false")
    expect(members).to_be_hidden()

    press_until(page, details, "Shift+Tab", limit=8)  # past the log and the search form
    page.keyboard.press("Enter")
    expect(details).to_have_attribute("aria-expanded", "true")
    expect(members).to_be_visible()
    expect(members).to_contain_text(alice_p.username)
    panel = page.locator("#room-panel")
    assert panel.evaluate("el => el.contains(document.activeElement)")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Add member")).to_be_focused()
    page.keyboard.press("Escape")
    expect(members).to_be_hidden()
    expect(details).to_be_focused()
    expect(details).to_have_attribute("aria-expanded", "false")

    # Leave room asks first: "Cancel" keeps bob in the room, OK takes him out.
    page.keyboard.press("Enter")
    leave = page.get_by_role("button", name="Leave room")
    press_until(page, leave, limit=10)
    asked: list[str] = []

    def answer(accept: bool) -> Callable[[Dialog], None]:
        def handle(dialog: Dialog) -> None:
            asked.append(dialog.message)
            if accept:
                dialog.accept()
            else:
                dialog.dismiss()

        return handle

    page.once("dialog", answer(False))
    page.keyboard.press("Enter")
    expect(leave).to_be_focused()
    assert asked == [f"Leave {name}?"]
    expect(page).to_have_url(re.compile(re.escape(room) + "$"))
    expect(page.locator("#rooms")).to_contain_text(name)

    page.once("dialog", answer(True))
    page.keyboard.press("Enter")
    expect(page).not_to_have_url(re.compile(re.escape(room)))
    expect(page.get_by_role("heading", level=1)).to_have_text("Public room")
    expect(page.locator("#rooms")).not_to_contain_text(name)
    assert asked == [f"Leave {name}?"] * 2


def test_without_javascript_replies_and_reactions_are_forms(
    new_page: NewPage, make_person: MakePerson
) -> None:
    alice_p, bob_p = make_person(), make_person()
    original = f"plain and simple {unique_name('m')}"
    post(alice_p, "/rooms/public", original)
    page = new_page(bob_p, java_script_enabled=False)
    page.goto("/")
    target = message(page, original)

    target.get_by_role("button", name="Add reaction").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add reaction")
    page.get_by_role("button", name="React with 🎉").click()
    target = message(page, original)
    expect(reaction(target, "🎉")).to_have_text("🎉 1")
    expect(reaction(target, "🎉")).to_have_attribute("aria-pressed", "true")
    reaction(target, "🎉").click()  # takes it back
    expect(message(page, original).locator(".reaction")).to_have_count(0)

    message(page, original).get_by_role("button", name="Reply").click()
    expect(replying(page)).to_contain_text(f"Replying to {alice_p.username}")
    answer = f"simple indeed {unique_name('m')}"
    composer(page).fill(answer)
    page.get_by_role("button", name="Send").click()
    expect(quote_of(message(page, answer))).to_contain_text(original)
    expect(replying(page)).to_be_hidden()
