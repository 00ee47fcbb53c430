// Unread badges: one per sidebar entry (Public room, rooms, people), their total in the page
// title, and on a phone on the menu button that hides the sidebar.

import { seqOf } from "./page.js";

const arrivals = new Map(); // conversation -> seqs of arrivals counted into its badge

export function badgeFor(conversation) {
  const entry = document.querySelector(
    '.people [data-conversation="' + CSS.escape(conversation) + '"]'
  );
  return entry ? entry.querySelector(".badge") : null;
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
// read event counted before it arrived still counts it (setCounted).
export function bumpUnread(conversation, by, message) {
  const badge = badgeFor(conversation);
  if (!badge) return;
  const seq = message ? seqOf(message) : 0;
  if (seq) {
    if (!arrivals.has(conversation)) arrivals.set(conversation, new Set());
    arrivals.get(conversation).add(seq);
  }
  setUnread(conversation, (parseInt(badge.textContent, 10) || 0) + by);
}

// The server's count: `unread` counts others' messages after the read position up to `upto`;
// those that arrived here since add to it.
export function setCounted(conversation, unread, upto) {
  const counted = arrivals.get(conversation);
  let later = 0;
  if (counted) {
    counted.forEach((seq) => {
      if (seq > upto) later += 1;
      else counted.delete(seq);
    });
  }
  setUnread(conversation, unread + later);
}

// A sidebar entry that comes again (a live "person" or "room" event) keeps its count here.
export function keepBadge(old, entry) {
  const oldBadge = old && old.querySelector(".badge");
  const badge = entry.querySelector(".badge");
  if (!oldBadge || !badge) return;
  badge.textContent = oldBadge.textContent;
  badge.hidden = oldBadge.hidden;
  badge.setAttribute("aria-label", oldBadge.getAttribute("aria-label") || "");
}

export function updateTitle() {
  let total = 0;
  document.querySelectorAll(".people .badge:not([hidden])").forEach((badge) => {
    total += parseInt(badge.textContent, 10) || 0;
  });
  const base = document.title.replace(/^\(\d+\) /, "");
  document.title = total > 0 ? "(" + total + ") " + base : base;
  updateMenuBadge(total);
}

// On a phone the sidebar hides behind the menu button (.nav-open): it shows the total too.
function updateMenuBadge(total) {
  document.querySelectorAll(".nav-open").forEach((button) => {
    let badge = button.querySelector(".nav-badge");
    if (!badge) {
      badge = document.createElement("span");
      badge.className = "badge nav-badge";
      button.appendChild(badge);
    }
    badge.textContent = total > 0 ? String(total) : "";
    badge.hidden = total <= 0;
    if (button.hasAttribute("aria-label")) { // the name is the label's: the count joins it
      if (!button.dataset.label) button.dataset.label = button.getAttribute("aria-label");
      const label = button.dataset.label;
      button.setAttribute("aria-label", total > 0 ? label + ", " + total + " unread" : label);
      badge.setAttribute("aria-hidden", "true");
    } else if (total > 0) { // the name is the content: say what the number is
      const unit = document.createElement("span");
      unit.className = "visually-hidden";
      unit.textContent = " unread";
      badge.appendChild(unit);
    }
  });
}
