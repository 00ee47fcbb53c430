// Mentions: a mention of you marked as yours, the list of people that "@" and letters open in
// the composer, and the notice naming whom a message mentions who cannot read it.
//
// The server marks every mention (<span class="mention">) for everyone, and lists whom a
// message mentions in its data-mentions; a page rendered for you marks the messages that
// mention you, but live fragments are shared: the page marks them itself (.mentions-me on the
// message, .me on your own name).
//
// The list is the composer's autocomplete: the textarea stays a text box (with
// aria-autocomplete, aria-haspopup, aria-controls and, while an option is chosen,
// aria-activedescendant), the list a role="listbox" of role="option"s; a status line says how
// many people match. The arrow keys move, Enter or Tab inserts "@name ", Escape closes it
// (that "@" stays closed). (aria-expanded and role="combobox" are not allowed on a textarea.)

import { on } from "./dom.js";
import { chatRoot, composerField, elementOf, listsMe, swapIn } from "./page.js";

const LIST_ID = "mention-list";
const COUNT_ID = "mention-count";
const SHOWN_MAX = 8;
// "@" at the start or after anything but a letter, digit, "_" or "@" (as the server finds a
// mention: webapp/rules/formatting.py), then what has been typed of the name, up to the caret.
const TYPED = /(?:^|[^\w@])@([A-Za-z0-9_]{0,32})$/;

let shown = []; // the names the list offers
let active = -1; // the chosen one
let at = -1; // where the "@" being completed is in the composer's text
let dismissed = -1; // an "@" whose list Escape closed: it stays closed

// --- Mentions of you ---------------------------------------------------------------------

function markMentions(scope) {
  const root = chatRoot();
  if (!root || !scope || !scope.querySelectorAll) return;
  const me = (root.dataset.me || "").toLowerCase();
  const messages = scope.matches(".message") ? [scope] : scope.querySelectorAll(".message");
  messages.forEach((message) => {
    if (message.dataset.mentions === undefined) return; // a pending copy: not the server's yet
    message.classList.toggle("mentions-me", listsMe(message));
    message.querySelectorAll(".body .mention[data-username]").forEach((name) => {
      name.classList.toggle("yours", name.dataset.username.toLowerCase() === me);
    });
  });
}

on("htmx:load", "mentions", (evt) => markMentions(elementOf(evt.detail.elt)));

// --- The list of people, in the composer ---------------------------------------------------

// Start-up: the composer says it completes names, and the list and its count are in place.
export function startMentions() {
  const field = composerField();
  if (!field || document.getElementById(LIST_ID)) return;
  const list = document.createElement("ul");
  list.id = LIST_ID;
  list.className = "mention-list";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "People to mention");
  list.hidden = true;
  const count = document.createElement("p");
  count.id = COUNT_ID;
  count.className = "visually-hidden";
  count.setAttribute("role", "status");
  field.after(list, count);
  field.setAttribute("aria-autocomplete", "list");
  field.setAttribute("aria-haspopup", "listbox");
  field.setAttribute("aria-controls", LIST_ID);
}

// The conversation's people: a group room's members, the two people of a direct
// conversation, or everyone in the sidebar's lists for the public room.
function people() {
  const root = chatRoot();
  if (!root) return [];
  const members = document.getElementById("members");
  let names;
  if (members && members.dataset.conversation === root.dataset.conversation) {
    names = Array.from(members.querySelectorAll("li[data-username]:not([data-left])"),
      (item) => item.dataset.username);
  } else if (root.dataset.peer) {
    names = [root.dataset.peer, root.dataset.me];
  } else {
    names = Array.from(document.querySelectorAll("#people .people-list li[data-username]"),
      (item) => item.dataset.username);
  }
  return Array.from(new Set(names.filter(Boolean)))
    .sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
}

function listEl() {
  return document.getElementById(LIST_ID);
}

function isOpen() {
  const list = listEl();
  return Boolean(list && !list.hidden);
}

function say(text) {
  const count = document.getElementById(COUNT_ID);
  if (count && count.textContent !== text) count.textContent = text;
}

// What the composer holds before its caret decides: an "@" and letters open (or narrow)
// the list; anything else closes it.
function update(field) {
  const caret = field.selectionStart;
  const typed = caret === field.selectionEnd ? TYPED.exec(field.value.slice(0, caret)) : null;
  if (!typed) {
    dismissed = -1;
    close();
    return;
  }
  const start = caret - typed[1].length - 1;
  if (start === dismissed) return;
  dismissed = -1;
  const prefix = typed[1].toLowerCase();
  const names = people().filter((name) => name.toLowerCase().startsWith(prefix));
  if (names.length === 0) {
    close();
    return;
  }
  at = start;
  show(names.slice(0, SHOWN_MAX), names.length);
}

