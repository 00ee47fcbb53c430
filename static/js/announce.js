// The log tells of new messages only.
// role="log" is a polite live region: what goes into it is read out. Older messages brought
// by "Load older", and messages changed in place (an edit, a delete, the edit box, the
// sender's own copy coming back through the stream), are not news: the log is aria-busy
// while they go in. Chromium sends no live-region event for a change inside a busy region,
// and the busy flag is lifted only after the change has been taken in.

import { on } from "./dom.js";
import { log, elementOf } from "./page.js";

const QUIET_MS = 300; // how long the log stays aria-busy after a change that is not news
let quietTimer = null;

export function quietly() {
  const el = log();
  if (!el) return;
  el.setAttribute("aria-busy", "true");
  window.clearTimeout(quietTimer);
  quietTimer = window.setTimeout(() => {
    quietTimer = null;
    el.removeAttribute("aria-busy");
  }, QUIET_MS);
}

// htmx swaps something inside the log (not the log itself): a message's own actions, "Load
// older". (The stream's changes in place are quieted where they are placed: messages.js.)
on("htmx:beforeSwap", "announce", (evt) => {
  const el = log();
  const target = elementOf(evt.detail.target);
  if (el && target && target !== el && el.contains(target)) quietly();
});
