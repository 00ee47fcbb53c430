"""Accounts in a real browser: register, sign out, sign in, a wrong password, the CSP."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import ConsoleLog, NewPage
from tests.support import PASSWORD, Person, unique_name


def expect_chat_page(page: Page) -> None:
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("link", name="Public room")).to_be_visible()
    expect(page.get_by_role("list", name="Online users")).to_be_attached()
    expect(page.get_by_role("log")).to_be_attached()


def expect_sign_in_page(page: Page) -> None:
    expect(page).to_have_url(re.compile(r"/login(\?|$)"))
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


def sign_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_register_sign_out_and_sign_in(new_page: NewPage) -> None:
    page = new_page()
    username = unique_name("reg")
    page.goto("/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    expect_chat_page(page)
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect_sign_in_page(page)
    page.goto("/")
    expect_sign_in_page(page)

    sign_in(page, username, PASSWORD)
    expect_chat_page(page)
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()


def test_signing_out_sends_the_other_tabs_to_the_sign_in_page(
    new_page: NewPage, person: Person
) -> None:
    first, second = new_page(person), new_page(person)  # one session, two tabs
    for tab in (first, second):
        tab.goto("/")
        expect_chat_page(tab)
    expect(
        second.get_by_role("list", name="Online users").get_by_role("link", name=person.username)
    ).to_be_visible()  # its stream is open
    first.get_by_role("button", name="Sign out").click()
    expect_sign_in_page(first)
    expect_sign_in_page(second)  # told by its own event stream


def test_wrong_password_shows_an_error(
    new_page: NewPage, make_person: Callable[..., Person], console_log: ConsoleLog
) -> None:
    someone = make_person()
    # The 401 answer to the form post is reported as a failed resource load.
    console_log.allow(r"Failed to load resource: .* 401 .*/login")
    page = new_page()
    page.goto("/login")
    sign_in(page, someone.username, "not the password")
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"password", re.IGNORECASE))
    expect_sign_in_page(page)
    expect(page.get_by_label("Username")).to_have_value(someone.username)


def test_csp_header_and_no_inline_script(
    new_page: NewPage, person: Person, console_log: ConsoleLog
) -> None:
    inline_refused = r"(Refused to execute inline script|Executing inline script violates)"
    console_log.allow(inline_refused)
    page = new_page(person)
    response = page.goto("/")
    assert response is not None and response.ok
    csp = response.headers.get("content-security-policy", "")
    script_src = next((d.strip() for d in csp.split(";") if d.strip().startswith("script-src")), "")
    assert script_src, csp
    assert "'self'" in script_src.split()
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    expect_chat_page(page)

    # The external scripts ran under the policy; the page itself has no inline script.
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("document.documentElement.classList.contains('js')")  # the page script ran
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0

    # An injected inline script is refused by the policy.
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.__inlineRan = true;";
            document.body.appendChild(script);
        }"""
    )
    assert page.evaluate("typeof window.__inlineRan") == "undefined"
    assert console_log.matching(inline_refused), console_log.problems


def test_pages_have_an_icon(new_page: NewPage, person: Person) -> None:
    """Browsers ask every site for an icon; a 404 there is an error in every page's console."""
    page = new_page(person)
    page.goto("/")
    expect_chat_page(page)
    icons = page.locator('link[rel~="icon"]')
    href = icons.first.get_attribute("href") if icons.count() else "/favicon.ico"
    assert href
    if href.startswith("data:"):
        return
    response = page.request.get(href)
    assert response.ok, f"the page's icon {href} answers {response.status}"
