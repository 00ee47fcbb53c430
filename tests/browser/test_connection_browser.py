"""The page while its event stream is down: it says so, and stops saying so once it is back.

These tests have their own app process, which they stop and start again on the same port and
database: every page and person of this module is on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ConsoleLog, NewPage
from tests.browser.locators import message
from tests.support import AppServer, Person, unique_name

MakePerson = Callable[..., Person]

NOTICE_MS = 5_000  # "Reconnecting" shows within this of the stream dropping
BACK_MS = 20_000  # and goes within this of the server's return


@pytest.fixture(scope="module")
def restartable_server(
    mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    with AppServer(mongo_uri, data_dir=tmp_path_factory.mktemp("restartable")) as server:
        yield server


@pytest.fixture
def base_url(restartable_server: AppServer) -> Iterator[str]:
    yield restartable_server.url
    if restartable_server.process is None:  # a test that failed with the server stopped
        restartable_server.start()


def open_chat(new_page: NewPage, someone: Person) -> Page:
    page = new_page(someone)
    page.goto("/")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return page


def test_a_dropped_stream_says_reconnecting_until_it_is_back(
    new_page: NewPage,
    make_person: MakePerson,
    restartable_server: AppServer,
    console_log: ConsoleLog,
) -> None:
    # While the server is away, the browser's attempts to reach it fail, and htmx logs the
    # extension's sseError events.
    console_log.allow(r"net::ERR_CONNECTION_REFUSED")
    console_log.allow(r"console error: \[object Event\] \(\S+/htmx\.min\.js\)$")
    alice_p, bob_p = make_person(username=unique_name("alice")), make_person()
    alice = open_chat(new_page, alice_p)
    me = alice.locator(".chat").get_attribute("data-me-id")
    own_dot = alice.locator(f"#person-{me} .dot")
    notice = alice.get_by_role("status").filter(has_text="Reconnecting")
    expect(own_dot).to_be_visible()
    expect(notice).to_have_count(0)

    restartable_server.stop()
    expect(notice).to_be_visible(timeout=NOTICE_MS)
    expect(notice).to_have_text("Reconnecting…")
    expect(own_dot).to_have_attribute("data-connection", "reconnecting")

    restartable_server.start()  # the same port and database
    expect(notice).to_have_count(0, timeout=BACK_MS)
    expect(own_dot).not_to_have_attribute("data-connection", re.compile(".*"))
    text = f"back again {unique_name('m')}"
    assert bob_p.post_public(text).status_code == 201
    expect(message(alice, text)).to_have_count(1)  # live again
