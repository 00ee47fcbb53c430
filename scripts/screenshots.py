"""Screenshots of the main screens, on a laptop (1280x800) and a phone (390x844), into docs/.

    .venv/bin/python scripts/screenshots.py [--out docs]

Starts the app on a fresh embedded database in a temporary folder (as the tests do), makes a
few people, conversations and messages, and photographs the pages with Debian's Chromium.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.seeding import make_room, post, react  # noqa: E402 (after the path is set)
from tests.support import AppServer, Person, message_id  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def _seed(url: str) -> tuple[list[Person], str]:
    """Ana (who is photographed), Ben and Chloe, talking; returns them and Ana's room's path."""
    ana, ben, chloe = (Person.register(url, name) for name in ("ana", "ben", "chloe"))
    public = "/rooms/public"
    post(ben, public, "Morning! Is anyone around for lunch at noon?")
    post(ana, public, "Yes, count me in. The usual place?")
    post(chloe, public, "I'll be ten minutes late, save me a seat.")
    post(ben, public, "Today's menu: https://example.com/menu")
    post(ana, public, "Looks good, see you there.")
    post(ben, f"/dm/{ana.username}", "Do you have five minutes after lunch?")
    post(ana, f"/dm/{ana.username}", "Note to self: book the room for Friday")
    room = make_room(ana, "Design", ben, chloe, topic="Colours, type, layout")
    post(chloe, room, "The new palette is up on the board.")
    post(ana, room, "Great, I'll try the dark variant.")
    review = post(
        chloe,
        room,
        "**Colour review** on Friday: the `palette.css` draft is\n"
        "```\n--accent: #2357c6;\n--danger: #b42318;\n```\n"
        "Notes are on [the board](https://example.com/board).",
    )
    react(ana, message_id(review), "👍")
    react(ben, message_id(review), "👍")
    react(ben, message_id(review), "🎉")
    post(ben, room, "I'll bring the printed swatches.", reply_to=message_id(review))
    ben.send("POST", "/away", {"away_message": "In a meeting until 3"})
    return [ana, ben, chloe], room


@contextmanager
def _page(browser: Browser, base_url: str, someone: Person, **options: Any) -> Iterator[Page]:
    context = browser.new_context(base_url=base_url, reduced_motion="reduce", **options)
    context.add_cookies([{"name": "session", "value": someone.cookie, "url": base_url}])
    try:
        yield context.new_page()
    finally:
        context.close()


def _open(page: Page, path: str) -> None:
    page.goto(path)
    expect(page.get_by_role("log")).to_be_visible()
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)  # the event stream connects; people show as online


def _own_message(page: Page, text: str) -> Locator:
    return page.get_by_role("log").locator(".message", has_text=text)


def shoot(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="chat-screens-") as data:
        app = AppServer("", data_dir=Path(data))
        with app, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            people, room = _seed(app.url)
            ana = people[0]
            # Ben and Chloe keep a tab open, so that they show as online (Ben as away).
            others = [browser.new_context(base_url=app.url) for _ in people[1:]]
            for context, someone in zip(others, people[1:], strict=True):
                context.add_cookies([{"name": "session", "value": someone.cookie, "url": app.url}])
                _open(context.new_page(), "/")

            def save(page: Page, name: str) -> None:
                path = out / f"{name}.png"
                page.screenshot(path=str(path))
                shots.append(path)

            with _page(browser, app.url, ana, viewport=LAPTOP) as page:
                _open(page, "/")
                _own_message(page, "see you there").hover()
                save(page, "chat-1280")
                _own_message(page, "see you there").get_by_role("button", name="Edit").click()
                expect(page.get_by_label("Edit message")).to_be_focused()
                save(page, "edit-1280")
            with _page(browser, app.url, ana, viewport=LAPTOP, color_scheme="light") as page:
                _open(page, room)
                save(page, "saying-more-1280")
            with _page(browser, app.url, ana, viewport=LAPTOP, color_scheme="dark") as page:
                _open(page, room)
                save(page, "room-dark-1280")
            with _page(browser, app.url, ana, viewport=PHONE, is_mobile=True) as page:
                _open(page, "/")
                own = _own_message(page, "see you there")
                own.get_by_role("button", name="Message actions").click()
                expect(own.get_by_role("button", name="Edit")).to_be_visible()
                save(page, "chat-390")
                page.get_by_role("button", name="Show conversations").click()
                expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
                save(page, "menu-390")
            for context in others:
                context.close()
            browser.close()
            for someone in people:
                someone.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the PNGs")
    for path in shoot(parser.parse_args().out):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
