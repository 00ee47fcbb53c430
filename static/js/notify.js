// Desktop notifications.
// Asked for by a button, never on its own. A direct message, a message in a group room that
// is not muted, or a mention of you anywhere (muted rooms included: the server's data-notify
// names whom a post or an edit tells of one, never anyone twice) notifies, unless it is in
// the conversation open in a visible tab. One tab of the browser shows it: one that is
// looking at that conversation says so to the others (BroadcastChannel), and the others take
// a lock on the message (a Web Lock); a message told of once is not told of again (an edit
// that mentions you in a message you were told of as it came).

import { on } from "./dom.js";
import { chatRoot, isVisible, listsMe } from "./page.js";
import { PUBLIC, isDirect, pageOf } from "./keys.js";
import { roomEntry } from "./sidebar.js";

const NOTIFY_WAIT_MS = 250; // for a tab that is looking at it to say so
const NOTIFY_BODY_MAX = 200;
const TOLD_KEY = "chat:told";
const TOLD_KEPT = 200; // the ids of the last messages told of, in this browser
const lookedAt = new Set(); // message ids another tab of this browser shows
const otherTabs = "BroadcastChannel" in window ? new BroadcastChannel("chat-notices") : null;
if (otherTabs) {
  otherTabs.onmessage = (evt) => {
    if (evt.data && evt.data.looking) lookedAt.add(evt.data.looking);
  };
}

export function showNotificationState() {
  const box = document.getElementById("notifications");
  if (!box || !("Notification" in window)) return;
  const permission = Notification.permission;
  box.hidden = false;
  document.getElementById("enable-notifications").hidden = permission !== "default";
  document.getElementById("notifications-state").textContent =
    permission === "granted" ? "Notifications on" :
    permission === "denied" ? "Notifications are blocked: allow them in the browser's settings for this site." :
    "";
}

on("click", "notify", (evt) => {
  if (!evt.target.closest || !evt.target.closest("#enable-notifications")) return;
  Notification.requestPermission().then(showNotificationState, showNotificationState);
});

// Permission may have changed in the browser's settings meanwhile.
on("visibilitychange", "notify", showNotificationState);

// Whether this message is one to be told of (the public room: only when it mentions you).
// An edit is news only when it mentions you (messages.js asks of nothing else).
function worthNotifying(message) {
  const conversation = message.dataset.conversation;
  if (listsMe(message, "notify")) return true;
  if (!message.hasAttribute("data-new")) return false;
  if (conversation === PUBLIC) return false;
  if (isDirect(conversation)) return true;
  const entry = roomEntry(conversation);
  return !(entry && entry.dataset.muted === "true");
}

function conversationUrl(message) {
  const conversation = message.dataset.conversation;
  const entry = document.querySelector(
    '#people a[data-conversation="' + CSS.escape(conversation) + '"]'
  );
  if (entry) return entry.getAttribute("href");
  return pageOf(conversation, message.dataset.sender);
}

function notificationTitle(message) {
  const conversation = message.dataset.conversation;
  const sender = message.dataset.sender;
  if (conversation === PUBLIC) return sender + " in Public room";
  if (isDirect(conversation)) return sender;
  const entry = roomEntry(conversation);
  const item = entry && entry.closest("li");
  return item && item.dataset.name ? sender + " in " + item.dataset.name : sender;
}

// Whether this browser told of the message `id` already; remembers that it has now.
function toldBefore(id) {
  try {
    const told = JSON.parse(window.localStorage.getItem(TOLD_KEY) || "[]");
    if (told.includes(id)) return true;
    told.push(id);
    window.localStorage.setItem(TOLD_KEY, JSON.stringify(told.slice(-TOLD_KEPT)));
  } catch (e) { /* storage unavailable: the lock still keeps tabs from telling twice */ }
  return false;
}

// Someone else's new message, or a change to one that mentions you, came through the stream.
export function notifyOf(message) {
  if (!("Notification" in window)) return;
  const root = chatRoot();
  const id = message.dataset.id;
  if (root && message.dataset.conversation === root.dataset.conversation && isVisible()) {
    if (otherTabs) otherTabs.postMessage({ looking: id }); // being looked at: nobody notifies
    return;
  }
  const bodyEl = message.querySelector(".body");
  const text = bodyEl ? bodyEl.textContent.trim() : "";
  if (Notification.permission !== "granted" || !worthNotifying(message)) return;
  const body = text.length > NOTIFY_BODY_MAX ? text.slice(0, NOTIFY_BODY_MAX - 1) + "…" : text;
  const title = notificationTitle(message);
  const url = conversationUrl(message);
  const conversation = message.dataset.conversation;
  window.setTimeout(() => {
    if (lookedAt.has(id)) return;
    onlyOneTab("chat-notice-" + id, () => {
      if (toldBefore(id)) return;
      const notice = new Notification(title, { body, tag: "msg-" + id });
      notice.onclick = () => {
        window.focus();
        notice.close();
        openFromNotice(conversation, url, id);
      };
    });
  }, NOTIFY_WAIT_MS);
}

// Runs `show` in one tab of this browser only, whichever takes the lock first.
function onlyOneTab(name, show) {
  if (!navigator.locks) {
    show();
    return;
  }
  navigator.locks.request(name, { ifAvailable: true }, (lock) => {
    if (!lock) return null;
    show();
    return new Promise((resolve) => { window.setTimeout(resolve, 10000); });
  });
}

function openFromNotice(conversation, url, id) {
  const root = chatRoot();
  const here = document.getElementById("msg-" + id);
  if (root && conversation === root.dataset.conversation && here) {
    here.scrollIntoView({ block: "center" });
    return;
  }
  window.location.assign(url);
}
