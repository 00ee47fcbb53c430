"""The chat by keyboard alone, on a phone (390 px) and a laptop (1280 px).

Nothing here clicks: every step is a key press (page.keyboard), and every check says where
focus is. Setting things up (people, rooms, a busy room) goes over HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import NewPage
from tests.browser.locators import LAPTOP, PHONE, composer, log, message, open_chat
from tests.browser.seeding import make_room, post
from tests.support import Person, unique_name

MakePerson = Callable[..., Person]

VIEWPORTS = pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390", "1280"])
NARROW = 720
ROOM_URL = re.compile(r"/rooms/(?!public\b|new\b)[^/?#]+$")


def is_narrow(page: Page) -> bool:
    return bool(page.viewport_size and page.viewport_size["width"] < NARROW)


def is_focused(target: Locator) -> bool:
    return bool(target.evaluate("el => el === document.activeElement"))


def focused_element(page: Page) -> str:
    """What has focus, for failure messages."""
    description: str = page.evaluate(
        """() => {
          const el = document.activeElement;
          if (!el) return "nothing";
          const name = el.getAttribute("aria-label") || el.textContent.trim().slice(0, 40);
          return el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + ' "' + name + '"';
        }"""
    )
    return description


def press_until(
    page: Page, target: Locator, key: str = "Tab", limit: int = 40, passing: str = ""
) -> int:
    """Presses `key` until `target` has focus; how many presses it took, leaving out stops
    inside what the CSS selector `passing` matches (a list whose length is not the page's)."""
    count = 0
    for _ in range(limit):
        page.keyboard.press(key)
        if is_focused(target):
            return count + 1
        if not passing or not page.evaluate(
            "selector => Boolean(document.activeElement?.closest(selector))", passing
        ):
            count += 1
    raise AssertionError(
        f"{key} x{limit} never reached {target}; focus is on {focused_element(page)}"
    )


def open_page(
    new_page: NewPage, someone: Person, viewport: dict[str, int], path: str = "/"
) -> Page:
    return open_chat(new_page, someone, path, viewport)


def menu_button(page: Page) -> Locator:
    return page.get_by_role("button", name="Show conversations")


def to_composer_by_skip_link(page: Page) -> None:
    skip_conversations = page.get_by_role("link", name="Skip to conversations")
    skip_composer = page.get_by_role("link", name="Skip to message box")
    if is_narrow(page):
        page.keyboard.press("Tab")  # nothing has focus on a phone: the first stop is the skip link
        expect(skip_conversations).to_be_focused()
        expect(skip_conversations).to_be_in_viewport()
        page.keyboard.press("Tab")
    else:
        # On a laptop the composer has focus from the start; the skip links are the first stops
        # of the page, before the sidebar.
        expect(composer(page)).to_be_focused()
        # Through the whole sidebar, with the people others left online on the shared server.
        press_until(page, skip_composer, "Shift+Tab", limit=200)
    expect(skip_composer).to_be_focused()
    expect(skip_composer).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(composer(page)).to_be_focused()


def to_message(page: Page, text: str) -> Locator:
    """From the composer into the log, then up with the arrow keys to the message with `text`."""
    press_until(page, log(page), "Shift+Tab", limit=3)  # the log, maybe after "Load older"
    target = message(page, text)
    press_until(page, target, "ArrowUp", limit=10)
    return target


def to_edit_button(page: Page, target: Locator) -> Locator:
    """From the focused message to its Edit button: Tab, through its menu on a phone."""
    edit = target.get_by_role("button", name="Edit")
    page.keyboard.press("Tab")
    if is_narrow(page):
        more = target.get_by_role("button", name="Message actions")
        expect(more).to_be_focused()
        expect(more).to_have_attribute("aria-expanded", "false")
        expect(edit).to_be_hidden()
        page.keyboard.press("Enter")
        expect(more).to_have_attribute("aria-expanded", "true")
        page.keyboard.press("Tab")
    expect(edit).to_be_focused()
    expect(edit).to_be_visible()
    return edit


def open_menu(page: Page) -> None:
    """On a phone: from the conversation to the open sidebar, by its button."""
    button = menu_button(page)
    press_until(page, button, "Shift+Tab", limit=12)
    expect(button).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()


def to_sidebar(page: Page) -> None:
    """Focus into the sidebar from the composer: by the menu on a phone, else Shift+Tab."""
    if is_narrow(page):
        open_menu(page)
    else:
        press_until(page, page.get_by_role("button", name="Sign out"), "Shift+Tab", limit=10)


def arrow_to(page: Page, entry: Locator) -> None:
    """Within a sidebar list (one tab stop): Home, then down to `entry`."""
    page.keyboard.press("Home")
    if not is_focused(entry):
        press_until(page, entry, "ArrowDown", limit=40)


def tab_into_list(page: Page, name: str) -> None:
    """Tab (or Shift+Tab) to the list named `name`, whose one tab stop is its current or first
    entry."""
    entries = page.get_by_role("list", name=name, exact=True).get_by_role("link")
    key = "Tab" if is_narrow(page) else "Shift+Tab"  # a phone's menu opens on its top
    for _ in range(30):
        page.keyboard.press(key)
        if entries.evaluate_all("els => els.includes(document.activeElement)"):
            return
    raise AssertionError(f"never reached the list {name!r}; focus is on {focused_element(page)}")


@VIEWPORTS
def test_everything_by_keyboard(
    new_page: NewPage, make_person: MakePerson, viewport: dict[str, int]
) -> None:
    alice = make_person(username=unique_name("alice"))
    bob = make_person(username=unique_name("bob"))
    room_name = unique_name("Plans")
    make_room(bob, room_name, alice)
    open_page(new_page, bob, LAPTOP)  # bob is online, so in alice's "Online users"
    page = open_page(new_page, alice, viewport)
    page.on("dialog", lambda dialog: dialog.accept())

    # The skip link to the message box; a message sent with Enter.
    to_composer_by_skip_link(page)
    text = f"typo hre {unique_name('m')}"
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    expect(message(page, text)).to_have_count(1)
    expect(composer(page)).to_be_focused()
    expect(composer(page)).to_have_value("")

    # Edit: into the box with the caret at its end; Enter saves; back on the Edit button.
    target = to_message(page, text)
    edit = to_edit_button(page, target)
    page.keyboard.press("Enter")
    box = page.get_by_label("Edit message")
    expect(box).to_be_focused()
    expect(box).to_have_value(text)
    assert box.evaluate("el => el.selectionStart === el.value.length")
    fixed = f"typo here {unique_name('m')}"
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type(fixed)
    page.keyboard.press("Enter")
    target = page.locator(f"#{message(page, fixed).get_attribute('id')}")
    expect(target).to_contain_text("edited")
    expect(page.get_by_label("Edit message")).to_have_count(0)
    edit = target.get_by_role("button", name="Edit")
    expect(edit).to_be_focused()
    expect(edit).to_be_visible()

    # Escape in the edit box cancels: nothing changes, and focus is back on Edit.
    page.keyboard.press("Enter")
    expect(page.get_by_label("Edit message")).to_be_focused()
    page.keyboard.type(" not this")
    page.keyboard.press("Escape")
    expect(page.get_by_label("Edit message")).to_have_count(0)
    expect(target.locator(".body")).to_have_text(fixed)
    expect(edit).to_be_focused()

    # Delete, confirmed; focus goes to the composer.
    delete = target.get_by_role("button", name="Delete")
    page.keyboard.press("Tab")
    expect(delete).to_be_focused()
    page.keyboard.press("Enter")
    expect(target).to_contain_text("message deleted")
    expect(composer(page)).to_be_focused()

    # On a phone the sidebar opens from its button, and Escape closes it again.
    if is_narrow(page):
        open_menu(page)
        expect(page.get_by_role("button", name="Hide conversations")).to_be_focused()
        page.keyboard.press("Escape")
        expect(menu_button(page)).to_be_focused()
        expect(menu_button(page)).to_have_attribute("aria-expanded", "false")
        expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
        page.keyboard.press("Tab")  # back to the composer, past the log
        press_until(page, composer(page), "Tab", limit=4)

    # A direct conversation, from "Online users".
    to_sidebar(page)
    tab_into_list(page, "Online users")
    arrow_to(
        page, page.get_by_role("list", name="Online users").get_by_role("link", name=bob.username)
    )
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/dm/{bob.username}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(bob.username)
    page.wait_for_load_state("load")

    # A group room, from "Rooms".
    if not is_narrow(page):
        expect(composer(page)).to_be_focused()
    to_sidebar(page)
    tab_into_list(page, "Rooms")
    rooms = page.get_by_role("list", name="Rooms", exact=True)
    arrow_to(page, rooms.get_by_role("link", name=room_name))
    page.keyboard.press("Enter")
    expect(page).to_have_url(ROOM_URL)
    expect(page.get_by_role("heading", level=1)).to_have_text(room_name)
    page.wait_for_load_state("load")

    # An away message, then signing out.
    note = f"back at three {unique_name('n')}"
    if not is_narrow(page):
        expect(composer(page)).to_be_focused()
    to_sidebar(page)
    away = page.get_by_label("Away message")
    press_until(page, away, "Shift+Tab" if not is_narrow(page) else "Tab", limit=40)
    page.keyboard.type(note)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Set away")).to_be_focused()
    page.keyboard.press("Enter")
    mine = page.locator(f"#people a.person[data-username='{alice.username}']")
    expect(mine).to_contain_text(note)
    if is_narrow(page) and menu_button(page).get_attribute("aria-expanded") != "true":
        open_menu(page)
    press_until(page, page.get_by_role("button", name="Sign out"), "Tab", limit=10)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/login(\?|$)"))
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


@VIEWPORTS
def test_a_busy_room_is_a_few_tab_stops(
    new_page: NewPage, make_person: MakePerson, viewport: dict[str, int]
) -> None:
    """60 messages of one's own, each with its controls: the sidebar is still close by."""
    alice = make_person()
    marker = unique_name("busy")
    for n in range(60):
        post(alice, "/rooms/public", f"{marker} {n} https://example.com/{n}")
    page = open_page(new_page, alice, viewport)
    public = page.get_by_role("link", name="Public room")
    if is_narrow(page):
        press_until(page, composer(page), "Tab", limit=12)
        presses = press_until(page, menu_button(page), "Shift+Tab", limit=15)
        assert presses <= 7, presses  # the log, and the search form's field, checkbox, button
        page.keyboard.press("Enter")
        presses += press_until(page, public, "Tab", limit=15)
    else:
        expect(composer(page)).to_be_focused()
        # Backwards from the composer the way passes the people online, as many as other tests
        # left signed in on the shared server: they are not the busy room's stops.
        presses = press_until(page, public, "Shift+Tab", limit=200, passing=".people-list")
    assert presses <= 15, f"{presses} presses from the composer to Public room"

    # The log's messages are reached by the arrow keys.
    page.goto("/")
    page.wait_for_load_state("load")
    if is_narrow(page):
        press_until(page, composer(page), "Tab", limit=12)
    expect(composer(page)).to_be_focused()
    press_until(page, log(page), "Shift+Tab", limit=3)
    page.keyboard.press("ArrowUp")
    expect(message(page, f"{marker} 59 ")).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(message(page, f"{marker} 58 ")).to_be_focused()
    page.keyboard.press("End")
    expect(message(page, f"{marker} 59 ")).to_be_focused()


@pytest.mark.parametrize(
    "viewport",
    [PHONE, {"width": 640, "height": 400}, LAPTOP],
    ids=["390", "1280 at 200%", "1280"],
)
def test_skip_to_conversations(new_page: NewPage, person: Person, viewport: dict[str, int]) -> None:
    """The first link of the page goes to the conversations, opening the menu where it hides."""
    page = open_page(new_page, person, viewport)
    skip = page.get_by_role("link", name="Skip to conversations")
    if is_narrow(page):
        page.keyboard.press("Tab")
        expect(skip).to_be_focused()
    else:
        press_until(page, skip, "Shift+Tab", limit=200)  # the people online may be many
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    public = page.get_by_role("link", name="Public room")
    expect(public).to_be_focused()
    expect(public).to_be_in_viewport()
    if is_narrow(page):
        expect(menu_button(page)).to_have_attribute("aria-expanded", "true")
        page.keyboard.press("Escape")
        expect(menu_button(page)).to_be_focused()
        expect(public).to_be_hidden()


def test_without_javascript_the_sidebar_is_reached_on_a_phone(
    new_page: NewPage, person: Person
) -> None:
    page = new_page(person, viewport=PHONE, java_script_enabled=False)
    # A conversation without messages: with some, the page opens at the newest, which has the
    # focus (test_timeline_browser), and the keyboard goes on from there.
    page.goto(f"/dm/{person.username}")
    expect(page.get_by_role("button", name="Show conversations")).to_be_hidden()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to conversations")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to message box")).to_be_focused()
    public = page.get_by_role("link", name="Public room")
    page.keyboard.press("Tab")
    expect(public).to_be_focused()
    expect(public).to_be_in_viewport()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
