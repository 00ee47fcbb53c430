// A group room's "Room details": the button opens and closes the room's panel (its members,
// adding one, muting, leaving); focus goes into the panel as it opens, and Escape closes it
// and goes back to the button. Without script the panel is always shown (noscript.css).

import { on } from "./dom.js";
import { elementOf } from "./page.js";

function button() {
  return document.getElementById("room-details");
}

function panel() {
  return document.getElementById("room-panel");
}

export function panelIsOpen() {
  const el = panel();
  return Boolean(el && !el.hidden);
}

function openPanel() {
  const el = panel();
  const toggle = button();
  if (!el || !toggle) return;
  el.hidden = false;
  toggle.setAttribute("aria-expanded", "true");
  el.setAttribute("tabindex", "-1"); // focus goes to the panel; Tab then reaches its controls
  el.focus();
}

function closePanel(returnFocus) {
  const el = panel();
  const toggle = button();
  if (!el || !toggle || el.hidden) return;
  el.hidden = true;
  toggle.setAttribute("aria-expanded", "false");
  if (returnFocus) toggle.focus();
}

on("click", "roompanel", (evt) => {
  const target = elementOf(evt.target);
  if (!target || !target.closest("#room-details")) return;
  if (panelIsOpen()) closePanel(true);
  else openPanel();
});

on("keydown", "roompanel", (evt) => {
  if (evt.key !== "Escape" || evt.defaultPrevented || !panelIsOpen()) return;
  const target = elementOf(evt.target);
  if (!target || !(target.closest("#room-panel") || target.closest("#room-details"))) return;
  evt.preventDefault();
  closePanel(true);
});
