// The composer: sending with a pending copy until the server has it (with the message it
// answers, if any: replies.js), Retry when it fails, its height, and drafts kept per
// conversation in this browser.
// The composer's POST is the page's own (htmx asks, through htmx:confirm, and is told no):
// the message shows at once, greyed, "Sending…"; the server's copy, from the POST's answer
// or from the stream, whichever comes first, replaces it. Each message goes with a key of its
// own (client_key), the same for its Retry: a retry whose first try reached the server gets
// the message that try made, never a second one; and the server's copy (the author's carries
// data-client-key) finds its pending one by it (messages.js).

import { on } from "./dom.js";
import { post } from "./http.js";
import { chatRoot, log, composerField, scrollToBottom } from "./page.js";
import { placeAnswer } from "./messages.js";
import { showError, clearError, errorText, NOT_REACHED } from "./forms.js";
import { resetTyping } from "./typing.js";
import { replyState, clearReply } from "./replies.js";
import { showMentionNotice, clearMentionNotice } from "./mentions.js";

const pendingText = new WeakMap(); // pending copy -> the text it sends

on("htmx:confirm", "send", (evt) => {
  const form = evt.detail.elt;
  if (!form || form.id !== "composer") return;
  evt.preventDefault();
  sendFromComposer(form);
});

function sendFromComposer(form) {
  const field = form.querySelector("textarea[name=body]");
  const text = field.value;
  if (text.trim() === "") return;
  const item = pendingCopy(form, text, replyState());
  clearReply(); // the pending copy answers it now (and Retry, if it fails)
  clearMentionNotice(); // what it said of the last message is past
  field.value = "";
  saveDraft(field); // the text is the pending copy's now (and Retry's, if it fails)
  field.style.height = "";
  resetTyping();
  field.focus();
  if (item) send(item);
}

function pendingCopy(form, text, reply) {
  const root = chatRoot();
  const el = log();
  if (!root || !el) return null;
  const item = document.createElement("article");
  item.className = "message mine pending";
  item.dataset.conversation = root.dataset.conversation;
  item.dataset.sender = root.dataset.me;
  item.dataset.url = form.getAttribute("action");
  item.dataset.clientKey = newKey();
  const header = document.createElement("header");
  const sender = document.createElement("span");
  sender.className = "sender";
  sender.textContent = root.dataset.me;
  const state = document.createElement("span");
  state.className = "pending-state";
  header.append(sender, " ", state);
  item.append(header);
  if (reply) {
    item.dataset.replyTo = reply.id;
    item.classList.add("reply");
    item.append(pendingQuote(reply));
  }
  const body = document.createElement("p");
  body.className = "body";
  body.textContent = text.trim(); // as typed: the server's copy shows it rendered
  const actions = document.createElement("div");
  actions.className = "actions pending-actions";
  actions.hidden = true;
  ["Retry", "Discard"].forEach((name) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = name;
    button.dataset.action = name.toLowerCase();
    actions.appendChild(button);
  });
  item.append(body, actions);
  pendingText.set(item, text);
  const empty = el.querySelector(".empty");
  if (empty) empty.remove();
  el.appendChild(item);
  scrollToBottom();
  return item;
}

// The quote a reply shows, as the composer said it (the server's copy brings its link).
function pendingQuote(reply) {
  const quote = document.createElement("p");
  quote.className = "quote";
  const sender = document.createElement("span");
  sender.className = "quote-sender";
  sender.textContent = reply.sender;
  const text = document.createElement("span");
  text.className = "quote-text";
  text.textContent = reply.text;
  quote.append(sender, " ", text);
  return quote;
}

// 32 random hex digits (crypto.randomUUID wants a secure context; this does not).
function newKey() {
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function setPendingState(item, text, failed) {
  item.classList.toggle("failed", failed);
  item.querySelector(".pending-state").textContent = text;
  item.querySelector(".pending-actions").hidden = !failed;
}

function send(item) {
  setPendingState(item, "Sending…", false);
  const form = { body: pendingText.get(item), client_key: item.dataset.clientKey };
  if (item.dataset.replyTo) form.reply_to = item.dataset.replyTo;
  post(item.dataset.url, {
    form,
    keepalive: true, // a message sent just before leaving the page still goes
  }).then(
    (response) => {
      const elsewhere = response.headers.get("HX-Redirect"); // signed out meanwhile
      if (elsewhere) {
        window.location.assign(elsewhere);
        return null;
      }
      return response.text().then((html) => {
        if (response.ok) delivered(item, html);
        else failed(item, errorText(html, response.status));
      });
    },
    () => failed(item, NOT_REACHED)
  );
}

function delivered(item, html) {
  item.remove();
  placeAnswer(html, 0); // unless the stream brought it first (and maybe a change since)
  showMentionNotice(html); // whom it mentions who cannot read it, if anyone
  const form = document.getElementById("composer");
  if (form) clearError(form);
}

function failed(item, reason) {
  if (!item.isConnected) return; // its copy came through the stream: it was sent after all
  setPendingState(item, "Not sent.", true);
  const form = document.getElementById("composer");
  if (form) showError(form, reason);
}

on("click", "send", (evt) => {
  const button = evt.target.closest && evt.target.closest(".pending-actions button");
  if (!button) return;
  const item = button.closest(".pending");
  if (button.dataset.action === "retry") send(item);
  else item.remove();
  const field = composerField(); // the button is gone: focus goes on
  if (field) field.focus();
});

// The composer grows with its text, up to a point.
on("input", "send", (evt) => {
  const field = evt.target;
  if (field.id !== "message-body") return;
  field.style.height = "";
  field.style.height = Math.min(field.scrollHeight, 200) + "px";
  saveDraft(field);
});

// On a laptop the composer has focus from the start (on a phone, the keyboard would cover
// the conversation).
export function focusComposerWhenWide() {
  const field = composerField();
  if (field && window.matchMedia("(min-width: 720px)").matches) field.focus();
}

// --- Drafts, kept per conversation in this browser ------------------------------------

function draftKey() {
  const root = chatRoot();
  return root ? "draft:" + root.dataset.meId + ":" + root.dataset.conversation : null;
}

function saveDraft(field) {
  const key = draftKey();
  if (!key) return;
  try {
    if (field.value.trim()) window.localStorage.setItem(key, field.value);
    else window.localStorage.removeItem(key);
  } catch (e) { /* storage full or forbidden: drafts are a comfort */ }
}

export function restoreDraft() {
  const key = draftKey();
  const field = composerField();
  if (!key || !field || field.value) return;
  try {
    const draft = window.localStorage.getItem(key);
    if (draft) field.value = draft;
  } catch (e) { /* as above */ }
}
