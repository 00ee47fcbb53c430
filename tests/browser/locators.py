"""Finding things on the chat page by the contract's accessible names."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect


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
