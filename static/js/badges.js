// Unread badges: one per sidebar entry (Public room, rooms, people), their total in the page
// title, and on a phone on the menu button that hides the sidebar. Beside each, an "@" while
// an unread message there mentions you (on the menu button too, while any does).

import { seqOf, listsMe } from "./page.js";

const arrivals = new Map(); // conversation -> seqs of arrivals counted into its badge
const mentionArrivals = new Map(); // conversation -> seqs of those that mention you

function entryFor(conversation) {
  return document.querySelector('.people [data-conversation="' + CSS.escape(conversation) + '"]');
}

export function badgeFor(conversation) {
  const entry = entryFor(conversation);
  return entry ? entry.querySelector(".badge") : null;
}

// The conversation's "@": shown while an unread message there mentions you.
export function setMentioned(conversation, mentioned) {
  const entry = entryFor(conversation);
  const mark = entry && entry.querySelector(".mentioned");
  if (!mark || mark.hidden === !mentioned) return;
  mark.hidden = !mentioned;
  updateTitle();
}

function remember(map, conversation, seq) {
  if (!map.has(conversation)) map.set(conversation, new Set());
  map.get(conversation).add(seq);
}

// How many of the arrivals `map` remembers came after `upto` (those before are forgotten).
function laterThan(map, conversation, upto) {
  const counted = map.get(conversation);
  let later = 0;
  if (counted) {
    counted.forEach((seq) => {
      if (seq > upto) later += 1;
      else counted.delete(seq);
    });
  }
  return later;
}

export function setUnread(conversation, count) {
  const badge = badgeFor(conversation);
  if (!badge) return;
  badge.textContent = count > 0 ? String(count) : "";
  badge.hidden = count <= 0;
  badge.setAttribute("aria-label", count + " unread");
  updateTitle();
}

// One more unread in a conversation's badge; `message` (by its seq) is remembered, so that a
// read event counted before it arrived still counts it (setCounted). A new message that
// mentions you shows the "@".
export function bumpUnread(conversation, by, message) {
  const badge = badgeFor(conversation);
  if (!badge) return;
  const seq = message ? seqOf(message) : 0;
  if (seq) remember(arrivals, conversation, seq);
  if (seq && message.hasAttribute("data-new") && listsMe(message)) {
    remember(mentionArrivals, conversation, seq);
    setMentioned(conversation, true);
  }
  setUnread(conversation, (parseInt(badge.textContent, 10) || 0) + by);
}

// The server's count: `unread` counts others' messages after the read position up to `upto`,
// `mentions` those of them that mention you; those that arrived here since add to them.
export function setCounted(conversation, unread, upto, mentions) {
  const later = laterThan(arrivals, conversation, upto);
  const laterMentions = laterThan(mentionArrivals, conversation, upto);
  setUnread(conversation, unread + later);
  setMentioned(conversation, (mentions || 0) + laterMentions > 0);
}

// A sidebar entry that comes again (a live "person" or "room" event) keeps its count and "@".
export function keepBadge(old, entry) {
  const oldBadge = old && old.querySelector(".badge");
  const badge = entry.querySelector(".badge");
  if (oldBadge && badge) {
    badge.textContent = oldBadge.textContent;
    badge.hidden = oldBadge.hidden;
    badge.setAttribute("aria-label", oldBadge.getAttribute("aria-label") || "");
  }
  const oldMark = old && old.querySelector(".mentioned");
  const mark = entry.querySelector(".mentioned");
  if (oldMark && mark) mark.hidden = oldMark.hidden;
}

export function updateTitle() {
  let total = 0;
  document.querySelectorAll(".people .badge:not([hidden])").forEach((badge) => {
    total += parseInt(badge.textContent, 10) || 0;
  });
  const base = document.title.replace(/^\(\d+\) /, "");
  document.title = total > 0 ? "(" + total + ") " + base : base;
  updateMenuBadge(total, document.querySelector(".people .mentioned:not([hidden])") !== null);
}

// On a phone the sidebar hides behind the menu button (.nav-open): it shows the total too,
// and an "@" while any conversation shows one.
function updateMenuBadge(total, mentioned) {
  document.querySelectorAll(".nav-open").forEach((button) => {
    let badge = button.querySelector(".nav-badge");
    if (!badge) {
      badge = document.createElement("span");
      badge.className = "badge nav-badge";
      button.appendChild(badge);
    }
    let mark = button.querySelector(".nav-mentioned");
    if (!mark) {
      mark = document.createElement("span");
      mark.className = "mentioned nav-mentioned";
      mark.textContent = "@";
      button.appendChild(mark);
    }
    mark.hidden = !mentioned;
    badge.textContent = total > 0 ? String(total) : "";
    badge.hidden = total <= 0;
    if (button.hasAttribute("aria-label")) { // the name is the label's: the count joins it
      if (!button.dataset.label) button.dataset.label = button.getAttribute("aria-label");
      const label = button.dataset.label + (total > 0 ? ", " + total + " unread" : "");
      button.setAttribute("aria-label", mentioned ? label + ", mentioned" : label);
      badge.setAttribute("aria-hidden", "true");
      mark.setAttribute("aria-hidden", "true");
    } else if (total > 0) { // the name is the content: say what the number is
      const unit = document.createElement("span");
      unit.className = "visually-hidden";
      unit.textContent = " unread";
      badge.appendChild(unit);
    }
  });
}
