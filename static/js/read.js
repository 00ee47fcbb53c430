// Read means seen: what the reader has seen of the open conversation, told to the server,
// and what is unread there (the "New messages" line and the jump button: newmessages.js).
//
// A message counts as read once it was on screen (at least half of it, or half the log, in
// the log's viewport) while the tab was visible. The page tells the server the highest seq
// seen (POST .../read with seq; a position only moves forward): soon after, and at once when
// the page goes away or out of sight. A page that goes away also leaves what it sent for
// the tab's next page, which sends it again and is told what that leaves unread: the next
// page may have been made before the first request arrived.

import { on } from "./dom.js";
import { post } from "./http.js";
import { chatRoot, log, isVisible, scrollToBottom, seqOf, listsMe } from "./page.js";
import { setUnread, setCounted, bumpUnread, setMentioned } from "./badges.js";
import {
  scrollToFirstUnread, moveNewMessagesLine, showJump, updateJump, jumpToNew,
} from "./newmessages.js";

const READ_DELAY_MS = 150;
const HANDOFF_KEY = "chat:read-handoff";
const HANDOFF_MAX_AGE_MS = 30000;
const onScreen = new Set(); // messages in the log's viewport, as the observer last said
let readSeq = 0; // the highest seq read in the open conversation (here, elsewhere, before)
let sentSeq = 0; // the highest seq this page has told the server
let shownSeq = 0; // the read position the page was made with
let readTimer = null;
let reading = false; // from start-up, until the reader leaves the room
let observer = null;
let wasVisible = isVisible();

// Start-up: watch the log, open at the "New messages" line (or the end), and what is on
// screen then is seen.
export function startReading() {
  const root = chatRoot();
  const el = log();
  if (!el) return;
  el.addEventListener("scroll", () => updateJump(readSeq), { passive: true });
  if (root && root.dataset.readUrl) {
    readSeq = sentSeq = shownSeq = parseInt(root.dataset.readSeq, 10) || 0;
    reading = true;
    if ("IntersectionObserver" in window) {
      observer = new IntersectionObserver(onIntersect, {
        root: el, threshold: [0, 0.25, 0.5, 0.75, 1],
      });
      el.querySelectorAll(".message[data-seq]").forEach((m) => observer.observe(m));
    }
    takeHandoff();
  }
  if (!window.location.hash && !scrollToFirstUnread()) scrollToBottom();
  lookNow();
}

// Once the page has scrolled to where it opens: what is on screen is seen.
function lookNow() {
  if (isVisible()) {
    collectOnScreen();
    noteSeen();
  }
  updateCurrentCount();
}

export function stopReading() {
  reading = false;
  window.clearTimeout(readTimer);
  readTimer = null;
  if (observer) observer.disconnect();
  onScreen.clear();
}

function watchMessages(content) {
  const el = log();
  if (!observer || !el || !content) return;
  const scope = content.contains(el) ? el : content;
  if (!el.contains(scope)) return;
  if (scope.matches && scope.matches(".message[data-seq]")) observer.observe(scope);
  scope.querySelectorAll(".message[data-seq]").forEach((m) => observer.observe(m));
}

function showsEnough(shown, box, height) {
  return shown > 0 && (shown >= height * 0.5 || shown >= box.height * 0.5);
}

function onIntersect(entries) {
  entries.forEach((entry) => {
    const box = entry.rootBounds || log().getBoundingClientRect();
    const shown = entry.isIntersecting ? entry.intersectionRect.height : 0;
    if (entry.target.isConnected && showsEnough(shown, box, entry.boundingClientRect.height)) {
      onScreen.add(entry.target);
    } else {
      onScreen.delete(entry.target);
    }
  });
  noteSeen();
}

// What is on screen this moment, without waiting for the observer's next report.
function collectOnScreen() {
  const el = log();
  if (!el) return;
  const box = el.getBoundingClientRect();
  el.querySelectorAll(".message[data-seq]").forEach((m) => {
    const r = m.getBoundingClientRect();
    const shown = Math.min(r.bottom, box.bottom) - Math.max(r.top, box.top);
    if (showsEnough(shown, box, r.height)) onScreen.add(m);
    else onScreen.delete(m);
  });
}

// What is on screen now has been seen, if the tab is (or, `anyway`, was just) visible.
// Only others' messages move the position: one's own are never unread.
function noteSeen(anyway) {
  if (!reading || !(anyway || isVisible())) return;
  const me = chatRoot().dataset.me;
  let high = readSeq;
  onScreen.forEach((m) => {
    if (!m.isConnected) onScreen.delete(m);
    else if (m.dataset.sender !== me) high = Math.max(high, seqOf(m));
  });
  if (high > readSeq) {
    readSeq = high;
    updateCurrentCount();
    scheduleRead();
  }
  updateJump(readSeq);
}

function scheduleRead() {
  if (readTimer) return;
  readTimer = window.setTimeout(() => {
    readTimer = null;
    sendRead();
  }, READ_DELAY_MS);
}

