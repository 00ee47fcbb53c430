// The sidebar's live entries: people (status, away message), group rooms (new, renamed,
// muted), a room's "Members", and which entry is the open conversation.

import { on } from "./dom.js";
import { chatRoot, parseFragment, placeSorted } from "./page.js";
import { dmKey } from "./keys.js";
import { keepBadge, updateTitle } from "./badges.js";
import { stopReading } from "./read.js";

export function roomEntry(conversation) {
  return document.querySelector('#rooms [data-conversation="' + CSS.escape(conversation) + '"]');
}

// The open conversation's entry keeps its badge: what is unread there is what has not been
// seen yet (see "Read means seen").
function markCurrent() {
  const root = chatRoot();
  const current = root && root.dataset.conversation;
  document.querySelectorAll("#people [data-conversation]").forEach((entry) => {
    const here = entry.dataset.conversation === current;
    entry.classList.toggle("current", here);
    if (here) entry.setAttribute("aria-current", "page");
    else entry.removeAttribute("aria-current");
  });
}

// Someone came, went or set an away message: their entry comes, the same for everyone.
// It gets your parts here (conversation key, unread count, "(you)") and moves to its list.
export function placePerson(html) {
  const root = chatRoot();
  const entry = parseFragment(html);
  if (!root || !entry || !entry.id) return;
  const link = entry.querySelector("a");
  link.dataset.conversation = dmKey(root.dataset.meId, entry.dataset.userId);
  const old = document.getElementById(entry.id);
  keepBadge(old, entry);
  if (entry.dataset.userId === root.dataset.meId) entry.querySelector(".you").hidden = false;
  const list = document.querySelector(
    entry.dataset.status === "offline" ? "#people .people-list.offline" : "#people .people-list.online"
  );
  if (!list) return;
  placeSorted(list, entry, "data-username", old);
  markCurrent();
  updatePeerAway();
  updateTitle();
  markOwnStatus();
}

// The away note at the top of a DM follows the peer's entry in the sidebar.
function updatePeerAway() {
  const root = chatRoot();
  const note = document.getElementById("peer-away");
  if (!root || !note || !root.dataset.peer) return;
  const entry = document.querySelector(
    '#people [data-username="' + CSS.escape(root.dataset.peer) + '"]'
  );
  const away = entry ? entry.dataset.away : "";
  note.textContent = away ? "Away: " + away : "";
  note.hidden = !away;
}

// Your own status dot says "reconnecting" while the event stream is down (stream.js marks
// the page's root .reconnecting).
export function markOwnStatus() {
  const root = chatRoot();
  const entry = root && document.getElementById("person-" + root.dataset.meId);
  const dot = entry && entry.querySelector(".dot");
  if (!dot) return;
  if (root.classList.contains("reconnecting")) {
    dot.dataset.connection = "reconnecting";
    dot.title = "reconnecting";
  } else {
    delete dot.dataset.connection;
    dot.title = entry.dataset.status || "";
  }
}

// A group room's entry: new in your sidebar (you were added) or renamed. Its count stays.
export function placeRoom(html) {
  const root = chatRoot();
  const entry = parseFragment(html);
  const list = document.getElementById("rooms");
  if (!root || !entry || !entry.id || !list) return;
  const link = entry.querySelector("a");
  const old = document.getElementById(entry.id);
  keepBadge(old, entry);
  const oldLink = old && old.querySelector("a");
  if (oldLink && oldLink.dataset.muted) link.dataset.muted = oldLink.dataset.muted;
  placeSorted(list, entry, "data-name", old);
  if (link.dataset.conversation === root.dataset.conversation) {
    const title = document.getElementById("conversation-title");
    const topic = document.getElementById("room-topic");
    const name = entry.dataset.name;
    if (title && title.textContent !== name) {
      document.title = document.title.replace(title.textContent, name);
      title.textContent = name;
    }
    if (topic) {
      topic.textContent = link.dataset.topic || "";
      topic.hidden = !link.dataset.topic;
    }
  }
  markCurrent();
  updateTitle();
}

// Someone joined or left a room: its "Members" list, and if it was you who left, your
// sidebar and, when the room is open here, its page.
export function placeMember(html) {
  const root = chatRoot();
  const entry = parseFragment(html);
  if (!root || !entry || !entry.id) return;
  const key = entry.dataset.conversation;
  const here = key === root.dataset.conversation;
  const list = document.getElementById("members");
  const old = document.getElementById(entry.id);
  if (entry.hasAttribute("data-left")) {
    if (old) old.remove();
    if (entry.dataset.userId !== root.dataset.meId) return;
    const mine = roomEntry(key);
    if (mine) mine.closest("li").remove();
    updateTitle();
    if (here) leftThisRoom();
  } else if (here && entry.dataset.userId === root.dataset.meId && !document.getElementById("composer")) {
    window.location.reload(); // added back to the room open here: it opens again
  } else if (here && list) {
    placeSorted(list, entry, "data-username", old);
  }
}

function leftThisRoom() {
  stopReading(); // nothing more is read here
  // (A "Leave room" on its way stays: its answer opens the next page.)
  document.querySelectorAll("#composer, #room-panel form:not(.htmx-request), #log .load-older")
    .forEach((el) => el.remove());
  const notice = document.createElement("p");
  notice.className = "closed-notice";
  notice.setAttribute("role", "status");
  notice.textContent = "You are no longer a member of this room.";
  const conversation = document.querySelector("main.conversation");
  if (conversation) conversation.appendChild(notice);
}

// Muting a group room: the room page's toggle came back in its new state, and the sidebar's
// entry follows it.
on("htmx:load", "sidebar", (evt) => {
  const content = evt.detail.elt;
  if (!content || !content.matches || !content.matches(".mute-form")) return;
  const entry = roomEntry(content.dataset.conversation);
  if (entry) entry.dataset.muted = content.dataset.muted;
});
