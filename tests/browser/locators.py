"""Finding things on the chat page by the contract's accessible names."""

from __future__ import annotations

from playwright.sync_api import Locator, Page


def log(page: Page) -> Locator:
    return page.get_by_role("log")


def message(page: Page, text: str) -> Locator:
    """The message element (id="msg-...") in the open conversation that contains `text`."""
    return log(page).locator('[id^="msg-"]', has_text=text)


def composer(page: Page) -> Locator:
    return page.get_by_label("Message", exact=True)
