"""Finding things on the chat page by the contract's accessible names; opening it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playwright.sync_api import Locator, Page, expect

if TYPE_CHECKING:
    from tests.browser.conftest import NewPage
    from tests.support import Person

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def open_chat(
    new_page: NewPage, someone: Person, path: str = "/", viewport: dict[str, int] = LAPTOP
) -> Page:
    """A page of the chat, signed in as `someone`, once its script has started and it has
    loaded (motion reduced)."""
    page = new_page(someone, viewport=viewport, reduced_motion="reduce")
    page.goto(path)
    expect(log(page)).to_be_visible()
    page.wait_for_function("document.documentElement.classList.contains('js')")
    page.wait_for_load_state("load")
    return page


def log(page: Page) -> Locator:
    return page.get_by_role("log")


def message(page: Page, text: str) -> Locator:
    """The message element (id="msg-...") in the open conversation that contains `text`."""
    return log(page).locator('[id^="msg-"]', has_text=text)


def composer(page: Page) -> Locator:
    return page.get_by_label("Message", exact=True)


def open_room_details(page: Page) -> None:
    """A group room's panel (Members, Add member, Mute room, Leave room) open, by its
    "Room details" button."""
    page.wait_for_function("document.documentElement.classList.contains('js')")  # its script
    button = page.get_by_role("button", name="Room details")
    if button.get_attribute("aria-expanded") != "true":
        button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
