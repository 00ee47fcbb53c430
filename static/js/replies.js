// Replies: "Reply" sets the composer to answer a message ("Replying to …", "Cancel reply",
// the hidden reply_to that goes with the send), a quote followed to its original on the page,
// and every quote of a message kept as the message is now (edited, deleted).
// Without script "Reply" is a GET that opens the page with the composer answering, a quote a
// link to the conversation at the original, and "Cancel reply" a link to the page without it.

import { on } from "./dom.js";
import { log, composerField, elementOf } from "./page.js";

const LINKED = /^#msg-([A-Za-z0-9]+)$/;

// --- The composer answering a message ----------------------------------------------------

// The message the composer answers, as its pending copy shows it: {id, sender, text}, or null.
export function replyState() {
  const field = document.getElementById("reply-to");
  if (!field || !field.value) return null;
  return {
    id: field.value,
    sender: textOf("replying-sender"),
    text: textOf("replying-text"),
  };
}

function textOf(id) {
  const el = document.getElementById(id);
  return el ? el.textContent : "";
}

function setText(id, text) {
  const el = document.getElementById(id);
  if (el) el.textContent = text;
}

function startReply(message) {
  const field = document.getElementById("reply-to");
  const box = document.getElementById("replying");
  if (!field || !box || !message.dataset.id) return false;
  field.value = message.dataset.id;
  showOriginal(message);
  box.hidden = false;
  const composer = composerField();
  if (composer) composer.focus();
  return true;
}

// What "Replying to" says of the original (as it is now).
function showOriginal(message) {
  setText("replying-sender", message.dataset.sender || "");
  setText("replying-text", isDeleted(message) ? "message deleted" : message.dataset.excerpt || "");
}

// The composer answers nothing again (sent, or cancelled).
export function clearReply() {
  const field = document.getElementById("reply-to");
  const box = document.getElementById("replying");
  if (field) field.value = "";
  if (box) box.hidden = true;
  setText("replying-sender", "");
  setText("replying-text", "");
}

function isDeleted(message) {
  return message.classList.contains("deleted");
}

// --- Quotes ------------------------------------------------------------------------------

// `message` (a fragment that just came, placed or not) is how that message is now: every
// quote of it on the page says so, and so does the composer if it answers it. The server
// wrote its sender and the start of its text (data-sender, data-excerpt).
export function updateQuotes(message) {
  const id = message.dataset.id;
  if (!id) return;
  document.querySelectorAll('.quote[data-reply-to="' + CSS.escape(id) + '"]').forEach((quote) => {
    const text = document.createElement("span");
    text.className = "quote-text";
    if (isDeleted(message)) {
      text.textContent = "message deleted";
      quote.replaceChildren(text);
      return;
    }
    const sender = document.createElement("span");
    sender.className = "quote-sender";
    sender.textContent = message.dataset.sender || "";
    text.textContent = message.dataset.excerpt || "";
    quote.replaceChildren(sender, " ", text);
  });
  const field = document.getElementById("reply-to");
  if (field && field.value === id) showOriginal(message);
}

// The original of a quote, when it is on the page: scrolled to, focused and highlighted.
export function showMessage(original) {
  document.querySelectorAll("#log > .message.highlight").forEach((other) => {
    if (other !== original) other.classList.remove("highlight");
  });
  original.classList.add("highlight");
  original.scrollIntoView({ block: "center" });
  original.focus({ preventScroll: true });
}

// Start-up: a page opened at a message (a quote whose original was not on the page, a
// link to it) shows it the same way.
export function showLinkedMessage() {
  const match = LINKED.exec(window.location.hash);
  const el = log();
  const original = match && document.getElementById("msg-" + match[1]);
  if (el && original && el.contains(original)) showMessage(original);
}

// The highlight goes once focus has left the message.
on("focusout", "replies", (evt) => {
  const message = elementOf(evt.target) && evt.target.closest("#log > .message.highlight");
  const next = elementOf(evt.relatedTarget);
  if (message && next && !message.contains(next)) message.classList.remove("highlight");
});

// --- Clicks and keys -----------------------------------------------------------------------

on("click", "replies", (evt) => {
  const target = elementOf(evt.target);
  if (!target) return;
  const reply = target.closest("#log .message button.reply");
  const quote = target.closest("#log .message a.quote");
  if (reply) {
    if (startReply(reply.closest(".message"))) evt.preventDefault();
  } else if (target.closest("#cancel-reply")) {
    evt.preventDefault();
    cancelReply();
  } else if (quote && !evt.ctrlKey && !evt.metaKey && !evt.shiftKey) {
    const original = document.getElementById("msg-" + quote.dataset.replyTo);
    const el = log();
    if (!original || !el || !el.contains(original)) return; // the link opens it
    evt.preventDefault();
    showMessage(original);
  }
});

function cancelReply() {
  clearReply();
  const composer = composerField();
  if (composer) composer.focus();
}

on("keydown", "replies", (evt) => {
  if (evt.defaultPrevented || evt.altKey || evt.ctrlKey || evt.metaKey) return;
  const target = elementOf(evt.target);
  if (!target) return;
  if (evt.key === " " && target.id === "cancel-reply") { // a button: Space presses it too
    evt.preventDefault();
    cancelReply();
  } else if (evt.key === "Escape" && target.id === "message-body" && replyState()) {
    evt.preventDefault();
    cancelReply();
  }
});
