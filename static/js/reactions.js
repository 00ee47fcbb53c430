// Reactions: your own marked (aria-pressed) on every message the page places, pressing one to
// add or take back yours, and "Add reaction"'s palette (one per page, put next to the
// message it is open for), with the emoji you used lately.
// The message fragment is the same for every reader (it names who reacted in data-by): which
// reactions are yours only the page knows (the chat root's data-me). Without script each
// reaction is a plain form and "Add reaction" opens the palette's own page.

import { on } from "./dom.js";
import { send } from "./http.js";
import { chatRoot, log, elementOf, isEditing } from "./page.js";
import { placeAnswer, streamCopiesOf } from "./messages.js";
import { holdFocus, focusMessageControl } from "./focus.js";
import { quietly } from "./announce.js";
import { showError, errorText, NOT_REACHED } from "./forms.js";

// The server's PALETTE (webapp/web/templating.py): offered first, in this order.
const OFFERED = ["👍", "❤️", "😂", "🎉", "😮", "😢"];
const RECENT_MAX = 6;
const PALETTE_ID = "reaction-palette";
const inFlight = new Set(); // "id emoji": a change of ours on its way

function me() {
  const root = chatRoot();
  return root ? root.dataset.me : "";
}

// --- Marking your own ------------------------------------------------------------------------

// Within `content` (the page, or what htmx just put in it): your reactions pressed, their
// plain forms taking yours back, and "Add reaction" saying what it opens.
function prepare(content) {
  if (!content || !content.querySelectorAll) return;
  const name = me();
  const scope = [content].concat(Array.from(content.querySelectorAll(".message")));
  scope.filter((el) => el.matches(".message")).forEach((message) => {
    message.querySelectorAll(".reaction[data-by]").forEach((button) => {
      const yours = Boolean(name) && button.dataset.by.split(" ").includes(name);
      button.setAttribute("aria-pressed", yours ? "true" : "false");
      const form = button.closest("form");
      if (form) form.action = form.action.replace(/\/remove$/, "") + (yours ? "/remove" : "");
    });
    const add = message.querySelector(".add-reaction");
    if (add) {
      add.setAttribute("aria-haspopup", "dialog");
      add.setAttribute("aria-expanded", openFor() === message.dataset.id ? "true" : "false");
    } else if (openFor() === message.dataset.id && !isEditing(message)) {
      // Deleted meanwhile: nothing to react to any more.
      const hadFocus = palette().contains(document.activeElement);
      closePalette(false);
      if (hadFocus) message.focus();
    }
  });
  if (openFor()) placePalette(); // its message may have grown or moved
}

on("htmx:load", "reactions", (evt) => prepare(evt.detail.elt));

// --- Adding and taking back ------------------------------------------------------------------

function reactionsUrl(id) {
  return "/messages/" + encodeURIComponent(id) + "/reactions";
}

// Adds (or, `add` false, takes back) your `emoji` on the message `id`; the answer is placed
// (focus kept on the same reaction: focus.js), and `then` runs once it is.
function react(id, emoji, add, then) {
  const key = id + " " + emoji;
  if (inFlight.has(key)) return;
  inFlight.add(key);
  const copiesBefore = streamCopiesOf("msg-" + id);
  const request = add
    ? send("POST", reactionsUrl(id), { form: { emoji } })
    : send("DELETE", reactionsUrl(id) + "?" + new URLSearchParams({ emoji }));
  if (add) rememberUsed(emoji);
  request.then(
    (response) => {
      const elsewhere = response.headers.get("HX-Redirect"); // signed out meanwhile
      if (elsewhere) {
        window.location.assign(elsewhere);
        return null;
      }
      return response.text().then((html) => {
        if (!response.ok) {
          tell(errorText(html, response.status));
          return;
        }
        const release = holdFocus();
        try {
          placeAnswer(html, copiesBefore);
        } finally {
          release();
        }
        if (then) then();
      });
    },
    () => tell(NOT_REACHED)
  ).finally(() => inFlight.delete(key));
}

// A refusal (too many different emoji, a message deleted meanwhile) is said where the
// composer says its own.
function tell(text) {
  const composer = document.getElementById("composer");
  if (composer) showError(composer, text);
  else window.alert(text);
}

on("click", "reactions", (evt) => {
  const target = elementOf(evt.target);
  const button = target && target.closest("#log > .message .reaction[data-emoji]");
  if (!button) return;
  evt.preventDefault();
  const message = button.closest(".message");
  react(message.dataset.id, button.dataset.emoji, button.getAttribute("aria-pressed") !== "true");
});

// --- The emoji you used lately ------------------------------------------------------------

function recentKey() {
  const root = chatRoot();
  return root ? "reactions:recent:" + root.dataset.meId : null;
}

function recentlyUsed() {
  const key = recentKey();
  try {
    const list = key ? JSON.parse(window.localStorage.getItem(key) || "[]") : [];
    return Array.isArray(list) ? list.filter((e) => typeof e === "string") : [];
  } catch (e) {
    return [];
  }
}

function rememberUsed(emoji) {
  const key = recentKey();
  if (!key || OFFERED.includes(emoji)) return;
  const list = [emoji].concat(recentlyUsed().filter((e) => e !== emoji)).slice(0, RECENT_MAX);
  try {
    window.localStorage.setItem(key, JSON.stringify(list));
  } catch (e) { /* storage full or forbidden: the palette still offers the usual ones */ }
}

