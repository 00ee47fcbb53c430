"""Every page checked by axe-core (4.14, from npm), in light and dark, on a laptop and a phone.

axe runs inside the page: the context bypasses the app's CSP so that its script can be added.
Besides each page as it loads, the states a person gets to are checked too: the phone's
conversation menu open, a message's controls revealed (hover on a laptop, its menu on a
phone), a message being edited in place, the "Add reaction" palette open, the composer
answering a message, a group room's "Room details" open, the composer's list of people to
mention open, search results shown, and the notice naming someone mentioned who is not in the
room. The public room shows a formatted message with reactions, a reply to it and a mention of
the person signed in, who has an unread mention (its "@") elsewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.browser.conftest import ConsoleLog, NewPage
from tests.browser.locators import log, message
from tests.browser.seeding import make_room, post, react
from tests.support import ROOT, AppServer, Person, message_id, unique_name

AXE = ROOT / "node_modules" / "axe-core" / "axe.js"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
NARROW = 720  # below this width the sidebar hides behind "Show conversations"

SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL)
NOSCRIPT = re.compile(r"</?noscript>")

RUN_AXE = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary})),
  }));
}"""


@dataclass
class Scene:
    """People, conversations and messages that every page of the check shows."""

    alice: Person  # signed in on every page: owns a group room and has messages
    bob: Person
    room_url: str  # alice's private room, bob a member
    open_room_url: str  # carol's open room, which alice has not joined
    own_message_id: str  # alice's, in the public room
    outsider: str  # carol's name: not in alice's room


@pytest.fixture(scope="module")
def scene(app_server: AppServer) -> Iterator[Scene]:
    url = app_server.url
    alice = Person.register(url, unique_name("alice"))
    bob = Person.register(url, unique_name("bob"))
    carol = Person.register(url, unique_name("carol"))
    try:
        own = post(alice, "/rooms/public", f"morning all, see https://example.com/{unique_name()}")
        post(bob, "/rooms/public", "morning alice")
        post(alice, "/rooms/public", "a second one, right after")
        formatted = post(
            alice,
            "/rooms/public",
            "**Trip** plan, `draft`:\n```\nday 1: train\nday 2: hike\n```\n"
            "> bring boots\n\n- maps\n- snacks\n\nsee [the route](https://example.com/route)",
        )
        react(bob, message_id(formatted), "👍")
        react(alice, message_id(formatted), "🎉")
        post(bob, "/rooms/public", "count me in", reply_to=message_id(formatted))
        post(bob, "/rooms/public", f"@{alice.username} morning, see the plan")
        post(carol, f"/dm/{alice.username}", f"@{alice.username} are you in?")  # never opened
        post(alice, f"/dm/{bob.username}", "lunch at noon?")
        post(bob, f"/dm/{alice.username}", "yes, the usual place")
        room = make_room(alice, "Plans", bob, topic="Weekend trip")
        post(alice, room, "train or car?")
        post(bob, room, "train")
        response = carol.send(
            "POST", "/rooms", {"name": "Open chat", "topic": "Anyone", "open": "on"}
        )
        assert response.status_code == 201, response.text
        yield Scene(alice, bob, room, response.headers["location"], message_id(own), carol.username)
    finally:
        for someone in (alice, bob, carol):
            someone.close()


def without_javascript(page: Page) -> None:
    """The page's documents as a browser without JavaScript shows them: no script of theirs,
    and what is inside <noscript> in force. (axe itself needs scripts to run: a context with
    JavaScript off cannot run it.)"""

    def strip(route: Route) -> None:
        if route.request.resource_type != "document":
            route.continue_()
            return
        response = route.fetch()
        route.fulfill(response=response, body=NOSCRIPT.sub("", SCRIPT.sub("", response.text())))

    page.route("**/*", strip)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (its script added once per document)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return violations