function sendRead() {
  const root = chatRoot();
  if (!reading || !root || readSeq <= sentSeq) return;
  const seq = readSeq;
  const before = sentSeq;
  sentSeq = seq;
  postRead(root.dataset.readUrl, seq, false).then(
    (response) => {
      if (response.status === 404 || response.status === 403) stopReading(); // not ours now
      else if (!response.ok && sentSeq === seq) sentSeq = before; // sent again later
    },
    () => {
      if (sentSeq === seq) sentSeq = before;
    }
  );
}

// The page is going away or out of sight: what is on screen was seen; say so now. Whatever
// this page has sent is left for the next: it may have been made before it arrived.
function flushReads() {
  if (!reading) return;
  if (wasVisible) {
    collectOnScreen();
    noteSeen(true);
  }
  window.clearTimeout(readTimer);
  readTimer = null;
  sendRead();
  const root = chatRoot();
  if (sentSeq > shownSeq) handOff(root.dataset.conversation, root.dataset.readUrl, sentSeq);
}

function postRead(url, seq, wantCount) {
  return post(url, {
    form: { seq: String(seq) },
    accept: wantCount ? "application/json" : "",
    keepalive: true, // it outlives the page it was sent from
  });
}

function handOff(conversation, url, seq) {
  try {
    const handoff = { conversation, url, seq, at: Date.now() };
    window.sessionStorage.setItem(HANDOFF_KEY, JSON.stringify(handoff));
  } catch (e) { /* storage unavailable: the read still goes out */ }
}

function takeHandoff() {
  let handoff = null;
  try {
    handoff = JSON.parse(window.sessionStorage.getItem(HANDOFF_KEY) || "null");
    window.sessionStorage.removeItem(HANDOFF_KEY);
  } catch (e) {
    return;
  }
  if (!handoff || !handoff.url || Date.now() - handoff.at > HANDOFF_MAX_AGE_MS) return;
  if (handoff.conversation === chatRoot().dataset.conversation) {
    readSeq = Math.max(readSeq, handoff.seq); // sent again below, should it be needed
    scheduleRead();
    moveNewMessagesLine(readSeq);
    return;
  }
  postRead(handoff.url, handoff.seq, true)
    .then((response) => (response.ok ? response.json() : null))
    .then((state) => {
      if (state) applyRead(handoff.conversation, state);
    })
    .catch(() => {});
}

// Whether the open conversation's count can be told from the page: its latest messages are
// here, and everything older than them has been read.
function canCountHere() {
  const el = log();
  if (!reading || !el || el.querySelector(".newer")) return false;
  const first = el.querySelector(".message[data-seq]");
  return !first || readSeq >= seqOf(first) - 1;
}

// (And whether one of those unread mentions you: its "@".)
export function updateCurrentCount() {
  const root = chatRoot();
  if (!root || !canCountHere()) return;
  let count = 0;
  let mentions = 0;
  log().querySelectorAll(".message[data-seq]").forEach((m) => {
    const others = m.dataset.sender !== root.dataset.me;
    if (others && seqOf(m) > readSeq && !m.classList.contains("deleted")) {
      count += 1;
      if (listsMe(m)) mentions += 1;
    }
  });
  setUnread(root.dataset.conversation, count);
  setMentioned(root.dataset.conversation, mentions > 0);
}

// Someone else's new message, placed in the open conversation.
export function arrivedHere(message, stuck) {
  if (isVisible()) {
    collectOnScreen();
    noteSeen();
  }
  if (canCountHere()) updateCurrentCount();
  else bumpUnread(message.dataset.conversation, 1, message);
  if (!stuck && seqOf(message) > readSeq) showJump();
}

// A read event ({"key", "read_seq", "unread", "upto", "mentions"}), read here or in another
// tab.
export function onReadEvent(data) {
  const state = JSON.parse(data);
  applyRead(state.key, state);
}

// A conversation's read state (a read event's, or the answer to a read of ours).
function applyRead(conversation, state) {
  const root = chatRoot();
  if (root && reading && conversation === root.dataset.conversation) {
    readSeq = Math.max(readSeq, state.read_seq);
    sentSeq = Math.max(sentSeq, state.read_seq);
    if (canCountHere()) {
      updateCurrentCount();
      updateJump(readSeq);
      return;
    }
  }
  setCounted(conversation, state.unread, state.upto, state.mentions);
}

on("pagehide", "read", flushReads);

// Leaving the room (confirmed): its read position goes with the membership, and a read would
// be refused.
on("htmx:beforeRequest", "read", (evt) => {
  const elt = evt.detail.elt;
  if (elt && elt.classList && elt.classList.contains("leave-room")) stopReading();
});

on("visibilitychange", "read", () => {
  if (isVisible()) {
    wasVisible = true;
    collectOnScreen();
    noteSeen();
  } else {
    flushReads(); // it was visible until now
    wasVisible = false;
  }
});

on("htmx:load", "read", (evt) => watchMessages(evt.detail.elt));

on("click", "read", (evt) => {
  if (evt.target.closest && evt.target.closest("#jump-new")) jumpToNew(readSeq);
});
