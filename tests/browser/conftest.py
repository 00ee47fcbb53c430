"""Browser fixtures: Debian's Chromium driven by Playwright, one context per simulated user.

Every page's console is watched: a console error, an uncaught exception or a CSP violation
("Refused to ...") fails the test, unless the test says it expects that message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    expect,
    sync_playwright,
)

from tests.support import Person

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000
# Chromium's words for a blocked resource, older ("Refused to ...") and newer.
CSP_VIOLATION = re.compile(r"Refused to |violates the following Content Security Policy")

expect.set_options(timeout=TIMEOUT_MS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is a browser test."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)


class ConsoleLog:
    """Console errors, page errors and CSP violations of every page of one test."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        # The app serves no icon yet: Chromium's request for it fails once per browser, in
        # whichever test comes first. test_pages_have_an_icon reports that on its own.
        self.allowed: list[re.Pattern[str]] = [re.compile(r"404 .*\(\S+/favicon\.ico\)$")]

    def allow(self, pattern: str) -> None:
        """Expect messages matching `pattern` (a regex) in this test: they do not fail it."""
        self.allowed.append(re.compile(pattern))

    def watch(self, page: Page, name: str) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error" or CSP_VIOLATION.search(message.text):
                where = message.location.get("url", "")
                self.problems.append(
                    f"[{name}] console {message.type}: {message.text}"
                    + (f" ({where})" if where else "")
                )

        def on_page_error(error: Exception) -> None:
            self.problems.append(f"[{name}] page error: {error}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)

    def unexpected(self) -> list[str]:
        return [p for p in self.problems if not any(a.search(p) for a in self.allowed)]

    def matching(self, pattern: str) -> list[str]:
        return [p for p in self.problems if re.search(pattern, p)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """After a passing browser test, fail it if any of its pages logged an unexpected error."""
    result = yield
    log = getattr(item, "funcargs", {}).get("console_log")
    if isinstance(log, ConsoleLog) and (problems := log.unexpected()):
        pytest.fail("the browser logged errors:\n" + "\n".join(problems), pytrace=False)
    return result


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def console_log() -> ConsoleLog:
    return ConsoleLog()


NewPage = Callable[..., Page]


@pytest.fixture
def new_page(browser: Browser, base_url: str, console_log: ConsoleLog) -> Iterator[NewPage]:
    """Makes a page in a fresh browser context (one per simulated user).

    `new_page(person)` signs the context in as that Person (their session cookie);
    keyword arguments go to browser.new_context (e.g. java_script_enabled=False).
    """
    contexts: list[BrowserContext] = []

    def make(person: Person | None = None, *, name: str = "", **options: Any) -> Page:
        context = browser.new_context(base_url=base_url, **options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        if person is not None:
            context.add_cookies([{"name": "session", "value": person.cookie, "url": base_url}])
        page = context.new_page()
        console_log.watch(page, name or (person.username if person else f"page{len(contexts)}"))
        return page

    yield make
    for context in contexts:
        context.close()
