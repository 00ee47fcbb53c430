// The chat page's parts (its root, the log, the composer) and the few helpers every
// behaviour shares: reading a fragment, swapping it in, the sorted insert.

const NEAR_BOTTOM_PX = 80;

// Below 720 px the sidebar is a menu and a message's Edit and Delete sit behind its "⋯".
export const NARROW = window.matchMedia("(max-width: 719.98px)");

export const FOCUSABLE = "a[href], button, input, textarea, select, [tabindex]";

// The element with the page's own data: data-conversation, data-me, data-me-id, ...
export function chatRoot() {
  return document.querySelector(".chat");
}

export function log() {
  return document.getElementById("log");
}

export function composerField() {
  return document.getElementById("message-body");
}

export function isVisible() {
  return document.visibilityState === "visible";
}

export function elementOf(target) {
  return target instanceof Element ? target : null;
}

// The messages of the log, oldest first (without day separators or "Load older").
export function messagesIn(el) {
  return Array.from(el.querySelectorAll(":scope > .message"));
}

export function seqOf(message) {
  return parseInt(message.dataset.seq, 10) || 0;
}

// Whether a message's list of user ids names you: its data-mentions (whom it mentions now),
// or `attr` "notify" (whom this change of it tells: the server's word, never twice).
export function listsMe(message, attr = "mentions") {
  const root = chatRoot();
  const me = root && root.dataset.meId;
  return Boolean(me) && (message.dataset[attr] || "").split(/\s+/).includes(me);
}

// (A swapped-in element wears its predecessor's attributes until htmx settles it: what it
// holds says whether it is an edit box, not its class.)
export function isEditing(message) {
  return message.querySelector(".edit-form") !== null;
}

export function isNearBottom(el) {
  return el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;
}

export function scrollToBottom() {
  const el = log();
  if (el) el.scrollTop = el.scrollHeight;
}

export function parseFragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  return template.content.firstElementChild;
}

// Puts `html` in place through htmx (so that its hx- attributes work), settled at once.
export function swapIn(target, html, style) {
  htmx.swap(target, html, { swapStyle: style, swapDelay: 0, settleDelay: 0 });
}

// The one sorted insert: `html` goes before the first of `items` that `isLater` says comes
// after it, else at the end of `parent`.
export function insertInOrder(parent, items, html, isLater) {
  const later = items.find(isLater);
  if (later) swapIn(later, html, "beforebegin");
  else swapIn(parent, html, "beforeend");
}

// A sidebar or "Members" entry into its list, by `attr` ignoring case, instead of `old`.
export function placeSorted(list, entry, attr, old) {
  if (old) old.remove();
  const name = (entry.getAttribute(attr) || "").toLowerCase();
  insertInOrder(list, Array.from(list.children), entry.outerHTML,
    (other) => (other.getAttribute(attr) || "").toLowerCase() > name);
}
