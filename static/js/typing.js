// "… is typing": telling the others while you type in the composer, and showing who else is.

import { on } from "./dom.js";
import { post } from "./http.js";
import { chatRoot, parseFragment } from "./page.js";

const TYPING_SHOW_MS = 6000;
const TYPING_SEND_MS = 3000; // the server passes on one notice per 3 s anyway
const typists = new Map(); // username -> timer
let lastTypingSent = 0;

// A "typing" event from the stream.
export function showTyping(html) {
  const notice = parseFragment(html);
  const root = chatRoot();
  if (!notice || !root || notice.dataset.conversation !== root.dataset.conversation) return;
  const name = notice.dataset.username;
  if (typists.has(name)) window.clearTimeout(typists.get(name));
  typists.set(name, window.setTimeout(() => clearTyping(name), TYPING_SHOW_MS));
  renderTyping();
}

// Their message came: they are no longer typing it.
export function clearTyping(name) {
  if (!typists.has(name)) return;
  window.clearTimeout(typists.get(name));
  typists.delete(name);
  renderTyping();
}

function renderTyping() {
  const slot = document.getElementById("typing");
  if (!slot) return;
  const names = Array.from(typists.keys());
  slot.textContent =
    names.length === 0 ? "" :
    names.length === 1 ? names[0] + " is typing…" :
    names.join(", ") + " are typing…";
}

// A message was sent: the next key pressed is news again.
export function resetTyping() {
  lastTypingSent = 0;
}

function noteTyping(field) {
  const now = Date.now();
  if (now - lastTypingSent < TYPING_SEND_MS || field.value.trim() === "") return;
  lastTypingSent = now;
  post(field.dataset.typingUrl).catch(() => {});
}

on("input", "typing", (evt) => {
  if (evt.target.id === "message-body") noteTyping(evt.target);
});
