"""How the chat is laid out: the edit form, a message's controls, fields on a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import NewPage
from tests.browser.locators import composer, log, message
from tests.browser.seeding import post
from tests.support import Person, unique_name

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
NARROW = 720


def open_chat(
    new_page: NewPage, someone: Person, viewport: dict[str, int], **options: object
) -> Page:
    page = new_page(someone, viewport=viewport, reduced_motion="reduce", **options)
    page.goto("/")
    expect(log(page)).to_be_visible()
    page.wait_for_load_state("load")
    return page


def box(target: Locator) -> dict[str, float]:
    found = target.bounding_box()
    assert found, f"{target} has no box"
    return found


def opacity(target: Locator) -> float:
    return float(target.evaluate("el => getComputedStyle(el.closest('.actions')).opacity"))


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1280", "390"])
def test_edit_form_label_above_box_full_width_buttons_below(
    new_page: NewPage, person: Person, viewport: dict[str, int]
) -> None:
    text = f"to be edited {unique_name('m')}"
    post(person, "/rooms/public", text)
    page = open_chat(new_page, person, viewport)
    own = message(page, text)
    if viewport["width"] < NARROW:
        own.get_by_role("button", name="Message actions").click()
    own.get_by_role("button", name="Edit").click()
    field = page.get_by_label("Edit message")
    expect(field).to_be_focused()
    label = page.locator(f"label[for='{field.get_attribute('id')}']")
    save = page.get_by_role("button", name="Save")
    cancel = page.get_by_role("link", name="Cancel")
    form = box(own.locator("form"))
    label_box, field_box, save_box, cancel_box = box(label), box(field), box(save), box(cancel)
    assert label_box["y"] + label_box["height"] <= field_box["y"] + 1, "label above the box"
    assert field_box["width"] >= form["width"] - 1, "the box as wide as the form"
    assert field_box["y"] + field_box["height"] <= save_box["y"] + 1, "buttons below the box"
    assert abs(save_box["y"] - cancel_box["y"]) <= 1, "Save and Cancel in one row, one height"
    assert save_box["height"] == cancel_box["height"], (save_box, cancel_box)
    assert save_box["x"] + save_box["width"] <= cancel_box["x"], "Save, then Cancel"


def test_controls_show_on_hover_or_focus_on_a_laptop(new_page: NewPage, person: Person) -> None:
    text = f"hover me {unique_name('m')}"
    post(person, "/rooms/public", text)
    page = open_chat(new_page, person, LAPTOP)
    own = message(page, text)
    edit = own.get_by_role("button", name="Edit")
    expect(own.get_by_role("button", name="Message actions")).to_be_hidden()
    composer(page).hover()
    assert opacity(edit) == 0  # out of sight, still in the accessibility tree
    own.hover()
    assert opacity(edit) == 1  # and fully opaque when shown
    composer(page).hover()
    own.focus()
    assert opacity(edit) == 1


def test_fields_on_a_phone_are_16px(new_page: NewPage, person: Person) -> None:
    """Smaller text in a field makes iOS zoom in on focus."""
    page = open_chat(new_page, person, PHONE)
    page.get_by_role("button", name="Show conversations").click()
    sizes = page.locator("input:visible, textarea:visible").evaluate_all(
        "els => els.map(el => [el.id || el.name, parseFloat(getComputedStyle(el).fontSize)])"
    )
    assert sizes and all(size >= 16 for _, size in sizes), sizes
