// What the page knows of the server's conversation keys and addresses, all in one place.
// The server makes these (webapp/rules/keys.py, and its routes); the page repeats them only
// where a fragment or event does not say them yet (see each function).

// The public room's key, as every fragment's data-conversation names it.
export const PUBLIC = "public";

// Whether `key` names a direct conversation. (Asked only of a message's data-conversation,
// to decide how to tell of it: a fragment that said its kind would spare this.)
export function isDirect(key) {
  return key.indexOf("dm:") === 0;
}

// The key of your conversation with someone, as the server makes it. A live "person" event
// is rendered once for everyone, so its entry comes without the viewer's key.
export function dmKey(myId, theirId) {
  return "dm:" + [myId, theirId].sort().join(":");
}

// A conversation's page, for a message whose conversation has no entry in the sidebar (a
// direct message from someone not listed there). A group room's key is its id.
export function pageOf(key, sender) {
  if (key === PUBLIC) return "/rooms/public";
  if (isDirect(key)) return "/dm/" + encodeURIComponent(sender);
  return "/rooms/" + encodeURIComponent(key);
}
