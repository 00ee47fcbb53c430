// The chat page's script: the entry point. Pages work without it; it only adds liveness and
// comfort. Each module does one job and registers its event handlers through dom.js, which
// runs them in its stated ORDER (the order of the imports below decides nothing); this file
// imports them all and starts the page.
//
// Module scripts run in order after the page is parsed, after htmx and its SSE extension
// (classic deferred scripts before this one), and before DOMContentLoaded. htmx itself sets
// the page up on DOMContentLoaded, in a listener added before ours: by the time start() runs,
// htmx has processed the page, and its events (htmx:load, htmx:sseBeforeMessage, ...) reach
// the listeners on the document, which are in place from the start.

import { on } from "./dom.js";
import { log } from "./page.js";
// The behaviours whose handlers need no start: they act on events only.
import "./announce.js"; // the log announces new messages only
import "./forms.js"; // errors of htmx forms; Enter sends
import "./layout.js"; // local times, day separators, runs
import "./menu.js"; // the conversations menu, message menus
import "./messages.js"; // placing messages
import "./newmessages.js"; // the "New messages" line, the jump button
import "./reactions.js"; // your own reactions, pressing them, the "Add reaction" palette
import "./roompanel.js"; // "Room details"
import "./sidebar.js"; // people, rooms, members
import "./stream.js"; // the event stream's dispatch table, the cursor, "Reconnecting…"
import "./typing.js"; // "… is typing"
// The behaviours that also start with the page.
import { restoreDraft, focusComposerWhenWide } from "./send.js";
import { undoPageAutofocus } from "./focus.js";
import { showNotificationState } from "./notify.js";
import { watchOlder } from "./older.js";
import { startReading } from "./read.js";
import { updateTitle } from "./badges.js";
import { startKeyboard } from "./keyboard.js";
import { showLinkedMessage } from "./replies.js";
import { startMentions } from "./mentions.js";
import { startSearch } from "./search.js";

document.documentElement.classList.add("js"); // for styles that only make sense with it

// In this order: the draft is back in the composer; the no-script autofocus is undone before
// the page scrolls and gives focus itself; the page opens at the "New messages" line (or the
// end, or the message its address names), and what is on screen then is read; the title
// counts what is left; the composer takes focus on a laptop, unless the page was opened at a
// message, which takes it (highlighted); last, the keyboard's one-stop log and lists. The
// composer's list of people and the search's status line are in place from the start.
function start() {
  restoreDraft();
  startMentions();
  startSearch();
  undoPageAutofocus();
  showNotificationState();
  if (log()) {
    watchOlder();
    startReading();
    updateTitle();
    focusComposerWhenWide();
    showLinkedMessage();
  }
  startKeyboard();
}

on("DOMContentLoaded", "main", start);
