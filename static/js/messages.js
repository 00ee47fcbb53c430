// Placing messages in the log: one place for every message fragment, from the composer's
// answer, a reaction's answer or the stream. Idempotent by id: a message already on the page
// is replaced, never doubled. Whether a stream message is news is the server's word
// (data-new: this event posted it); an edit, a deletion or a reaction is a change in place.

import {
  chatRoot, log, parseFragment, swapIn, insertInOrder, messagesIn, isNearBottom, scrollToBottom,
  listsMe,
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
  const isNew = incoming.hasAttribute("data-new");
  const mine = incoming.dataset.sender === (root && root.dataset.me);
  // News for you: a new message (once), or an edit that mentions you now (data-notify).
  if (fromStream && !mine && (isNew ? !existing : listsMe(incoming, "notify"))) notifyOf(incoming);
  if (existing) {
    quietly(); // a change in place is not news
    if (incoming.classList.contains("deleted") || !inOurHands(existing)) {
      swapIn(existing, html, "outerHTML");
    }
    if (here) updateCurrentCount(); // a deleted message is no longer unread
    return;
  }
  // A change to a message this page does not show (older than its history) stays away: put
  // in, it would sit out of place, and "Load older" would bring it a second time.
  if (fromStream && !isNew) return;
  const el = log();
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

// Our own message came through the stream: the pending copy that sent it gives way. The
// author's copy carries the key its send went with (send.js).
function claimPending(el, message) {
  const key = message.dataset.clientKey;
  if (!key) return;
  const pending = el.querySelector('.message.pending[data-client-key="' + CSS.escape(key) + '"]');
  if (pending) pending.remove();
}