function show(names, matching) {
  const list = listEl();
  const field = composerField();
  if (!list || !field) return;
  const was = shown[active];
  shown = names;
  list.replaceChildren(...names.map((name, n) => {
    const option = document.createElement("li");
    option.id = LIST_ID + "-" + n;
    option.setAttribute("role", "option");
    option.dataset.username = name;
    option.textContent = name;
    return option;
  }));
  list.hidden = false;
  choose(Math.max(0, names.indexOf(was)));
  const more = matching > names.length ? ", the first " + names.length + " shown" : "";
  say((matching === 1 ? "1 person" : matching + " people") + more);
}

function choose(n) {
  const list = listEl();
  const field = composerField();
  if (!list || !field || shown.length === 0) return;
  active = (n + shown.length) % shown.length;
  list.querySelectorAll("[role=option]").forEach((option, i) => {
    option.setAttribute("aria-selected", i === active ? "true" : "false");
    if (i === active) field.setAttribute("aria-activedescendant", option.id);
  });
}

function close() {
  const list = listEl();
  const field = composerField();
  shown = [];
  active = -1;
  at = -1;
  if (list && !list.hidden) {
    list.hidden = true;
    list.replaceChildren();
  }
  if (field) field.removeAttribute("aria-activedescendant");
  say("");
}

// "@name " in place of the "@" and what was typed of it; the caret after it.
function insert(name) {
  const field = composerField();
  if (!field || at < 0 || !name) return;
  field.setRangeText("@" + name + " ", at, field.selectionStart, "end");
  close();
  field.focus();
  field.dispatchEvent(new Event("input", { bubbles: true })); // its height, draft, "typing"
}

on("input", "mentions", (evt) => {
  if (evt.target.id === "message-body") update(evt.target);
});

// The caret moved without typing: the list follows it.
const CARET_KEYS = new Set(["ArrowLeft", "ArrowRight", "Home", "End", "PageUp", "PageDown"]);
on("keyup", "mentions", (evt) => {
  if (evt.target.id === "message-body" && CARET_KEYS.has(evt.key)) update(evt.target);
});
on("click", "mentions", (evt) => {
  const target = elementOf(evt.target);
  if (!target) return;
  if (target.id === "message-body") {
    update(target);
    return;
  }
  const option = target.closest("#" + LIST_ID + " [role=option]");
  if (option) insert(option.dataset.username);
});

// Pressing an option keeps the focus in the composer (the click inserts it).
on("mousedown", "mentions", (evt) => {
  const target = elementOf(evt.target);
  if (target && target.closest("#" + LIST_ID)) evt.preventDefault();
});

on("focusout", "mentions", (evt) => {
  if (evt.target.id === "message-body") close();
});

// Keys while the list is open. Handled here, they go no further: Enter does not send, Escape
// does not cancel a reply (forms.js, replies.js).
on("keydown", "mentions", (evt) => {
  if (!isOpen() || evt.target.id !== "message-body" || evt.isComposing) return;
  if (evt.altKey || evt.ctrlKey || evt.metaKey) return;
  if (evt.key === "ArrowDown" || evt.key === "ArrowUp") {
    choose(active + (evt.key === "ArrowDown" ? 1 : -1));
  } else if ((evt.key === "Enter" || evt.key === "Tab") && !evt.shiftKey) {
    insert(shown[active]);
  } else if (evt.key === "Escape") {
    dismissed = at;
    close();
  } else {
    return;
  }
  evt.preventDefault();
});

// --- Mentioned, but not a reader -------------------------------------------------------------
// The answer to a send may carry a notice (out of band, for the composer's #mention-notice)
// naming people the message mentions who cannot read the conversation, with "Add" in a group
// room. (htmx places it itself for an edit's answer.)

export function showMentionNotice(html) {
  const answer = document.createElement("template");
  answer.innerHTML = html;
  const notice = answer.content.querySelector("#mention-notice");
  const here = document.getElementById("mention-notice");
  if (!notice || !here) return;
  swapIn(here, notice.innerHTML, "innerHTML"); // through htmx: its "Add" posts (the status stays)
}

// The next message sent: what the notice said is past.
export function clearMentionNotice() {
  const here = document.getElementById("mention-notice");
  if (here && here.firstChild) here.replaceChildren();
}

// "Add" went through: the notice says so, in place of the button.
on("htmx:afterRequest", "mentions", (evt) => {
  const button = elementOf(evt.detail.elt);
  if (!button || !button.matches("#mention-notice .add-outsider") || !evt.detail.successful) return;
  const said = button.previousElementSibling;
  const name = button.dataset.username;
  if (said && said.matches(".outsider") && name) said.textContent = name + " was added to this room";
  const hadFocus = document.activeElement === button;
  button.remove();
  const field = composerField();
  if (hadFocus && field) field.focus();
});