def describe(where: str, violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{where}: {v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"]:
            summary = " ".join(node["summary"].split())
            lines.append(f"    {node['target']}\n        {summary}")
    return "\n".join(lines)


Step = Callable[[Page], None]


@dataclass
class Check:
    name: str
    path: str
    signed_in: bool = True
    javascript: bool = True
    steps: list[tuple[str, Step]] = field(default_factory=list)


def _ready(page: Page, javascript: bool) -> None:
    """The page has loaded and, on a chat page with JavaScript, its script has run."""
    page.wait_for_load_state("load")
    if javascript and page.locator(".chat").count():
        page.wait_for_function("document.documentElement.classList.contains('js')")


def fail_sign_in(page: Page) -> None:
    page.get_by_label("Username").fill(unique_name("nobody"))
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()


def open_menu(page: Page) -> None:
    button = page.get_by_role("button", name="Show conversations")
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")


def reveal_controls(page: Page) -> None:
    """A message of one's own with its controls showing: hovered, or its menu open."""
    own = message(page, "a second one")
    if page.viewport_size and page.viewport_size["width"] < NARROW:
        own.get_by_role("button", name="Message actions").click()
    else:
        own.hover()
    expect(own.get_by_role("button", name="Edit")).to_be_visible()


def formatted(page: Page) -> Locator:
    return log(page).locator('[id^="msg-"]').filter(has=page.locator(".body", has_text="Trip"))


def open_palette(page: Page) -> None:
    """The formatted message's "Add reaction" palette open."""
    target = formatted(page)
    if page.viewport_size and page.viewport_size["width"] < NARROW:
        target.get_by_role("button", name="Message actions").click()
    else:
        target.hover()
    target.get_by_role("button", name="Add reaction").click()
    expect(page.get_by_role("dialog", name="Add reaction")).to_be_visible()


def start_reply(page: Page) -> None:
    """The composer answering the formatted message (the palette closed by the click)."""
    target = formatted(page)
    more = target.get_by_role("button", name="Message actions")
    if page.viewport_size and page.viewport_size["width"] < NARROW:
        if more.get_attribute("aria-expanded") != "true":
            more.click()
    else:
        target.hover()
    target.get_by_role("button", name="Reply").click()
    expect(page.get_by_role("dialog", name="Add reaction")).to_have_count(0)
    expect(page.get_by_text("Replying to")).to_be_visible()


def open_details(page: Page) -> None:
    page.get_by_role("button", name="Room details").click()
    expect(page.get_by_role("list", name="Members", exact=True)).to_be_visible()


def open_mention_list(page: Page) -> None:
    """The composer's list of people to mention, open on the people whose names start "bob"."""
    box = page.get_by_label("Message", exact=True)
    box.click()
    box.press_sequentially("see @bob")
    expect(page.get_by_role("listbox", name="People to mention")).to_be_visible()


def show_search_results(page: Page) -> None:
    field = page.get_by_role("searchbox", name="Search messages")
    field.fill("morning")
    field.press("Enter")
    found = page.get_by_role("region", name="Search results").locator("a.result")
    expect(found.first).to_be_visible()


def mention_outsider(scene: Scene) -> Step:
    """A message mentioning someone who is not in the room: the notice, and its "Add"."""

    def step(page: Page) -> None:
        box = page.get_by_label("Message", exact=True)
        box.fill(f"ask @{scene.outsider}")
        box.press("Enter")
        expect(page.locator("#mention-notice").get_by_role("button", name="Add")).to_be_visible()

    return step


def edit_in_place(page: Page) -> None:
    reveal_controls(page)
    message(page, "a second one").get_by_role("button", name="Edit").click()
    expect(page.get_by_label("Edit message")).to_be_focused()


@pytest.mark.timeout(300)  # some 20 pages and states, each loaded and checked
@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1280x800", "390x844"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_axe_violations_on_any_page(
    new_page: NewPage,
    scene: Scene,
    console_log: ConsoleLog,
    scheme: str,
    viewport: dict[str, int],
) -> None:
    # The error page and the failed sign-in answer 404 and 401, which Chromium reports.
    console_log.allow(r"Failed to load resource: .* (404|401) ")
    options: dict[str, Any] = {
        "color_scheme": scheme,
        "viewport": viewport,
        "bypass_csp": True,
        "reduced_motion": "reduce",
    }
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make setup)")
    checks = [
        Check("register", "/register", signed_in=False),
        Check("sign in", "/login", signed_in=False, steps=[("wrong password", fail_sign_in)]),
        Check("public room", "/", steps=[("controls shown", reveal_controls)]),
        Check("public room", "/", steps=[("editing in place", edit_in_place)]),
        Check(
            "public room", "/", steps=[("palette open", open_palette), ("replying", start_reply)]
        ),
        Check("direct conversation", f"/dm/{scene.bob.username}"),
        Check("group room, its owner", scene.room_url, steps=[("details open", open_details)]),
        Check(
            "public room",
            "/",
            steps=[
                ("mention list open", open_mention_list),
                ("search results", show_search_results),
            ],
        ),
        Check("group room", scene.room_url, steps=[("mention notice", mention_outsider(scene))]),
        Check("search page", "/search?q=morning"),
        Check("open room, not joined", scene.open_room_url),
        Check("new room", "/rooms/new"),
        Check("browse rooms", "/rooms"),
        Check("error page", "/rooms/000000000000000000000000"),
        Check("edit page", f"/messages/{scene.own_message_id}/edit", javascript=False),
        Check("public room", "/", javascript=False),
        Check("group room, its owner", scene.room_url, javascript=False),
    ]
    if viewport["width"] < NARROW:
        checks.append(Check("public room", "/", steps=[("menu open", open_menu)]))
    report: list[str] = []
    checked = 0
    for check in checks:
        page = new_page(scene.alice if check.signed_in else None, name=check.name, **options)
        if not check.javascript:
            without_javascript(page)
        page.goto(check.path)
        _ready(page, check.javascript)
        where = (
            f"[{scheme} {viewport['width']}x{viewport['height']}] {check.name} ({check.path}"
            + ("" if check.javascript else ", without JavaScript")
            + ")"
        )
        if violations := axe_violations(page):
            report.append(describe(where, violations))
        checked += 1
        for state, step in check.steps:
            step(page)
            if violations := axe_violations(page):
                report.append(describe(f"{where}, {state}", violations))
            checked += 1
        page.context.close()
    assert not report, f"axe-core found violations ({len(report)} of {checked} checks):\n" + (
        "\n".join(report)
    )


