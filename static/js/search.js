// Searching messages. "/" (when not typing in a field) and Ctrl+K (⌘K) go to the search
// field; htmx puts the results in place of #search-results, a list of plain links that Tab
// goes along; a status line says how many came. On the chat page, Escape in the field or in
// the results hides them and takes focus back to where it was before the search. A result
// that is on the page already is shown there (as a quote's original is: replies.js) instead
// of opening the conversation at it (GET /messages/{id}, which loads the history around it).

import { on } from "./dom.js";
import { chatRoot, log, composerField, elementOf } from "./page.js";
import { showMessage } from "./replies.js";

const LINKED = /#msg-([A-Za-z0-9]+)$/;
const STATUS_ID = "search-status";
const TEXT_FIELDS = "textarea, select, input:not([type=checkbox]):not([type=radio])" +
  ":not([type=button]):not([type=submit]):not([type=reset])";
let cameFrom = null; // what had focus before it went into the search
let olderHadFocus = false; // "Older results" was pressed from the keyboard

function searchField() {
  return document.getElementById("search-messages");
}

function inSearch(el) {
  return Boolean(el && el.closest(".search-form, #search-results"));
}

function isTyping(el) {
  return Boolean(el && (el.isContentEditable || el.matches(TEXT_FIELDS)));
}

// Start-up: the status line that tells how many results came (a live region there from the
// start: one added with its news is not read).
export function startSearch() {
  const form = document.querySelector(".search-form");
  if (!form || document.getElementById(STATUS_ID)) return;
  const status = document.createElement("p");
  status.id = STATUS_ID;
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  form.appendChild(status);
}

// Said afresh each time, even in the same words as the last search's.
function say(text) {
  const status = document.getElementById(STATUS_ID);
  if (!status) return;
  status.textContent = "";
  window.setTimeout(() => { status.textContent = text; }, 50);
}

function goToSearch() {
  const field = searchField();
  if (!field) return;
  field.focus();
  field.select();
}

// The results hidden; focus back where it came from (else the composer, or the log).
function leaveSearch() {
  const panel = document.getElementById("search-results");
  if (panel) panel.hidden = true;
  const back = cameFrom && cameFrom.isConnected && !inSearch(cameFrom) ? cameFrom : null;
  const target = back || composerField() || log();
  cameFrom = null;
  if (target) target.focus();
}

on("focusin", "search", (evt) => {
  const from = elementOf(evt.relatedTarget);
  if (inSearch(elementOf(evt.target)) && !inSearch(from)) cameFrom = from;
});

on("keydown", "search", (evt) => {
  if (evt.defaultPrevented || evt.isComposing || !searchField()) return;
  const target = elementOf(evt.target);
  const command = (evt.ctrlKey || evt.metaKey) && !evt.altKey && !evt.shiftKey;
  if (command && evt.key.toLowerCase() === "k") {
    evt.preventDefault(); // (the browser's own search bar otherwise)
    goToSearch();
  } else if (evt.key === "/" && !command && !evt.altKey && !isTyping(target)) {
    evt.preventDefault();
    goToSearch();
  } else if (evt.key === "Escape" && chatRoot() && inSearch(target)) {
    evt.preventDefault(); // (a search field would clear itself)
    leaveSearch();
  }
});

// A result in the conversation on the page, its message there: shown, not opened again.
on("click", "search", (evt) => {
  const target = elementOf(evt.target);
  const link = target && target.closest("#search-results a.result");
  if (!link || evt.button !== 0 || evt.ctrlKey || evt.metaKey || evt.shiftKey || evt.altKey) return;
  const match = LINKED.exec(link.getAttribute("href") || "");
  const el = log();
  const message = match && document.getElementById("msg-" + match[1]);
  if (!el || !message || !el.contains(message)) return; // the link opens it at the message
  evt.preventDefault();
  showMessage(message);
});

on("htmx:beforeRequest", "search", (evt) => {
  const elt = elementOf(evt.detail.elt);
  if (elt && elt.matches(".older-results")) olderHadFocus = document.activeElement === elt;
});

// Results came (a search, or "Older results", whose link they replace: focus goes to the
// first of them).
on("htmx:load", "search", (evt) => {
  const panel = elementOf(evt.detail.elt);
  if (!panel || panel.id !== "search-results") return;
  const found = panel.querySelectorAll("a.result").length;
  const more = panel.querySelector(".older-results") ? ", and older ones" : "";
  say(found ? found + (found === 1 ? " result" : " results") + more : "Nothing found");
  const first = panel.querySelector("a.result");
  if (olderHadFocus && first) first.focus();
  olderHadFocus = false;
});