// --- The palette -------------------------------------------------------------------------------
// A small non-modal dialog after the message in the log, over the conversation: focus goes to
// its first emoji; the arrow keys, Home and End move along it; choosing one reacts; Escape
// closes it and goes back to "Add reaction"; focus or a click elsewhere closes it.

function palette() {
  return document.getElementById(PALETTE_ID);
}

// The id of the message the palette is open for, if it is open.
function openFor() {
  const el = palette();
  return el && el.isConnected ? el.dataset.for : "";
}

function emojiButton(emoji) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.emoji = emoji;
  button.setAttribute("aria-label", "React with " + emoji);
  button.title = "React with " + emoji;
  button.textContent = emoji;
  return button;
}

function buildPalette(id) {
  const el = document.createElement("div");
  el.id = PALETTE_ID;
  el.className = "palette-popover";
  el.setAttribute("role", "dialog");
  el.setAttribute("aria-label", "Add reaction");
  el.dataset.for = id;
  const offered = OFFERED.concat(recentlyUsed().filter((e) => !OFFERED.includes(e)));
  offered.forEach((emoji) => el.appendChild(emojiButton(emoji)));
  const more = document.createElement("a");
  more.className = "palette-more";
  more.href = reactionsUrl(id); // the palette's own page: any emoji
  more.textContent = "More…";
  el.appendChild(more);
  return el;
}

function openPalette(message) {
  closePalette(false);
  const el = buildPalette(message.dataset.id);
  quietly(); // not news in the log
  message.after(el);
  setExpanded(message.dataset.id, true);
  placePalette();
  const first = el.querySelector("button");
  if (first) first.focus();
}

// Closes the palette; `returnFocus`: to the message's "Add reaction".
function closePalette(returnFocus) {
  const el = palette();
  if (!el) return;
  const id = el.dataset.for;
  el.remove();
  setExpanded(id, false);
  const message = document.getElementById("msg-" + id);
  if (returnFocus && message) focusMessageControl(message, ".add-reaction");
}

function setExpanded(id, open) {
  const message = document.getElementById("msg-" + id);
  const add = message && message.querySelector(".add-reaction");
  if (add) add.setAttribute("aria-expanded", open ? "true" : "false");
}

// Under the message's "Add reaction" (above it when there is no room below), within the log.
function placePalette() {
  const el = palette();
  const area = log();
  const message = el && document.getElementById("msg-" + el.dataset.for);
  if (!el || !area || !message) return;
  const add = message.querySelector(".add-reaction");
  const anchor = add && add.getClientRects().length ? add : message;
  const box = area.getBoundingClientRect();
  const at = anchor.getBoundingClientRect();
  const width = el.offsetWidth;
  const height = el.offsetHeight;
  const left = Math.max(4, Math.min(at.right - box.left - width, area.clientWidth - width - 4));
  let top = at.bottom - box.top + 4;
  if (at.bottom + 4 + height > box.bottom && at.top - box.top - 4 - height >= 0) {
    top = at.top - box.top - 4 - height;
  }
  el.style.left = left + area.scrollLeft + "px";
  el.style.top = top + area.scrollTop + "px";
}

function choose(button) {
  const id = palette().dataset.for;
  const emoji = button.dataset.emoji;
  closePalette(true);
  react(id, emoji, true, () => {
    // Still on its "Add reaction" (nobody moved on): to the reaction, now pressed.
    const message = document.getElementById("msg-" + id);
    const active = document.activeElement;
    if (!message || (active && active !== document.body && !message.contains(active))) return;
    const reaction = Array.from(message.querySelectorAll(".reaction[data-emoji]"))
      .find((r) => r.dataset.emoji === emoji);
    if (reaction) reaction.focus();
  });
}

on("click", "reactions", (evt) => {
  const target = elementOf(evt.target);
  if (!target) return;
  const el = palette();
  const add = target.closest("#log > .message .add-reaction");
  const pick = el && target.closest("#" + PALETTE_ID + " button[data-emoji]");
  if (add) {
    evt.preventDefault();
    const message = add.closest(".message");
    if (openFor() === message.dataset.id) closePalette(true);
    else openPalette(message);
  } else if (pick) {
    evt.preventDefault();
    choose(pick);
  } else if (el && !el.contains(target)) {
    closePalette(false); // a click elsewhere
  }
});

on("keydown", "reactions", (evt) => {
  const el = palette();
  const target = elementOf(evt.target);
  if (!el || !target || !el.contains(target) || evt.altKey || evt.ctrlKey || evt.metaKey) return;
  if (evt.key === "Escape") {
    evt.preventDefault();
    closePalette(true);
    return;
  }
  const items = Array.from(el.querySelectorAll("button, a[href]"));
  const at = items.indexOf(target);
  let next = null;
  if (evt.key === "ArrowRight" || evt.key === "ArrowDown") next = items[(at + 1) % items.length];
  else if (evt.key === "ArrowLeft" || evt.key === "ArrowUp") next = items[(at - 1 + items.length) % items.length];
  else if (evt.key === "Home") next = items[0];
  else if (evt.key === "End") next = items[items.length - 1];
  if (!next) return;
  evt.preventDefault();
  next.focus();
});

// Focus leaving the palette (Tab past it, or elsewhere) closes it.
on("focusout", "reactions", (evt) => {
  const el = palette();
  const next = elementOf(evt.relatedTarget);
  if (el && next && el.contains(elementOf(evt.target)) && !el.contains(next)) closePalette(false);
});