def test_axe_sees_a_violation(new_page: NewPage, scene: Scene) -> None:
    """The check itself works: a page made inaccessible on purpose has violations."""
    page = new_page(scene.alice, bypass_csp=True)
    page.goto("/")
    _ready(page, True)
    page.evaluate("document.querySelector('main').append(document.createElement('img'))")
    ids = [v["id"] for v in axe_violations(page)]
    assert "image-alt" in ids, json.dumps(ids)


# Records, for each message put into the log, whether the log was aria-busy at that moment.
RECORD_ADDITIONS = """() => {
  window.additions = [];
  const el = document.getElementById("log");
  const note = (node) => {
    if (node.nodeType === 1 && node.matches(".message")) {
      window.additions.push({text: node.querySelector(".body").textContent, busy: el.ariaBusy});
    }
  };
  new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach(note)))
    .observe(el, {childList: true});
}"""


def test_the_log_announces_new_messages_only(new_page: NewPage, make_person: Any) -> None:
    """Older messages (Load older) and messages changed in place go in while the log is
    aria-busy; a new message does not."""
    alice, bob = make_person(), make_person()
    room = make_room(alice, unique_name("Busy"), bob)
    marker = unique_name("old")
    for n in range(55):
        post(bob, room, f"{marker} [{n}]")
    page = new_page(alice, reduced_motion="reduce")
    page.goto(room)
    expect(message(page, f"{marker} [54]")).to_be_visible()
    page.wait_for_load_state("load")
    page.evaluate(RECORD_ADDITIONS)
    older = page.get_by_role("link", name="Load older")
    expect(log(page).locator(".message")).to_have_count(50)

    # By keyboard: from the log, Tab to "Load older" (which, focused, waits for Enter rather
    # than loading as the log scrolls to it), Enter.
    log(page).focus()
    page.keyboard.press("Tab")
    expect(older).to_be_focused()
    expect(log(page).locator(".message")).to_have_count(50)
    page.keyboard.press("Enter")
    expect(log(page).locator(".message")).to_have_count(55)
    expect(message(page, f"{marker} [4]")).to_be_focused()  # the newest of the older ones
    additions = page.evaluate("window.additions")
    assert len(additions) == 5, additions
    assert all(a["busy"] == "true" for a in additions), additions
    expect(log(page)).not_to_have_attribute("aria-busy", "true")

    news = f"new {unique_name('m')}"
    fragment = post(bob, room, news)
    expect(message(page, news)).to_be_visible()
    changed = f"changed {unique_name('m')}"
    edited = bob.send("PATCH", f"/messages/{message_id(fragment)}", {"body": changed})
    assert edited.status_code == 200, edited.text
    expect(message(page, changed)).to_contain_text("edited")
    additions = page.evaluate("window.additions")[5:]
    assert [a["text"] for a in additions] == [news, changed], additions
    assert additions[0]["busy"] is None, additions  # news: announced
    assert additions[1]["busy"] == "true", additions  # a change in place: not
