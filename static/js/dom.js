// The page's DOM events: ONE listener per event type, and a table of handlers behind it.
// A behaviour registers with on(type, owner, handler); the first registration of a type
// installs its one listener (on the document; pagehide on the window), and every event runs
// that type's handlers in the order of ORDER below, whatever order the modules were imported
// in. An owner's own handlers for one type run in the order it registered them.

// Who sees an event first. Most handlers watch different targets and could run in any order;
// the pairs that do depend on each other are why the list reads as it does:
// - menu first: a tap outside the open conversations menu closes it and goes no further.
//   Clicks are dispatched in the capture phase for this, before any element sees them.
// - focus before forms and keyboard: a key or pointer marks that the person acts (focus is
//   theirs from then on), and a focusin undoes the page's own autofocus before the keyboard's
//   handler makes the focused message the active one.
// - mentions before forms, replies and keyboard (keydown): while the composer's list of people
//   is open, Enter and Tab insert a name (they do not send, nor move focus), Escape closes the
//   list (it does not cancel a reply), the arrow keys move in it; each marks the key handled.
// - forms before keyboard: Enter in a text box submits its form and is marked as handled.
// - layout before read, newmessages and sidebar (htmx:load): times and day separators are in
//   place before read watches what came in and newmessages keeps one "New messages" line.
// - read before notify (visibilitychange): what was on screen is read, then the permission
//   shown again.
// - reactions, replies and roompanel before keyboard (keydown): Escape closes the palette, cancels
//   a reply or closes "Room details", and the arrow keys move in the palette; each marks the key
//   handled, and the keyboard's own Escape and arrows leave it alone. So does search: Escape
//   in the search field or its results closes them.
export const ORDER = [
  "menu", // menu.js
  "focus", // focus.js
  "mentions", // mentions.js
  "forms", // forms.js
  "announce", // announce.js
  "layout", // layout.js
  "older", // older.js
  "stream", // stream.js
  "read", // read.js
  "newmessages", // newmessages.js
  "send", // send.js
  "typing", // typing.js
  "sidebar", // sidebar.js
  "notify", // notify.js
  "reactions", // reactions.js
  "replies", // replies.js
  "roompanel", // roompanel.js
  "search", // search.js
  "keyboard", // keyboard.js
  "main", // main.js
];

const CAPTURE = new Set(["click"]); // see "menu first" above
const ON_WINDOW = new Set(["pagehide"]);
const tables = new Map(); // event type -> [{rank, handler}], sorted by rank

export function on(type, owner, handler) {
  const rank = ORDER.indexOf(owner);
  if (rank < 0) throw new Error(`dom.on: "${owner}" is not in ORDER`);
  let table = tables.get(type);
  if (!table) {
    table = [];
    tables.set(type, table);
    const target = ON_WINDOW.has(type) ? window : document;
    target.addEventListener(type, (evt) => dispatch(table, evt), CAPTURE.has(type));
  }
  table.push({ rank, handler });
  table.sort((a, b) => a.rank - b.rank); // stable: an owner's handlers keep their order
}

function dispatch(table, evt) {
  for (const { handler } of table) {
    try {
      handler(evt);
    } catch (error) {
      report(error); // one failing behaviour does not stop the others
    }
    if (evt.cancelBubble) return; // stopPropagation(): the rest never see it, as before
  }
}

function report(error) {
  if (typeof window.reportError === "function") window.reportError(error);
  else window.setTimeout(() => { throw error; });
}
