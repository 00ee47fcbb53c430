// The page by keyboard: the log as one tab stop, the sidebar's lists as one stop each (a
// roving tabindex), the arrow keys, Escape, and the skip links.
// Everything here is for people on a keyboard or a screen reader, and for small screens. The
// page works without it: every control is then a plain tab stop, and noscript.css shows what
// the script would open (the sidebar on a phone, a message's Edit and Delete).
//
// A busy room would otherwise put a hundred tab stops between the composer and the sidebar.
// The log (tabindex=0) is one stop. Inside it the arrow keys, Home and End go from message to
// message (each has tabindex=-1), and only the message that has focus, or is being edited,
// keeps its own controls (links, "Message actions", Edit, Delete) in the Tab order: Tab from
// a message reaches its buttons, and leaving the log takes them out again. The sidebar's
// lists (Rooms, Online users, Offline) are one stop each, on the current or first entry, and
// the arrow keys move along them. Observers keep this so whatever adds or replaces entries:
// htmx, the event stream, "Load older".

import { on } from "./dom.js";
import { log, composerField, elementOf, messagesIn, isEditing, FOCUSABLE, NARROW } from "./page.js";
import { menuIsOpen, openMenu, closeMenu, setMessageMenu } from "./menu.js";

const ROVING_LISTS = "#rooms, #people .people-list";
let activeMessage = null;

// Start-up: the log and the sidebar's lists become one stop each.
export function startKeyboard() {
  const el = log();
  if (el) watchLog(el);
  document.querySelectorAll(ROVING_LISTS).forEach(watchList);
}

// --- The log -------------------------------------------------------------------------------

function setMessageStops(message, inTabOrder) {
  message.querySelectorAll(FOCUSABLE).forEach((control) => {
    if (inTabOrder) control.removeAttribute("tabindex");
    else control.setAttribute("tabindex", "-1");
  });
}

function prepareMessage(message) {
  setMessageStops(message, message === activeMessage || isEditing(message));
}

function activateMessage(message) {
  if (message === activeMessage) return;
  const previous = activeMessage;
  activeMessage = message;
  if (previous && previous.isConnected) prepareMessage(previous);
  if (message) prepareMessage(message);
}

function moveInLog(evt, el) {
  const target = elementOf(evt.target);
  const onLog = target === el;
  if (!onLog && !(target && target.matches("#log > .message"))) return;
  const messages = messagesIn(el);
  if (messages.length === 0) return;
  const last = messages[messages.length - 1];
  const at = messages.indexOf(target); // -1 on the log itself
  let next = null;
  if (evt.key === "ArrowUp") {
    next = onLog ? last : at > 0 ? messages[at - 1] : el.querySelector(":scope > .load-older");
  } else if (evt.key === "ArrowDown") {
    next = onLog ? last : messages[Math.min(at + 1, messages.length - 1)];
  } else if (evt.key === "Home") {
    next = messages[0];
  } else if (evt.key === "End") {
    next = last;
  }
  if (!next) return;
  evt.preventDefault();
  next.focus();
}

function watchLog(el) {
  messagesIn(el).forEach(prepareMessage);
  new MutationObserver((records) => {
    records.forEach((record) => {
      record.addedNodes.forEach((node) => {
        if (node instanceof Element && node.matches(".message")) prepareMessage(node);
      });
    });
  }).observe(el, { childList: true });
  const hint = document.createElement("p");
  hint.id = "log-keys";
  hint.className = "visually-hidden";
  hint.textContent = "The arrow keys go from message to message; Tab reaches a message's buttons.";
  el.after(hint);
  el.setAttribute("aria-describedby", hint.id);
}

// --- The sidebar's lists ---------------------------------------------------------------------

// The sidebar list whose entry `target` is, if it is one.
function listOf(target) {
  const item = target && target.matches("a") ? target.parentElement : null;
  const list = item && item.matches("li") ? item.parentElement : null;
  return list && list.matches(ROVING_LISTS) ? list : null;
}

function listItems(list) {
  return Array.from(list.querySelectorAll(":scope > li > a"));
}

// Makes `preferred` (or the list's stop so far, its current entry, its first) the one stop.
function settleListStop(list, preferred) {
  const items = listItems(list);
  const stop =
    (preferred && items.includes(preferred) && preferred) ||
    items.find((a) => a.getAttribute("tabindex") === "0") ||
    items.find((a) => a.hasAttribute("aria-current")) ||
    items[0];
  items.forEach((a) => a.setAttribute("tabindex", a === stop ? "0" : "-1"));
}

function moveInList(evt) {
  const target = elementOf(evt.target);
  const list = listOf(target);
  if (!list) return;
  const items = listItems(list);
  const at = items.indexOf(target);
  let next = null;
  if (evt.key === "ArrowDown") next = items[Math.min(at + 1, items.length - 1)];
  else if (evt.key === "ArrowUp") next = items[Math.max(at - 1, 0)];
  else if (evt.key === "Home") next = items[0];
  else if (evt.key === "End") next = items[items.length - 1];
  if (!next) return;
  evt.preventDefault();
  settleListStop(list, next);
  next.focus();
}

function watchList(list) {
  settleListStop(list, null);
  new MutationObserver(() => settleListStop(list, null)).observe(list, { childList: true });
}

on("focusin", "keyboard", (evt) => {
  const target = elementOf(evt.target);
  if (!target) return;
  activateMessage(target.closest("#log > .message"));
  const list = listOf(target);
  if (list) settleListStop(list, target);
});

// --- Keys ------------------------------------------------------------------------------------
// Escape cancels an edit, closes a message's menu, or closes the conversations menu; the
// arrow keys, Home and End move in the log or along a sidebar list.

on("keydown", "keyboard", (evt) => {
  if (evt.defaultPrevented || evt.altKey || evt.ctrlKey || evt.metaKey) return;
  const target = elementOf(evt.target);
  if (!target) return;
  if (evt.key === "Escape") {
    const editing = target.closest(".edit-form");
    const menu = target.closest("#log > .message") && target.closest(".controls");
    const more = menu && menu.querySelector('.more[aria-expanded="true"]');
    if (editing) {
      const cancel = editing.querySelector(".cancel");
      if (cancel) cancel.click();
    } else if (more) {
      setMessageMenu(more, false);
      more.focus();
    } else if (menuIsOpen()) {
      closeMenu(true);
    } else {
      return;
    }
    evt.preventDefault();
    return;
  }
  const el = log();
  if (el && el.contains(target)) moveInLog(evt, el);
  else moveInList(evt);
});

// --- Skip links ----------------------------------------------------------------------------

function skipTo(where) {
  if (where === "composer") {
    const field = composerField();
    if (field) field.focus();
    return;
  }
  const first = document.querySelector("#people a[href]");
  if (NARROW.matches) openMenu(first);
  else if (first) first.focus();
}

on("click", "keyboard", (evt) => {
  const skip = elementOf(evt.target) && evt.target.closest(".skip-link");
  if (!skip) return;
  evt.preventDefault();
  skipTo(skip.dataset.skip);
});
