// Placing messages in the log: one place for every message fragment, from the composer's
// answer, a reaction's answer or the stream. Idempotent by id: a message already on the page
// is replaced, never doubled. Whether a stream message is news is the server's word
// (data-new: this event posted it); an edit, a deletion or a reaction is a change in place.

import {
  chatRoot, log, parseFragment, swapIn, insertInOrder, messagesIn, isNearBottom, scrollToBottom,
} from "./page.js";
import { quietly } from "./announce.js";
import { bumpUnread } from "./badges.js";
import { arrivedHere, updateCurrentCount } from "./read.js";
import { clearTyping } from "./typing.js";
import { notifyOf } from "./notify.js";
import { updateQuotes } from "./replies.js";

const streamCopies = new Map(); // message id -> how many copies the stream has brought

// How many copies of the message `id` the stream has brought so far: an answer to a request
// of ours is placed only if none came meanwhile (the stream's copies come in order, and a
// later one may already hold someone else's change that the answer does not).
export function streamCopiesOf(id) {
  return streamCopies.get(id) || 0;
}

// The answer to a request of ours (a send, a reaction) that changed the message: placed
// unless the stream has brought a copy of it since the request went (`copiesBefore`).
export function placeAnswer(html, copiesBefore) {
  const incoming = parseFragment(html);
  if (incoming && incoming.id && streamCopiesOf(incoming.id) > copiesBefore) return;
  placeMessage(html, false);
}

export function placeMessage(html, fromStream) {
  const incoming = parseFragment(html);
  if (!incoming || !incoming.id) return;
  if (fromStream) streamCopies.set(incoming.id, streamCopiesOf(incoming.id) + 1);
  updateQuotes(incoming); // the replies to it show it as it is now
  const root = chatRoot();
  const existing = document.getElementById(incoming.id);
  const here = root && incoming.dataset.conversation === root.dataset.conversation;
  if (existing) {
    quietly(); // a change in place is not news
    if (incoming.classList.contains("deleted") || !inOurHands(existing)) {
      swapIn(existing, html, "outerHTML");
    }
    if (here) updateCurrentCount(); // a deleted message is no longer unread
    return;
  }
  const isNew = incoming.hasAttribute("data-new");
  // A change to a message this page does not show (older than its history) stays away: put
  // in, it would sit out of place, and "Load older" would bring it a second time.
  if (fromStream && !isNew) return;
  const mine = incoming.dataset.sender === (root && root.dataset.me);
  const el = log();
  if (fromStream && !mine) notifyOf(incoming);
  if (here && el && !el.querySelector(".newer")) {
    const stick = isNearBottom(el) || !fromStream;
    const empty = el.querySelector(".empty");
    if (empty) empty.remove();
    if (fromStream && mine) claimPending(el, incoming); // our own, back before our POST's answer
    insertByOrder(el, incoming, html);
    if (stick) scrollToBottom();
    if (fromStream) {
      clearTyping(incoming.dataset.sender);
      if (!mine) arrivedHere(incoming, stick);
    }
  } else if (fromStream && !mine) {
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

// Our own message came through the stream: the pending copy that sent it gives way. A
// pending copy shows the text it sends (send.js), the server's copy that text rendered (its
// markup gone): the same text, else the one whose characters it keeps, in order, answering
// the same message.
function claimPending(el, message) {
  const body = message.querySelector(".body");
  const text = comparable(body ? body.textContent : "");
  const quote = message.querySelector(".quote");
  const replyTo = quote ? quote.dataset.replyTo : "";
  const pending = Array.from(el.querySelectorAll(".message.pending")).filter(
    (item) => (item.dataset.replyTo || "") === (replyTo || ""));
  const sentText = (item) => {
    const sent = item.querySelector(".body");
    return comparable(sent ? sent.textContent : "");
  };
  const item = pending.find((p) => sentText(p) === text) ||
    pending.find((p) => text !== "" && keepsInOrder(sentText(p), text));
  if (item) item.remove();
}

// Whether every character of `text` is in `source`, in the same order.
function keepsInOrder(source, text) {
  let at = 0;
  for (const ch of text) {
    at = source.indexOf(ch, at);
    if (at < 0) return false;
    at += ch.length;
  }
  return true;
}

// Text as the server keeps it, for comparing: no spaces and no control characters.
function comparable(text) {
  return text.replace(/[\s\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, "");
}
