// New messages: the "New messages" line above the first unread one, and the "Jump to new
// messages" button while the reader is in the history. `readSeq` is read.js's read position.

import { on } from "./dom.js";
import { chatRoot, log, isNearBottom, scrollToBottom, seqOf } from "./page.js";

// Opening a conversation with unread messages starts at the line above the first of them.
export function scrollToFirstUnread() {
  const el = log();
  const line = el && el.querySelector(".new-messages");
  if (!line) return false;
  el.scrollTop += line.getBoundingClientRect().top - el.getBoundingClientRect().top;
  return true;
}

// This page was made before the last one's reads arrived: its line goes down to what is
// still unread (or away).
export function moveNewMessagesLine(readSeq) {
  const el = log();
  const line = el && el.querySelector(".new-messages");
  const next = line && line.nextElementSibling;
  if (!next || !next.dataset.seq || seqOf(next) > readSeq) return;
  const first = firstUnreadHere(readSeq);
  if (first) first.before(line);
  else line.remove();
}

// A page of older messages may bring its own line: the first one is the one that counts.
on("htmx:load", "newmessages", () => {
  const el = log();
  if (!el) return;
  el.querySelectorAll(".new-messages").forEach((line, n) => {
    if (n > 0) line.remove();
  });
});

function firstUnreadHere(readSeq) {
  const root = chatRoot();
  const el = log();
  if (!root || !el) return null;
  return Array.from(el.querySelectorAll(".message[data-seq]")).find((m) =>
    m.dataset.sender !== root.dataset.me && seqOf(m) > readSeq && !m.classList.contains("deleted")
  ) || null;
}

export function showJump() {
  const button = document.getElementById("jump-new");
  if (button) button.hidden = false;
}

export function updateJump(readSeq) {
  const button = document.getElementById("jump-new");
  const el = log();
  if (!button || button.hidden || !el) return;
  if (isNearBottom(el) || !firstUnreadHere(readSeq)) button.hidden = true;
}

// The button was pressed: to the first unread message (or the end), and the log has focus.
export function jumpToNew(readSeq) {
  const button = document.getElementById("jump-new");
  const el = log();
  const first = firstUnreadHere(readSeq);
  if (first) el.scrollTop += first.getBoundingClientRect().top - el.getBoundingClientRect().top;
  else scrollToBottom();
  button.hidden = true;
  el.focus({ preventScroll: true });
}
