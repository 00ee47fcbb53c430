// "Load older": earlier messages come in above without moving what the reader is looking at;
// scrolling to the top loads them, and a keyboard that pressed it lands on the newest of them.

import { on } from "./dom.js";
import { log, messagesIn, elementOf } from "./page.js";

let heightBeforeOlder = null; // the log's height below its scroll position, before they came
let olderFocus = null; // "Load older" had focus: after it, the newest of the older messages

// Start-up: scrolling the log to its top loads the older messages.
export function watchOlder() {
  const el = log();
  if (el) el.addEventListener("scroll", loadOlderWhenAtTop, { passive: true });
}

function loadOlderWhenAtTop(evt) {
  const el = evt.target;
  if (el.id !== "log" || el.scrollTop > 20) return;
  const older = el.querySelector(".load-older:not(.htmx-request)");
  // Tabbing to "Load older" scrolls it into view too: then Enter loads, not the scroll.
  if (older && older !== document.activeElement) htmx.trigger(older, "click");
}

on("htmx:beforeSwap", "older", (evt) => {
  if (evt.detail.elt.classList && evt.detail.elt.classList.contains("load-older")) {
    heightBeforeOlder = log().scrollHeight - log().scrollTop;
  }
  const el = log();
  const target = elementOf(evt.detail.target);
  if (!el || !target || target === el || !el.contains(target)) return;
  if (target.classList.contains("load-older") && document.activeElement === target) {
    olderFocus = messagesIn(el)[0] || null;
  }
});

on("htmx:afterSettle", "older", () => {
  if (heightBeforeOlder !== null) {
    log().scrollTop = log().scrollHeight - heightBeforeOlder;
    heightBeforeOlder = null;
  }
  if (!olderFocus) return;
  let next = olderFocus.previousElementSibling; // past any day separator or "New messages"
  while (next && !next.matches(".message, .load-older")) next = next.previousElementSibling;
  olderFocus = null;
  if (next) next.focus();
});
