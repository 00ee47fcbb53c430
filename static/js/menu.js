// Menus that open and close: the conversations menu (the sidebar, below 720 px, behind
// "Show conversations") and a message's "Message actions" (its Edit and Delete on a phone).

import { on } from "./dom.js";
import { chatRoot, elementOf, NARROW } from "./page.js";

// --- The conversations menu, below 720 px ------------------------------------------------

function menuButton() {
  return document.querySelector(".nav-open");
}

export function menuIsOpen() {
  const root = chatRoot();
  return Boolean(root && root.classList.contains("menu-open"));
}

// Opens the sidebar over the conversation; focus goes into it (its close button by default).
export function openMenu(focusTarget) {
  const root = chatRoot();
  const button = menuButton();
  if (!root || !button) return;
  root.classList.add("menu-open");
  button.setAttribute("aria-expanded", "true");
  const target = focusTarget || document.querySelector("#sidebar .nav-close");
  if (target) target.focus();
}

export function closeMenu(returnFocus) {
  const root = chatRoot();
  const button = menuButton();
  if (!root || !root.classList.contains("menu-open")) return;
  root.classList.remove("menu-open");
  if (!button) return;
  button.setAttribute("aria-expanded", "false");
  if (returnFocus) button.focus();
}

// A tap or click outside the open menu closes it, and does nothing else. (Clicks reach the
// page's handlers in the capture phase, this one first: dom.js.)
on("click", "menu", (evt) => {
  const target = elementOf(evt.target);
  if (!menuIsOpen() || !NARROW.matches || !target) return;
  if (target.closest("#sidebar") || target.closest(".nav-open")) return;
  evt.preventDefault();
  evt.stopPropagation();
  closeMenu(true);
});

on("click", "menu", (evt) => {
  const target = elementOf(evt.target);
  if (!target) return;
  const more = target.closest("#log .more");
  if (target.closest(".nav-open")) {
    if (menuIsOpen()) closeMenu(true);
    else openMenu(null);
  } else if (target.closest(".nav-close")) {
    closeMenu(true);
  } else if (more) {
    toggleMessageMenu(more);
  }
});

// Tabbing out of the open menu closes it (focus has already gone where Tab took it).
on("focusout", "menu", (evt) => {
  const sidebar = document.getElementById("sidebar");
  const next = elementOf(evt.relatedTarget);
  if (!menuIsOpen() || !sidebar || !next || sidebar.contains(next)) return;
  if (sidebar.contains(elementOf(evt.target))) closeMenu(false);
});

NARROW.addEventListener("change", () => {
  if (!NARROW.matches) closeMenu(false);
});

// --- A message's "Message actions" menu (phones) -------------------------------------------

export function setMessageMenu(more, open) {
  more.setAttribute("aria-expanded", open ? "true" : "false");
}

function toggleMessageMenu(more) {
  const open = more.getAttribute("aria-expanded") !== "true";
  document.querySelectorAll('#log .more[aria-expanded="true"]').forEach((other) => {
    if (other !== more) setMessageMenu(other, false);
  });
  setMessageMenu(more, open);
}

// Focus leaving a message closes its menu.
on("focusout", "menu", (evt) => {
  const message = elementOf(evt.target) && evt.target.closest("#log > .message");
  const next = elementOf(evt.relatedTarget);
  if (!message || !next || message.contains(next)) return;
  const more = message.querySelector('.more[aria-expanded="true"]');
  if (more) setMessageMenu(more, false);
});
