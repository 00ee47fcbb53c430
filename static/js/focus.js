// Where focus goes when the page itself changes what holds it: on opening the page, after a
// message's own actions (Edit, Save, Cancel, Delete), and when the stream replaces a message
// or a sidebar entry that has focus.

import { on } from "./dom.js";
import { log, composerField, elementOf, isEditing, FOCUSABLE } from "./page.js";
import { setMessageMenu } from "./menu.js";

// --- Opening the page ------------------------------------------------------------------
// Without script the newest message takes focus to bring itself into view (autofocus);
// with it, the page scrolls by itself and the keyboard starts at the top, as on any page.

let personActed = false; // a key or a pointer since the page loaded: focus is theirs then

on("keydown", "focus", () => { personActed = true; });
on("pointerdown", "focus", () => { personActed = true; });
on("focusin", "focus", (evt) => undoAutofocus(evt.target));

export function undoPageAutofocus() {
  undoAutofocus(document.activeElement);
}

function undoAutofocus(focused) {
  if (!focused || !focused.matches || !focused.matches(".message[autofocus]")) return;
  focused.removeAttribute("autofocus");
  if (personActed) return; // they moved here themselves
  const start = document.body; // where Tab then starts: the top of the page
  start.setAttribute("tabindex", "-1");
  start.focus({ preventScroll: true });
  start.removeAttribute("tabindex");
  start.blur();
}

// --- After a message's own actions -------------------------------------------------------
// Edit: into the box, the caret at the end. Save or Cancel (or Escape in the box): back to
// that message's Edit button. Delete: the composer.
//
// Focus goes to the new copy once htmx has settled it, never as it is swapped in: htmx
// processes new content only when it settles (20 ms later), and until then its forms and
// links are plain ones. A key pressed on them in between (Enter on Delete, Escape for
// Cancel) sent the no-script form or followed the link: a whole new page, with focus
// nowhere the person expected. The stream may bring the server's copy first (between the
// swap and the settle, or for a deletion before the answer): that copy, placed and settled
// at once, then takes the focus instead.

let action = null; // {id, requester, from}: a request of ours changing the message `id`

on("htmx:beforeRequest", "focus", (evt) => {
  const requester = elementOf(evt.target);
  const message = requester && requester.closest("#log > .message");
  if (message && message.id) action = { id: message.id, requester, from: message };
});

on("htmx:afterSettle", "focus", (evt) => {
  const settled = elementOf(evt.target);
  if (action && settled && settled.id === action.id) focusAfterAction(settled);
});

// The request is over. If nothing replaced the message (it failed, or brought nothing), no
// copy will come for it: focus stays where it is.
on("htmx:afterRequest", "focus", (evt) => {
  const config = evt.detail.requestConfig; // (detail.elt is whatever the event was fired on)
  if (!action || !config || config.elt !== action.requester) return;
  if (!evt.detail.successful || document.getElementById(action.id) === action.from) action = null;
});

// `message` may be the copy that the action was waiting for: once it is the one in the log,
// settled, and no longer the message the action started from, focus goes into it.
function focusAfterAction(message) {
  const el = log();
  if (!message.isConnected || message === action.from || !el || !el.contains(message)) return;
  if (message.classList.contains("htmx-settling") || message.classList.contains("htmx-added")) return;
  const { requester } = action;
  action = null;
  if (isEditing(message)) {
    focusEditBox(message);
  } else if (requester.matches("[hx-delete]")) {
    const field = composerField();
    if (field) field.focus();
  } else if (requester.matches(".cancel, .edit-form")) {
    focusEditButton(message);
  }
}

function focusEditBox(editing) {
  const box = editing.querySelector("textarea");
  if (!box || box === document.activeElement) return; // in it already: the caret is theirs
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
}

function focusEditButton(message) {
  focusMessageControl(message, '.actions form[method="get"] button');
}

// Focus on one of a message's own controls (`selector`), its menu opened first on a phone;
// the message itself if it has none.
export function focusMessageControl(message, selector) {
  const control = message.querySelector(selector);
  if (!control) {
    message.focus();
    return;
  }
  const more = message.querySelector(".more");
  if (more && more.parentElement.contains(control) && window.getComputedStyle(more).display !== "none") {
    setMessageMenu(more, true);
  }
  control.focus();
}

// --- Focus stays put when the stream replaces what holds it ------------------------------
// An event replaces whole entries (a message edited or reacted to, or one's own coming back;
// a person's or a room's sidebar entry): focus inside one would fall to the page's body. It
// goes to the same control of the new copy, with the message's menu as open as it was. A
// reaction is found by its emoji (others may come or go before it); one that is gone leaves
// focus on "Add reaction", or the message.

const HOLDERS = "#log > .message, #people li[id]";

// Called by stream.js before it places an event; what it returns puts focus back after.
export function holdFocus() {
  const spot = focusSpot();
  return () => {
    if (spot) restoreFocus(spot);
    if (action) { // the event may have brought the copy an action of ours waits for
      const message = document.getElementById(action.id);
      if (message) focusAfterAction(message);
    }
  };
}

function focusSpot() {
  const active = document.activeElement;
  const holder = active && active !== document.body ? active.closest(HOLDERS) : null;
  if (!holder || !holder.id) return null;
  const more = holder.querySelector(".more");
  return {
    holder,
    index: [holder].concat(Array.from(holder.querySelectorAll(FOCUSABLE))).indexOf(active),
    emoji: active.matches(".reaction[data-emoji]") ? active.dataset.emoji : null,
    menuOpen: Boolean(more && more.getAttribute("aria-expanded") === "true"),
  };
}

function reactionIn(holder, emoji) {
  const same = Array.from(holder.querySelectorAll(".reaction[data-emoji]"))
    .find((button) => button.dataset.emoji === emoji);
  const add = holder.querySelector(".add-reaction");
  return same || (add && add.getClientRects().length ? add : holder);
}

function restoreFocus(spot) {
  const holder = document.getElementById(spot.holder.id);
  if (spot.holder.isConnected || !holder || holder.contains(document.activeElement)) return;
  const more = holder.querySelector(".more");
  if (spot.menuOpen && more) setMessageMenu(more, true);
  const controls = [holder].concat(Array.from(holder.querySelectorAll(FOCUSABLE)));
  const target = spot.emoji !== null ? reactionIn(holder, spot.emoji) : controls[spot.index];
  if (target) target.focus({ preventScroll: true });
}
