// Placing messages in the log: one place for every message fragment, from the composer's
// answer or from the stream. Idempotent by id: a message already on the page is replaced,
// never doubled.

import {
  chatRoot, log, parseFragment, swapIn, insertInOrder, messagesIn, isNearBottom, scrollToBottom,
} from "./page.js";
import { quietly } from "./announce.js";
import { bumpUnread } from "./badges.js";
import { arrivedHere, updateCurrentCount } from "./read.js";
import { clearTyping } from "./typing.js";
import { notifyOf } from "./notify.js";

export function placeMessage(html, fromStream) {
  const incoming = parseFragment(html);
  if (!incoming || !incoming.id) return;
  const root = chatRoot();
  const existing = document.getElementById(incoming.id);
  const here = root && incoming.dataset.conversation === root.dataset.conversation;
  if (existing) {
    if (fromStream) quietly(); // a change in place is not news
    if (incoming.classList.contains("deleted") || !inOurHands(existing)) {
      swapIn(existing, html, "outerHTML");
    }
    if (here) updateCurrentCount(); // a deleted message is no longer unread
    return;
  }
  const isNew = !incoming.querySelector(".edited") && !incoming.classList.contains("deleted");
  const mine = incoming.dataset.sender === (root && root.dataset.me);
  const el = log();
  if (fromStream && isNew && !mine) notifyOf(incoming);
  if (here && el && !el.querySelector(".newer")) {
    const stick = isNearBottom(el) || !fromStream;
    const empty = el.querySelector(".empty");
    if (empty) empty.remove();
    if (fromStream && mine) claimPending(el, incoming); // our own, back before our POST's answer
    insertByOrder(el, incoming, html);
    if (stick) scrollToBottom();
    if (fromStream) {
      clearTyping(incoming.dataset.sender);
      if (isNew && !mine) arrivedHere(incoming, stick);
    }
  } else if (fromStream && isNew && !mine) {
    bumpUnread(incoming.dataset.conversation, 1, incoming);
  }
}

// A message being edited here, or with a request of ours on its way (Edit, Save, Cancel,
// Delete), keeps what it shows: the answer to that request brings the server's copy (and
// replacing it now would leave the answer nowhere to go). Only a deletion goes in anyway.
function inOurHands(message) {
  return message.classList.contains("editing") || message.querySelector(".htmx-request") !== null;
}

// A message that arrives late (a reconnect's catch-up, or a reply that crossed one's own
// send) goes where the server's order puts it, not simply at the end (before any of our
// own still being sent, which stay last).
function insertByOrder(el, incoming, html) {
  const key = incoming.dataset.order || "";
  insertInOrder(el, messagesIn(el), html, (other) =>
    other.classList.contains("pending") || (other.dataset.order || "") > key);
}

// Our own message came through the stream: the pending copy of the same text gives way.
// (A pending copy shows the text it sends, trimmed: send.js.)
function claimPending(el, message) {
  const body = message.querySelector(".body");
  const text = comparable(body ? body.textContent : "");
  const item = Array.from(el.querySelectorAll(".message.pending")).find((pending) => {
    const sent = pending.querySelector(".body");
    return comparable(sent ? sent.textContent : "") === text;
  });
  if (item) item.remove();
}

// Text as the server keeps it, for comparing: no spaces and no control characters.
function comparable(text) {
  return text.replace(/[\s\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, "");
}
