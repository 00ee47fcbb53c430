// The event stream's one door: ONE htmx:sseBeforeMessage listener and ONE table from event
// name to handler. The page places every event itself (the sse-swap element swaps nothing).
// It also keeps the stream's cursor on sse-connect, and says "Reconnecting…" while the
// stream is down.

import { on } from "./dom.js";
import { chatRoot } from "./page.js";
import { placeMessage } from "./messages.js";
import { placePerson, placeRoom, placeMember, markOwnStatus } from "./sidebar.js";
import { onReadEvent } from "./read.js";
import { showTyping } from "./typing.js";
import { holdFocus } from "./focus.js";

// Event name -> what the page does with its data.
const HANDLERS = new Map([
  ["message", (data) => placeMessage(data, true)],
  ["person", placePerson],
  ["read", onReadEvent], // read here or in another tab
  ["typing", showTyping],
  ["room", placeRoom],
  ["member", placeMember],
  ["reload", () => window.location.reload()], // too far behind to catch up: a fresh page
  ["signed-out", () => window.location.assign("/login")], // in any tab
  ["live", () => streamLive()], // caught up after (re)connecting
]);

on("htmx:sseBeforeMessage", "stream", (evt) => {
  evt.preventDefault();
  const event = evt.detail;
  keepCursor(event.lastEventId);
  const handle = HANDLERS.get(event.type);
  // An event may replace what has focus (a message, a sidebar entry): focus.js notes where
  // it is before, and puts it back on the new copy after.
  const release = holdFocus();
  try {
    if (handle) handle(event.data);
  } finally {
    release();
  }
});

// A fresh EventSource (after a CLOSED one) sends no Last-Event-ID: keep the cursor here, in
// the ?after= of the address the server gave.
function keepCursor(lastEventId) {
  const root = chatRoot();
  const address = root && root.getAttribute("sse-connect");
  if (!lastEventId || !address) return;
  const url = new URL(address, window.location.href);
  url.searchParams.set("after", lastEventId);
  root.setAttribute("sse-connect", url.pathname + url.search);
}

// --- Connection state ---------------------------------------------------------------
// When the event stream drops, a notice (role="status") says so and your own status dot
// shows it, until the stream is back and has caught up (its `live` event).

const RECONNECTING_AFTER_MS = 1000; // a stream that is back at once is not worth a notice
let connectionTimer = null;
let connectionDown = false;

function streamLost() {
  if (connectionDown || connectionTimer) return;
  connectionTimer = window.setTimeout(() => {
    connectionTimer = null;
    showConnection(true);
  }, RECONNECTING_AFTER_MS);
}

function streamLive() {
  window.clearTimeout(connectionTimer);
  connectionTimer = null;
  if (connectionDown) showConnection(false);
}

function showConnection(down) {
  connectionDown = down;
  const notice = document.getElementById("connection-notice");
  if (notice) notice.textContent = down ? "Reconnecting…" : "";
  const root = chatRoot();
  if (root) root.classList.toggle("reconnecting", down);
  markOwnStatus();
}

on("htmx:sseError", "stream", streamLost);
