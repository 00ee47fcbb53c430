// The chat page's behaviour: placing live messages, the composer, scrolling, unread badges.
// Pages work without it; this file only adds liveness and comfort.
(function () {
  "use strict";

  const NEAR_BOTTOM_PX = 80;

  document.documentElement.classList.add("js"); // for styles that only make sense with it

  function chatRoot() {
    return document.querySelector(".chat");
  }

  function log() {
    return document.getElementById("log");
  }

  function isNearBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;
  }

  function scrollToBottom() {
    const el = log();
    if (el) el.scrollTop = el.scrollHeight;
  }

  function parseFragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function swapSpec(style) {
    return { swapStyle: style, swapDelay: 0, settleDelay: 0 };
  }

  // --- Unread badges and the page title -----------------------------------

  function badgeFor(conversation) {
    const entry = document.querySelector(
      '.people [data-conversation="' + CSS.escape(conversation) + '"]'
    );
    return entry ? entry.querySelector(".badge") : null;
  }

  function setUnread(conversation, count) {
    const badge = badgeFor(conversation);
    if (!badge) return;
    badge.textContent = count > 0 ? String(count) : "";
    badge.hidden = count <= 0;
    badge.setAttribute("aria-label", count + " unread");
    updateTitle();
  }

  function updateTitle() {
    let total = 0;
    document.querySelectorAll(".people .badge:not([hidden])").forEach(function (badge) {
      total += parseInt(badge.textContent, 10) || 0;
    });
    const base = document.title.replace(/^\(\d+\) /, "");
    document.title = total > 0 ? "(" + total + ") " + base : base;
    updateMenuBadge(total);
  }

  // On a phone the sidebar hides behind the menu button (.nav-open): it shows the total too.
  function updateMenuBadge(total) {
    document.querySelectorAll(".nav-open").forEach(function (button) {
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

  // --- Messages -------------------------------------------------------------

  // One place for every message fragment, from the composer or the stream. Idempotent by id:
  // a message already on the page is replaced, never doubled.
  function placeMessage(html, fromStream) {
    const incoming = parseFragment(html);
    if (!incoming || !incoming.id) return;
    const root = chatRoot();
    const existing = document.getElementById(incoming.id);
    const here = root && incoming.dataset.conversation === root.dataset.conversation;
    if (existing) {
      const editing = existing.classList.contains("editing");
      if (!editing || incoming.classList.contains("deleted")) {
        htmx.swap(existing, html, swapSpec("outerHTML"));
      }
      if (here) updateCurrentCount(); // a deleted message is no longer unread
      return;
    }
    const isNew = !incoming.querySelector(".edited") && !incoming.classList.contains("deleted");
    const mine = incoming.dataset.sender === (root && root.dataset.me);
    const el = log();
    if (fromStream && isNew && !mine) notifyOf(incoming);
    if (here && el && !el.querySelector(".newer")) {
      const stick = isNearBottom(el) || !fromStream;
      const empty = el.querySelector(".empty");
      if (empty) empty.remove();
      if (fromStream && mine) claimPending(incoming); // our own, back before our POST's answer
      insertInOrder(el, incoming, html);
      if (stick) scrollToBottom();
      if (fromStream) {
        clearTyping(incoming.dataset.sender);
        if (isNew && !mine) arrivedHere(incoming, stick);
      }
    } else if (fromStream && isNew && !mine) {
      bumpUnread(incoming.dataset.conversation, 1, incoming);
    }
  }

  // A message that arrives late (a reconnect's catch-up, or a reply that crossed one's own
  // send) goes where the server's order puts it, not simply at the end (before any of our
  // own still being sent, which stay last).
  function insertInOrder(el, incoming, html) {
    const key = incoming.dataset.order || "";
    const later = Array.from(el.querySelectorAll(":scope > .message")).find(function (other) {
      return other.classList.contains("pending") || (other.dataset.order || "") > key;
    });
    if (later) htmx.swap(later, html, swapSpec("beforebegin"));
    else htmx.swap(el, html, swapSpec("beforeend"));
  }

  // One more unread in a conversation's badge; `message` (by its seq) is remembered, so that a
  // read event counted before it arrived still counts it (applyRead).
  function bumpUnread(conversation, by, message) {
    const badge = badgeFor(conversation);
    if (!badge) return;
    const seq = message ? parseInt(message.dataset.seq, 10) || 0 : 0;
    if (seq) {
      if (!arrivals.has(conversation)) arrivals.set(conversation, new Set());
      arrivals.get(conversation).add(seq);
    }
    setUnread(conversation, (parseInt(badge.textContent, 10) || 0) + by);
  }

  function postQuietly(url) {
    const body = document.body.getAttribute("hx-headers");
    const headers = body ? JSON.parse(body) : {};
    headers["HX-Request"] = "true";
    fetch(url, { method: "POST", headers: headers, credentials: "same-origin" }).catch(
      function () {}
    );
  }

  // --- Presence ------------------------------------------------------------------

  // The open conversation's entry keeps its badge: what is unread there is what has not been
  // seen yet (see "Read means seen").
  function markCurrent() {
    const root = chatRoot();
    const current = root && root.dataset.conversation;
    document.querySelectorAll("#people [data-conversation]").forEach(function (entry) {
      const here = entry.dataset.conversation === current;
      entry.classList.toggle("current", here);
      if (here) entry.setAttribute("aria-current", "page");
      else entry.removeAttribute("aria-current");
    });
  }

  // The key of your conversation with someone, as the server makes it.
  function dmKey(theirId) {
    const mine = chatRoot().dataset.meId;
    return "dm:" + [mine, theirId].sort().join(":");
  }

  // Someone came, went or set an away message: their entry comes, the same for everyone.
  // It gets your parts here (conversation key, unread count, "(you)") and moves to its list.
  function placePerson(html) {
    const root = chatRoot();
    const entry = parseFragment(html);
    if (!root || !entry || !entry.id) return;
    const link = entry.querySelector("a");
    link.dataset.conversation = dmKey(entry.dataset.userId);
    const old = document.getElementById(entry.id);
    const oldBadge = old && old.querySelector(".badge");
    const badge = entry.querySelector(".badge");
    if (oldBadge && badge) {
      badge.textContent = oldBadge.textContent;
      badge.hidden = oldBadge.hidden;
      badge.setAttribute("aria-label", oldBadge.getAttribute("aria-label") || "");
    }
    if (entry.dataset.userId === root.dataset.meId) entry.querySelector(".you").hidden = false;
    const list = document.querySelector(
      entry.dataset.status === "offline" ? "#people .people-list.offline" : "#people .people-list.online"
    );
    if (!list) return;
    if (old) old.remove();
    const name = entry.dataset.username.toLowerCase();
    const after = Array.from(list.children).find(function (other) {
      return (other.dataset.username || "").toLowerCase() > name;
    });
    if (after) htmx.swap(after, entry.outerHTML, swapSpec("beforebegin"));
    else htmx.swap(list, entry.outerHTML, swapSpec("beforeend"));
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

  // --- Rooms and their members ---------------------------------------------------

  // Places `entry` in `list` by `attr` (ignoring case), replacing `old` if there is one.
  function placeSorted(list, entry, attr, old) {
    if (old) old.remove();
    const name = (entry.getAttribute(attr) || "").toLowerCase();
    const after = Array.from(list.children).find(function (other) {
      return (other.getAttribute(attr) || "").toLowerCase() > name;
    });
    if (after) htmx.swap(after, entry.outerHTML, swapSpec("beforebegin"));
    else htmx.swap(list, entry.outerHTML, swapSpec("beforeend"));
  }

  // A group room's entry: new in your sidebar (you were added) or renamed. Its count stays.
  function placeRoom(html) {
    const root = chatRoot();
    const entry = parseFragment(html);
    const list = document.getElementById("rooms");
    if (!root || !entry || !entry.id || !list) return;
    const link = entry.querySelector("a");
    const old = document.getElementById(entry.id);
    const oldBadge = old && old.querySelector(".badge");
    const badge = entry.querySelector(".badge");
    if (oldBadge && badge) {
      badge.textContent = oldBadge.textContent;
      badge.hidden = oldBadge.hidden;
      badge.setAttribute("aria-label", oldBadge.getAttribute("aria-label") || "");
    }
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
  function placeMember(html) {
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
      const mine = document.querySelector('#rooms [data-conversation="' + CSS.escape(key) + '"]');
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
    document.querySelectorAll("#composer, #room-panel form, #log .load-older").forEach(
      function (el) { el.remove(); }
    );
    const notice = document.createElement("p");
    notice.className = "closed-notice";
    notice.setAttribute("role", "status");
    notice.textContent = "You are no longer a member of this room.";
    const conversation = document.querySelector("main.conversation");
    if (conversation) conversation.appendChild(notice);
  }

  // --- Typing ---------------------------------------------------------------

  const TYPING_SHOW_MS = 6000;
  const TYPING_SEND_MS = 3000;
  const typists = new Map(); // username -> timer

  function showTyping(html) {
    const notice = parseFragment(html);
    const root = chatRoot();
    if (!notice || !root || notice.dataset.conversation !== root.dataset.conversation) return;
    const name = notice.dataset.username;
    if (typists.has(name)) window.clearTimeout(typists.get(name));
    typists.set(name, window.setTimeout(function () { clearTyping(name); }, TYPING_SHOW_MS));
    renderTyping();
  }

  function clearTyping(name) {
    if (!typists.has(name)) return;
    window.clearTimeout(typists.get(name));
    typists.delete(name);
    renderTyping();
  }

  function renderTyping() {
    const slot = document.getElementById("typing");
    if (!slot) return;
    const names = Array.from(typists.keys());
    slot.textContent =
      names.length === 0 ? "" :
      names.length === 1 ? names[0] + " is typing…" :
      names.join(", ") + " are typing…";
  }

  let lastTypingSent = 0;

  function noteTyping(field) {
    const now = Date.now();
    if (now - lastTypingSent < TYPING_SEND_MS || field.value.trim() === "") return;
    lastTypingSent = now;
    postQuietly(field.dataset.typingUrl);
  }

  // --- The event stream -----------------------------------------------------

  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    evt.preventDefault();
    const event = evt.detail;
    const root = chatRoot();
    if (event.lastEventId && root) {
      // A fresh EventSource (after a CLOSED one) sends no Last-Event-ID: keep the cursor here.
      root.setAttribute("sse-connect", "/events?after=" + encodeURIComponent(event.lastEventId));
    }
    if (event.type === "message") placeMessage(event.data, true);
    else if (event.type === "person") placePerson(event.data);
    else if (event.type === "read") onReadEvent(event.data); // read here or in another tab
    else if (event.type === "typing") showTyping(event.data);
    else if (event.type === "room") placeRoom(event.data);
    else if (event.type === "member") placeMember(event.data);
    else if (event.type === "reload") window.location.reload();
    else if (event.type === "signed-out") window.location.assign("/login"); // in any tab
    else if (event.type === "live") streamLive(); // caught up after (re)connecting
  });

  // --- Read means seen ------------------------------------------------------------
  // A message counts as read once it was on screen (at least half of it, or half the log, in
  // the log's viewport) while the tab was visible. The page tells the server the highest seq
  // seen (POST .../read with seq; a position only moves forward): soon after, and at once when
  // the page goes away or out of sight. A page that goes away also leaves what it sent for
  // the tab's next page, which sends it again and is told what that leaves unread: the next
  // page may have been made before the first request arrived.

  const READ_DELAY_MS = 150;
  const HANDOFF_KEY = "chat:read-handoff";
  const HANDOFF_MAX_AGE_MS = 30000;
  const onScreen = new Set(); // messages in the log's viewport, as the observer last said
  const arrivals = new Map(); // conversation -> seqs of arrivals counted into its badge
  let readSeq = 0; // the highest seq read in the open conversation (here, elsewhere, before)
  let sentSeq = 0; // the highest seq this page has told the server
  let shownSeq = 0; // the read position the page was made with
  let readTimer = null;
  let reading = false; // from start-up, until the reader leaves the room
  let observer = null;
  let wasVisible = document.visibilityState === "visible";

  function seqOf(message) {
    return parseInt(message.dataset.seq, 10) || 0;
  }

  function isVisible() {
    return document.visibilityState === "visible";
  }

  function startReading() {
    const root = chatRoot();
    const el = log();
    if (!root || !el || !root.dataset.readUrl) return;
    readSeq = sentSeq = shownSeq = parseInt(root.dataset.readSeq, 10) || 0;
    reading = true;
    if ("IntersectionObserver" in window) {
      observer = new IntersectionObserver(onIntersect, {
        root: el, threshold: [0, 0.25, 0.5, 0.75, 1],
      });
      el.querySelectorAll(".message[data-seq]").forEach(function (m) { observer.observe(m); });
    }
    takeHandoff();
  }

  // Once the page has scrolled to where it opens: what is on screen is seen.
  function lookNow() {
    if (isVisible()) {
      collectOnScreen();
      noteSeen();
    }
    updateCurrentCount();
  }

  function stopReading() {
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
    scope.querySelectorAll(".message[data-seq]").forEach(function (m) { observer.observe(m); });
  }

  function showsEnough(shown, box, height) {
    return shown > 0 && (shown >= height * 0.5 || shown >= box.height * 0.5);
  }

  function onIntersect(entries) {
    entries.forEach(function (entry) {
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
    el.querySelectorAll(".message[data-seq]").forEach(function (m) {
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
    onScreen.forEach(function (m) {
      if (!m.isConnected) onScreen.delete(m);
      else if (m.dataset.sender !== me) high = Math.max(high, seqOf(m));
    });
    if (high > readSeq) {
      readSeq = high;
      updateCurrentCount();
      scheduleRead();
    }
    updateJump();
  }

  function scheduleRead() {
    if (readTimer) return;
    readTimer = window.setTimeout(function () {
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
      function (response) {
        if (response.status === 404 || response.status === 403) stopReading(); // not ours now
        else if (!response.ok && sentSeq === seq) sentSeq = before; // sent again later
      },
      function () {
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
    const body = document.body.getAttribute("hx-headers");
    const headers = body ? JSON.parse(body) : {};
    headers["HX-Request"] = "true";
    if (wantCount) headers["Accept"] = "application/json";
    return fetch(url, {
      method: "POST",
      headers: headers,
      body: new URLSearchParams({ seq: String(seq) }),
      credentials: "same-origin",
      keepalive: true, // it outlives the page it was sent from
    });
  }

  function handOff(conversation, url, seq) {
    try {
      const handoff = { conversation: conversation, url: url, seq: seq, at: Date.now() };
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
    const root = chatRoot();
    if (handoff.conversation === root.dataset.conversation) {
      readSeq = Math.max(readSeq, handoff.seq); // sent again below, should it be needed
      scheduleRead();
      moveNewMessagesLine();
      return;
    }
    postRead(handoff.url, handoff.seq, true)
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (state) applyRead(handoff.conversation, state.read_seq, state.unread, state.upto);
      })
      .catch(function () {});
  }

  // Whether the open conversation's count can be told from the page: its latest messages are
  // here, and everything older than them has been read.
  function canCountHere() {
    const el = log();
    if (!reading || !el || el.querySelector(".newer")) return false;
    const first = el.querySelector(".message[data-seq]");
    return !first || readSeq >= seqOf(first) - 1;
  }

  function updateCurrentCount() {
    const root = chatRoot();
    if (!root || !canCountHere()) return;
    let count = 0;
    log().querySelectorAll(".message[data-seq]").forEach(function (m) {
      const others = m.dataset.sender !== root.dataset.me;
      if (others && seqOf(m) > readSeq && !m.classList.contains("deleted")) count += 1;
    });
    setUnread(root.dataset.conversation, count);
  }

  // Someone else's new message, placed in the open conversation.
  function arrivedHere(message, stuck) {
    if (isVisible()) {
      collectOnScreen();
      noteSeen();
    }
    if (canCountHere()) updateCurrentCount();
    else bumpUnread(message.dataset.conversation, 1, message);
    if (!stuck && seqOf(message) > readSeq) showJump();
  }

  // A read event ({"key", "read_seq", "unread", "upto"}): unread counts others' messages
  // after the read position up to `upto`; those that arrived here since add to it.
  function onReadEvent(data) {
    const state = JSON.parse(data);
    applyRead(state.key, state.read_seq, state.unread, state.upto);
  }

  function applyRead(conversation, seq, unread, upto) {
    const root = chatRoot();
    if (root && reading && conversation === root.dataset.conversation) {
      readSeq = Math.max(readSeq, seq);
      sentSeq = Math.max(sentSeq, seq);
      if (canCountHere()) {
        updateCurrentCount();
        updateJump();
        return;
      }
    }
    const counted = arrivals.get(conversation);
    let later = 0;
    if (counted) {
      counted.forEach(function (s) {
        if (s > upto) later += 1;
        else counted.delete(s);
      });
    }
    setUnread(conversation, unread + later);
  }

  window.addEventListener("pagehide", flushReads);

  // Leaving the room: its read position goes with the membership, and a read would be refused.
  document.addEventListener("submit", function (evt) {
    if (evt.target.classList && evt.target.classList.contains("leave-room")) stopReading();
  });

  document.addEventListener("visibilitychange", function () {
    if (isVisible()) {
      wasVisible = true;
      collectOnScreen();
      noteSeen();
    } else {
      flushReads(); // it was visible until now
      wasVisible = false;
    }
    showNotificationState(); // permission may have changed in the browser's settings
  });

  // --- New messages: the line, and the button while reading history ---------------------

  // Opening a conversation with unread messages starts at the line above the first of them.
  function scrollToFirstUnread() {
    const el = log();
    const line = el && el.querySelector(".new-messages");
    if (!line) return false;
    el.scrollTop += line.getBoundingClientRect().top - el.getBoundingClientRect().top;
    return true;
  }

  // This page was made before the last one's reads arrived: its line goes down to what is
  // still unread (or away).
  function moveNewMessagesLine() {
    const el = log();
    const line = el && el.querySelector(".new-messages");
    const next = line && line.nextElementSibling;
    if (!next || !next.dataset.seq || seqOf(next) > readSeq) return;
    const first = firstUnreadHere();
    if (first) first.before(line);
    else line.remove();
  }

  // A page of older messages may bring its own line: the first one is the one that counts.
  function keepFirstNewMessagesLine() {
    const el = log();
    if (!el) return;
    el.querySelectorAll(".new-messages").forEach(function (line, n) {
      if (n > 0) line.remove();
    });
  }

  function firstUnreadHere() {
    const root = chatRoot();
    const el = log();
    if (!root || !el) return null;
    return Array.from(el.querySelectorAll(".message[data-seq]")).find(function (m) {
      return m.dataset.sender !== root.dataset.me && seqOf(m) > readSeq &&
        !m.classList.contains("deleted");
    }) || null;
  }

  function showJump() {
    const button = document.getElementById("jump-new");
    if (button) button.hidden = false;
  }

  function updateJump() {
    const button = document.getElementById("jump-new");
    const el = log();
    if (!button || button.hidden || !el) return;
    if (isNearBottom(el) || !firstUnreadHere()) button.hidden = true;
  }

  document.addEventListener("click", function (evt) {
    const button = evt.target.closest && evt.target.closest("#jump-new");
    if (!button) return;
    const el = log();
    const first = firstUnreadHere();
    if (first) el.scrollTop += first.getBoundingClientRect().top - el.getBoundingClientRect().top;
    else scrollToBottom();
    button.hidden = true;
    el.focus({ preventScroll: true });
  });

  // --- Desktop notifications --------------------------------------------------------
  // Asked for by a button, never on its own. A direct message, a mention (@yourname), or a
  // message in a group room that is not muted notifies, unless it is in the conversation
  // open in a visible tab. One tab of the browser shows it: one that is looking at that
  // conversation says so to the others, and the others take a lock on the message.

  const NOTIFY_WAIT_MS = 250; // for a tab that is looking at it to say so
  const NOTIFY_BODY_MAX = 200;
  const lookedAt = new Set(); // message ids another tab of this browser shows
  const otherTabs = "BroadcastChannel" in window ? new BroadcastChannel("chat-notices") : null;
  if (otherTabs) {
    otherTabs.onmessage = function (evt) {
      if (evt.data && evt.data.looking) lookedAt.add(evt.data.looking);
    };
  }

  function showNotificationState() {
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

  document.addEventListener("click", function (evt) {
    if (!evt.target.closest || !evt.target.closest("#enable-notifications")) return;
    Notification.requestPermission().then(showNotificationState, showNotificationState);
  });

  function mentionsMe(text) {
    const root = chatRoot();
    const me = root && root.dataset.me;
    if (!me) return false;
    const name = me.replace(/[^A-Za-z0-9_]/g, "");
    return new RegExp("(^|[^A-Za-z0-9_@])@" + name + "(?![A-Za-z0-9_])", "i").test(text);
  }

  function roomEntry(conversation) {
    return document.querySelector('#rooms [data-conversation="' + CSS.escape(conversation) + '"]');
  }

  // Whether this message is one to be told of (the public room: only when it mentions you).
  function worthNotifying(message, text) {
    const conversation = message.dataset.conversation;
    if (mentionsMe(text)) return true;
    if (conversation === "public") return false;
    if (conversation.indexOf("dm:") === 0) return true;
    const entry = roomEntry(conversation);
    return !(entry && entry.dataset.muted === "true");
  }

  function conversationUrl(message) {
    const conversation = message.dataset.conversation;
    const entry = document.querySelector(
      '#people a[data-conversation="' + CSS.escape(conversation) + '"]'
    );
    if (entry) return entry.getAttribute("href");
    if (conversation === "public") return "/rooms/public";
    if (conversation.indexOf("dm:") === 0) {
      return "/dm/" + encodeURIComponent(message.dataset.sender);
    }
    return "/rooms/" + encodeURIComponent(conversation);
  }

  function notificationTitle(message) {
    const conversation = message.dataset.conversation;
    const sender = message.dataset.sender;
    if (conversation === "public") return sender + " in Public room";
    if (conversation.indexOf("dm:") === 0) return sender;
    const entry = roomEntry(conversation);
    const item = entry && entry.closest("li");
    return item && item.dataset.name ? sender + " in " + item.dataset.name : sender;
  }

  function notifyOf(message) {
    if (!("Notification" in window)) return;
    const root = chatRoot();
    const id = message.dataset.id;
    if (root && message.dataset.conversation === root.dataset.conversation && isVisible()) {
      if (otherTabs) otherTabs.postMessage({ looking: id }); // being looked at: nobody notifies
      return;
    }
    const bodyEl = message.querySelector(".body");
    const text = bodyEl ? bodyEl.textContent.trim() : "";
    if (Notification.permission !== "granted" || !worthNotifying(message, text)) return;
    const body = text.length > NOTIFY_BODY_MAX ? text.slice(0, NOTIFY_BODY_MAX - 1) + "…" : text;
    const title = notificationTitle(message);
    const url = conversationUrl(message);
    const conversation = message.dataset.conversation;
    window.setTimeout(function () {
      if (lookedAt.has(id)) return;
      onlyOneTab("chat-notice-" + id, function () {
        const notice = new Notification(title, { body: body, tag: "msg-" + id });
        notice.onclick = function () {
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
    navigator.locks.request(name, { ifAvailable: true }, function (lock) {
      if (!lock) return null;
      show();
      return new Promise(function (resolve) { window.setTimeout(resolve, 10000); });
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

  // --- Muting a group room ----------------------------------------------------------

  // The room page's toggle came back in its new state: the sidebar's entry follows it.
  function followMuteToggle(content) {
    if (!content || !content.matches || !content.matches(".mute-form")) return;
    const entry = roomEntry(content.dataset.conversation);
    if (entry) entry.dataset.muted = content.dataset.muted;
  }

  // --- Connection state ---------------------------------------------------------------
  // When the event stream drops, a notice (role="status") says so and your own status dot
  // shows it, until the stream is back and has caught up (its `live` event).

  const RECONNECTING_AFTER_MS = 1000; // a stream that is back at once is not worth a notice
  let connectionTimer = null;
  let connectionDown = false;

  function streamLost() {
    if (connectionDown || connectionTimer) return;
    connectionTimer = window.setTimeout(function () {
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

  function markOwnStatus() {
    const root = chatRoot();
    const entry = root && document.getElementById("person-" + root.dataset.meId);
    const dot = entry && entry.querySelector(".dot");
    if (!dot) return;
    if (connectionDown) {
      dot.dataset.connection = "reconnecting";
      dot.title = "reconnecting";
    } else {
      delete dot.dataset.connection;
      dot.title = entry.dataset.status || "";
    }
  }

  document.addEventListener("htmx:sseError", streamLost);

  // --- Sending: a pending copy until the server has it; Retry when it fails ---------------
  // The composer's POST is the page's own (htmx asks, through htmx:confirm, and is told no):
  // the message shows at once, greyed, "Sending…"; the server's copy, from the POST's answer
  // or from the stream, whichever comes first, replaces it.

  const NOT_REACHED = "Could not reach the server. Check your connection and try again.";
  const pendingText = new WeakMap(); // pending copy -> the text it sends

  document.addEventListener("htmx:confirm", function (evt) {
    const form = evt.detail.elt;
    if (!form || form.id !== "composer") return;
    evt.preventDefault();
    sendFromComposer(form);
  });

  function sendFromComposer(form) {
    const field = form.querySelector("textarea[name=body]");
    const text = field.value;
    if (text.trim() === "") return;
    const item = pendingCopy(form, text);
    field.value = "";
    saveDraft(field); // the text is the pending copy's now (and Retry's, if it fails)
    field.style.height = "";
    lastTypingSent = 0;
    field.focus();
    if (item) send(item);
  }

  function pendingCopy(form, text) {
    const root = chatRoot();
    const el = log();
    if (!root || !el) return null;
    const item = document.createElement("article");
    item.className = "message mine pending";
    item.dataset.conversation = root.dataset.conversation;
    item.dataset.sender = root.dataset.me;
    item.dataset.url = form.getAttribute("action");
    const header = document.createElement("header");
    const sender = document.createElement("span");
    sender.className = "sender";
    sender.textContent = root.dataset.me;
    const state = document.createElement("span");
    state.className = "pending-state";
    header.append(sender, " ", state);
    const body = document.createElement("p");
    body.className = "body";
    body.textContent = text.trim();
    const actions = document.createElement("div");
    actions.className = "actions pending-actions";
    actions.hidden = true;
    ["Retry", "Discard"].forEach(function (name) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = name;
      button.dataset.action = name.toLowerCase();
      actions.appendChild(button);
    });
    item.append(header, body, actions);
    pendingText.set(item, text);
    const empty = el.querySelector(".empty");
    if (empty) empty.remove();
    el.appendChild(item);
    scrollToBottom();
    return item;
  }

  function setPendingState(item, text, failed) {
    item.classList.toggle("failed", failed);
    item.querySelector(".pending-state").textContent = text;
    item.querySelector(".pending-actions").hidden = !failed;
  }

  function send(item) {
    setPendingState(item, "Sending…", false);
    const headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    headers["HX-Request"] = "true";
    fetch(item.dataset.url, {
      method: "POST",
      headers: headers,
      body: new URLSearchParams({ body: pendingText.get(item) }),
      credentials: "same-origin",
      keepalive: true, // a message sent just before leaving the page still goes
    }).then(
      function (response) {
        const elsewhere = response.headers.get("HX-Redirect"); // signed out meanwhile
        if (elsewhere) {
          window.location.assign(elsewhere);
          return null;
        }
        return response.text().then(function (html) {
          if (response.ok) delivered(item, html);
          else failed(item, errorText({ responseText: html, status: response.status }));
        });
      },
      function () { failed(item, NOT_REACHED); }
    );
  }

  function delivered(item, html) {
    item.remove();
    placeMessage(html, false);
    const form = document.getElementById("composer");
    if (form) clearError(form);
  }

  function failed(item, reason) {
    if (!item.isConnected) return; // its copy came through the stream: it was sent after all
    setPendingState(item, "Not sent.", true);
    const form = document.getElementById("composer");
    if (form) showError(form, reason);
  }

  // Our own message came through the stream: the pending copy of the same text gives way.
  function claimPending(message) {
    const body = message.querySelector(".body");
    const text = comparable(body ? body.textContent : "");
    const item = Array.from(log().querySelectorAll(".message.pending")).find(function (p) {
      return comparable(pendingText.get(p) || "") === text;
    });
    if (item) item.remove();
  }

  // Text as the server keeps it, for comparing: no spaces and no control characters.
  function comparable(text) {
    return text.replace(/[\s\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, "");
  }

  document.addEventListener("click", function (evt) {
    const button = evt.target.closest && evt.target.closest(".pending-actions button");
    if (!button) return;
    const item = button.closest(".pending");
    if (button.dataset.action === "retry") send(item);
    else item.remove();
    const field = document.getElementById("message-body"); // the button is gone: focus goes on
    if (field) field.focus();
  });

  // --- Forms ------------------------------------------------------------------

  function showError(elt, text) {
    const form = elt.closest("form");
    const slot = (form && form.querySelector(".form-error")) || document.getElementById("flash");
    if (!slot) {
      window.alert(text);
      return;
    }
    slot.textContent = text;
    slot.hidden = false;
  }

  function clearError(elt) {
    const form = elt.closest && elt.closest("form");
    const slot = form && form.querySelector(".form-error");
    if (slot) {
      slot.hidden = true;
      slot.textContent = "";
    }
  }

  function errorText(xhr) {
    const text = xhr.responseText || "";
    try {
      return JSON.parse(text).error;
    } catch (e) {
      const el = parseFragment(text);
      return (el && el.textContent.trim()) || "Something went wrong (" + xhr.status + ").";
    }
  }

  document.addEventListener("htmx:responseError", function (evt) {
    showError(evt.detail.elt, errorText(evt.detail.xhr));
  });

  document.addEventListener("htmx:sendError", function (evt) {
    showError(evt.detail.elt, "Could not reach the server. Check your connection and try again.");
  });

  document.addEventListener("htmx:afterRequest", function (evt) {
    const elt = evt.detail.elt;
    if (!evt.detail.successful) return;
    clearError(elt);
    if (elt.classList.contains("add-member") || elt.classList.contains("room-settings")) {
      const field = elt.querySelector("input[name=username]");
      if (field) field.value = "";
    }
  });

  document.addEventListener("keydown", function (evt) {
    const field = evt.target;
    if (!(field instanceof HTMLTextAreaElement)) return;
    if (evt.key !== "Enter" || evt.shiftKey || evt.isComposing) return;
    const form = field.closest("form");
    if (!form) return;
    evt.preventDefault();
    if (field.value.trim() === "") return;
    form.requestSubmit();
  });

  document.addEventListener("input", function (evt) {
    const field = evt.target;
    if (field.id !== "message-body") return;
    noteTyping(field);
    field.style.height = "";
    field.style.height = Math.min(field.scrollHeight, 200) + "px";
  });

  // --- History and scrolling ---------------------------------------------------

  let heightBeforeOlder = null;

  document.addEventListener("htmx:beforeSwap", function (evt) {
    if (evt.detail.elt.classList && evt.detail.elt.classList.contains("load-older")) {
      heightBeforeOlder = log().scrollHeight - log().scrollTop;
    }
  });

  document.addEventListener("htmx:afterSettle", function () {
    if (heightBeforeOlder !== null) {
      log().scrollTop = log().scrollHeight - heightBeforeOlder;
      heightBeforeOlder = null;
    }
  });

  function loadOlderWhenAtTop(evt) {
    const el = evt.target;
    if (el.id !== "log" || el.scrollTop > 20) return;
    const older = el.querySelector(".load-older:not(.htmx-request)");
    // Tabbing to "Load older" scrolls it into view too: then Enter loads, not the scroll.
    if (older && older !== document.activeElement) htmx.trigger(older, "click");
  }

  // --- Times in the reader's own clock ------------------------------------------

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const dateFormat = new Intl.DateTimeFormat(undefined, {
    day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });

  function localiseTimes(root) {
    const today = new Date().toDateString();
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      const when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      el.textContent = (when.toDateString() === today ? timeFormat : dateFormat).format(when);
      el.title = when.toLocaleString();
    });
  }

  // --- A busy room: day separators and runs of one sender ------------------------------
  // The rules of webapp/timeline.py, in the reader's own time zone. Only what is wrong is
  // changed, so the live log announces nothing but new messages.

  const RUN_WINDOW_MS = 5 * 60 * 1000;
  const weekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long" });
  const fullDateFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "long", year: "numeric" });

  function localDay(when) {
    return when.getFullYear() + "-" + (when.getMonth() + 1) + "-" + when.getDate();
  }

  function dayLabel(when) {
    const today = new Date();
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (localDay(when) === localDay(today)) return "Today";
    if (localDay(when) === localDay(yesterday)) return "Yesterday";
    return (when.getFullYear() === today.getFullYear() ? weekdayFormat : fullDateFormat).format(when);
  }

  function messageTime(message) {
    const time = message.querySelector(":scope > header time");
    return time ? new Date(time.getAttribute("datetime")) : null;
  }

  function arrangeLog() {
    const el = log();
    if (!el) return;
    const wanted = new Set();
    let previous = null;
    let previousWhen = null;
    el.querySelectorAll(":scope > .message").forEach(function (message) {
      const when = messageTime(message);
      if (!when || isNaN(when)) return;
      const day = localDay(when);
      const newDay = !previousWhen || localDay(previousWhen) !== day;
      if (newDay) {
        let separator = message.previousElementSibling;
        if (!separator || !separator.classList.contains("day-separator") || separator.dataset.localDay !== day) {
          separator = document.createElement("h2");
          separator.className = "day-separator";
          separator.dataset.localDay = day;
          message.before(separator);
        }
        if (separator.textContent !== dayLabel(when)) separator.textContent = dayLabel(when);
        wanted.add(separator);
      }
      const gap = previousWhen ? when - previousWhen : -1;
      const continues = !newDay && previous && previous.dataset.sender === message.dataset.sender &&
        gap >= 0 && gap <= RUN_WINDOW_MS;
      message.classList.toggle("continued", Boolean(continues));
      previous = message;
      previousWhen = when;
    });
    el.querySelectorAll(":scope > .day-separator").forEach(function (separator) {
      if (!wanted.has(separator)) separator.remove();
    });
  }

  // --- Drafts, kept per conversation in this browser ------------------------------------

  function draftKey() {
    const root = chatRoot();
    return root ? "draft:" + root.dataset.meId + ":" + root.dataset.conversation : null;
  }

  function saveDraft(field) {
    const key = draftKey();
    if (!key) return;
    try {
      if (field.value.trim()) window.localStorage.setItem(key, field.value);
      else window.localStorage.removeItem(key);
    } catch (e) { /* storage full or forbidden: drafts are a comfort */ }
  }

  function restoreDraft() {
    const key = draftKey();
    const field = document.getElementById("message-body");
    if (!key || !field || field.value) return;
    try {
      const draft = window.localStorage.getItem(key);
      if (draft) field.value = draft;
    } catch (e) { /* as above */ }
  }

  document.addEventListener("input", function (evt) {
    if (evt.target.id === "message-body") saveDraft(evt.target);
  });

  document.addEventListener("DOMContentLoaded", restoreDraft);

  // Without script the newest message takes focus to bring itself into view (autofocus);
  // with it, the page scrolls by itself and the keyboard starts at the top, as on any page.
  let personActed = false; // a key or a pointer since the page loaded: focus is theirs then
  ["keydown", "pointerdown"].forEach(function (type) {
    document.addEventListener(type, function () { personActed = true; }, true);
  });

  function undoAutofocus(focused) {
    if (!focused || !focused.matches || !focused.matches(".message[autofocus]")) return;
    focused.removeAttribute("autofocus");
    if (personActed) return; // they moved here themselves
    const start = document.body; // where Tab then starts: the top of the page
    start.setAttribute("tabindex", "-1");
    start.focus({ preventScroll: true });
    start.removeAttribute("tabindex");
    start.blur();
  }

  document.addEventListener("focusin", function (evt) { undoAutofocus(evt.target); });
  document.addEventListener("DOMContentLoaded", function () {
    undoAutofocus(document.activeElement);
  });

  htmx.onLoad(function (content) {
    localiseTimes(content);
    arrangeLog();
    watchMessages(content);
    keepFirstNewMessagesLine();
    followMuteToggle(content);
  });

  document.addEventListener("DOMContentLoaded", function () {
    showNotificationState();
    const el = log();
    if (!el) return;
    el.addEventListener("scroll", loadOlderWhenAtTop, { passive: true });
    el.addEventListener("scroll", updateJump, { passive: true });
    startReading();
    if (!window.location.hash && !scrollToFirstUnread()) scrollToBottom();
    lookNow();
    updateTitle();
    const field = document.getElementById("message-body");
    if (field && window.matchMedia("(min-width: 720px)").matches) field.focus();
  });

  // Away form: the sidebar entry that comes back through the stream shows the new note.
  document.addEventListener("htmx:afterRequest", function (evt) {
    if (!evt.detail.successful || !evt.detail.elt.classList.contains("away-form")) return;
    const field = evt.detail.elt.querySelector("input[name=away_message]");
    field.blur();
  });

  // === Keyboard, focus and what the log announces ===========================================
  // Everything below is for people on a keyboard or a screen reader, and for small screens. The
  // page works without it: every control is then a plain tab stop, and noscript.css shows what
  // the script would open (the sidebar on a phone, a message's Edit and Delete).

  const NARROW = window.matchMedia("(max-width: 719.98px)");
  const QUIET_MS = 300; // how long the log stays aria-busy after a change that is not news

  function elementOf(target) {
    return target instanceof Element ? target : null;
  }

  // --- The conversations menu, below 720 px ------------------------------------------------

  function menuButton() {
    return document.querySelector(".nav-open");
  }

  function menuIsOpen() {
    const root = chatRoot();
    return Boolean(root && root.classList.contains("menu-open"));
  }

  // Opens the sidebar over the conversation; focus goes into it (its close button by default).
  function openMenu(focusTarget) {
    const root = chatRoot();
    const button = menuButton();
    if (!root || !button) return;
    root.classList.add("menu-open");
    button.setAttribute("aria-expanded", "true");
    const target = focusTarget || document.querySelector("#sidebar .nav-close");
    if (target) target.focus();
  }

  function closeMenu(returnFocus) {
    const root = chatRoot();
    const button = menuButton();
    if (!root || !root.classList.contains("menu-open")) return;
    root.classList.remove("menu-open");
    if (!button) return;
    button.setAttribute("aria-expanded", "false");
    if (returnFocus) button.focus();
  }

  // A tap or click outside the open menu closes it, and does nothing else.
  document.addEventListener("click", function (evt) {
    const target = elementOf(evt.target);
    if (!menuIsOpen() || !NARROW.matches || !target) return;
    if (target.closest("#sidebar") || target.closest(".nav-open")) return;
    evt.preventDefault();
    evt.stopPropagation();
    closeMenu(true);
  }, true);

  // Tabbing out of the open menu closes it (focus has already gone where Tab took it).
  document.addEventListener("focusout", function (evt) {
    const sidebar = document.getElementById("sidebar");
    const next = elementOf(evt.relatedTarget);
    if (!menuIsOpen() || !sidebar || !next || sidebar.contains(next)) return;
    if (sidebar.contains(elementOf(evt.target))) closeMenu(false);
  });

  NARROW.addEventListener("change", function () {
    if (!NARROW.matches) closeMenu(false);
  });

  // --- Skip links ----------------------------------------------------------------------------

  function skipTo(where) {
    if (where === "composer") {
      const field = document.getElementById("message-body");
      if (field) field.focus();
      return;
    }
    const first = document.querySelector("#people a[href]");
    if (NARROW.matches) openMenu(first);
    else if (first) first.focus();
  }

  // --- One tab stop for the log, and one for each list in the sidebar ------------------------
  // A busy room would otherwise put a hundred tab stops between the composer and the sidebar.
  // The log (tabindex=0) is one stop. Inside it the arrow keys, Home and End go from message to
  // message (each has tabindex=-1), and only the message that has focus, or is being edited,
  // keeps its own controls (links, "Message actions", Edit, Delete) in the Tab order: Tab from
  // a message reaches its buttons, and leaving the log takes them out again. The sidebar's
  // lists (Rooms, Online users, Offline) are one stop each, on the current or first entry, and
  // the arrow keys move along them (a roving tabindex). Observers keep this so whatever adds
  // or replaces entries: htmx, the event stream, "Load older".

  const FOCUSABLE = "a[href], button, input, textarea, select, [tabindex]";
  const ROVING_LISTS = "#rooms, #people .people-list";
  let activeMessage = null;

  function messagesIn(el) {
    return Array.from(el.querySelectorAll(":scope > .message"));
  }

  function setMessageStops(message, on) {
    message.querySelectorAll(FOCUSABLE).forEach(function (control) {
      if (on) control.removeAttribute("tabindex");
      else control.setAttribute("tabindex", "-1");
    });
  }

  // (A swapped-in element wears its predecessor's attributes until htmx settles it: what it
  // holds says whether it is an edit box, not its class.)
  function isEditing(message) {
    return message.querySelector(".edit-form") !== null;
  }

  function prepareMessage(message) {
    setMessageStops(message, message === activeMessage || isEditing(message));
  }

  function activateMessage(message) {
    if (message === activeMessage) return;
    const previous = activeMessage;
    activeMessage = message;
    if (previous && previous.isConnected) prepareMessage(previous);
    if (message) prepareMessage(message);
  }

  function moveInLog(evt, el) {
    const target = elementOf(evt.target);
    const onLog = target === el;
    if (!onLog && !(target && target.matches("#log > .message"))) return;
    const messages = messagesIn(el);
    if (messages.length === 0) return;
    const last = messages[messages.length - 1];
    const at = messages.indexOf(target); // -1 on the log itself
    let next = null;
    if (evt.key === "ArrowUp") {
      next = onLog ? last : at > 0 ? messages[at - 1] : el.querySelector(":scope > .load-older");
    } else if (evt.key === "ArrowDown") {
      next = onLog ? last : messages[Math.min(at + 1, messages.length - 1)];
    } else if (evt.key === "Home") {
      next = messages[0];
    } else if (evt.key === "End") {
      next = last;
    }
    if (!next) return;
    evt.preventDefault();
    next.focus();
  }

  // The sidebar list whose entry `target` is, if it is one.
  function listOf(target) {
    const item = target && target.matches("a") ? target.parentElement : null;
    const list = item && item.matches("li") ? item.parentElement : null;
    return list && list.matches(ROVING_LISTS) ? list : null;
  }

  function listItems(list) {
    return Array.from(list.querySelectorAll(":scope > li > a"));
  }

  // Makes `preferred` (or the list's stop so far, its current entry, its first) the one stop.
  function settleListStop(list, preferred) {
    const items = listItems(list);
    const stop =
      (preferred && items.includes(preferred) && preferred) ||
      items.find(function (a) { return a.getAttribute("tabindex") === "0"; }) ||
      items.find(function (a) { return a.hasAttribute("aria-current"); }) ||
      items[0];
    items.forEach(function (a) { a.setAttribute("tabindex", a === stop ? "0" : "-1"); });
  }

  function moveInList(evt) {
    const target = elementOf(evt.target);
    const list = listOf(target);
    if (!list) return;
    const items = listItems(list);
    const at = items.indexOf(target);
    let next = null;
    if (evt.key === "ArrowDown") next = items[Math.min(at + 1, items.length - 1)];
    else if (evt.key === "ArrowUp") next = items[Math.max(at - 1, 0)];
    else if (evt.key === "Home") next = items[0];
    else if (evt.key === "End") next = items[items.length - 1];
    if (!next) return;
    evt.preventDefault();
    settleListStop(list, next);
    next.focus();
  }

  function watchLog(el) {
    messagesIn(el).forEach(prepareMessage);
    new MutationObserver(function (records) {
      records.forEach(function (record) {
        record.addedNodes.forEach(function (node) {
          if (node instanceof Element && node.matches(".message")) prepareMessage(node);
        });
      });
    }).observe(el, { childList: true });
    const hint = document.createElement("p");
    hint.id = "log-keys";
    hint.className = "visually-hidden";
    hint.textContent = "The arrow keys go from message to message; Tab reaches a message's buttons.";
    el.after(hint);
    el.setAttribute("aria-describedby", hint.id);
  }

  function watchList(list) {
    settleListStop(list, null);
    new MutationObserver(function () { settleListStop(list, null); }).observe(list, { childList: true });
  }

  document.addEventListener("focusin", function (evt) {
    const target = elementOf(evt.target);
    if (!target) return;
    activateMessage(target.closest("#log > .message"));
    const list = listOf(target);
    if (list) settleListStop(list, target);
  });

  // --- A message's "Message actions" menu (phones) -------------------------------------------

  function setMessageMenu(more, open) {
    more.setAttribute("aria-expanded", open ? "true" : "false");
  }

  function toggleMessageMenu(more) {
    const open = more.getAttribute("aria-expanded") !== "true";
    document.querySelectorAll('#log .more[aria-expanded="true"]').forEach(function (other) {
      if (other !== more) setMessageMenu(other, false);
    });
    setMessageMenu(more, open);
  }

  // Focus leaving a message closes its menu.
  document.addEventListener("focusout", function (evt) {
    const message = elementOf(evt.target) && evt.target.closest("#log > .message");
    const next = elementOf(evt.relatedTarget);
    if (!message || !next || message.contains(next)) return;
    const more = message.querySelector('.more[aria-expanded="true"]');
    if (more) setMessageMenu(more, false);
  });

  // --- Focus after a message's own actions ---------------------------------------------------
  // Edit: into the box, the caret at the end. Save or Cancel (or Escape in the box): back to
  // that message's Edit button. Delete: the composer.

  function focusEditBox(editing) {
    const box = editing.querySelector("textarea");
    if (!box) return;
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  function focusEditButton(message) {
    const edit = message.querySelector('.actions form[method="get"] button');
    if (!edit) {
      message.focus();
      return;
    }
    const more = message.querySelector(".more");
    if (more && window.getComputedStyle(more).display !== "none") setMessageMenu(more, true);
    edit.focus();
  }

  document.addEventListener("htmx:afterSwap", function (evt) {
    const swapped = elementOf(evt.target);
    const config = evt.detail && evt.detail.requestConfig; // (detail.elt is the swapped element)
    const requester = elementOf(config && config.elt);
    if (!swapped || !requester || !swapped.matches(".message") || !log() || !log().contains(swapped)) {
      return;
    }
    if (isEditing(swapped)) {
      focusEditBox(swapped);
    } else if (requester.matches("[hx-delete]")) {
      const field = document.getElementById("message-body");
      if (field) field.focus();
    } else if (requester.matches(".cancel, .edit-form")) {
      focusEditButton(swapped);
    }
  });

  // --- Keys and clicks -----------------------------------------------------------------------

  document.addEventListener("keydown", function (evt) {
    if (evt.defaultPrevented || evt.altKey || evt.ctrlKey || evt.metaKey) return;
    const target = elementOf(evt.target);
    if (!target) return;
    if (evt.key === "Escape") {
      const editing = target.closest(".edit-form");
      const menu = target.closest("#log > .message") && target.closest(".controls");
      const more = menu && menu.querySelector('.more[aria-expanded="true"]');
      if (editing) {
        const cancel = editing.querySelector(".cancel");
        if (cancel) cancel.click();
      } else if (more) {
        setMessageMenu(more, false);
        more.focus();
      } else if (menuIsOpen()) {
        closeMenu(true);
      } else {
        return;
      }
      evt.preventDefault();
      return;
    }
    const el = log();
    if (el && el.contains(target)) moveInLog(evt, el);
    else moveInList(evt);
  });

  document.addEventListener("click", function (evt) {
    const target = elementOf(evt.target);
    if (!target) return;
    const skip = target.closest(".skip-link");
    const more = target.closest("#log .more");
    if (skip) {
      evt.preventDefault();
      skipTo(skip.dataset.skip);
    } else if (target.closest(".nav-open")) {
      if (menuIsOpen()) closeMenu(true);
      else openMenu(null);
    } else if (target.closest(".nav-close")) {
      closeMenu(true);
    } else if (more) {
      toggleMessageMenu(more);
    }
  });

  // --- The log tells of new messages only ----------------------------------------------------
  // role="log" is a polite live region: what goes into it is read out. Older messages brought
  // by "Load older", and messages changed in place (an edit, a delete, the edit box, the
  // sender's own copy coming back through the stream), are not news: the log is aria-busy
  // while they go in. Chromium sends no live-region event for a change inside a busy region,
  // and the busy flag is lifted only after the change has been taken in.

  let quietTimer = null;

  function quietly() {
    const el = log();
    if (!el) return;
    el.setAttribute("aria-busy", "true");
    window.clearTimeout(quietTimer);
    quietTimer = window.setTimeout(function () {
      quietTimer = null;
      el.removeAttribute("aria-busy");
    }, QUIET_MS);
  }

  let olderFocus = null; // "Load older" had focus: after it, the newest of the older messages

  document.addEventListener("htmx:beforeSwap", function (evt) {
    const el = log();
    const target = elementOf(evt.detail.target);
    if (!el || !target || target === el || !el.contains(target)) return;
    quietly();
    if (target.classList.contains("load-older") && document.activeElement === target) {
      olderFocus = messagesIn(el)[0] || null;
    }
  });

  document.addEventListener("htmx:afterSettle", function () {
    if (!olderFocus) return;
    let next = olderFocus.previousElementSibling; // past any day separator or "New messages"
    while (next && !next.matches(".message, .load-older")) next = next.previousElementSibling;
    olderFocus = null;
    if (next) next.focus();
  });

  // --- Focus stays put when the stream replaces what holds it -------------------------------
  // An event replaces whole entries (a message edited, or one's own coming back; a person's or
  // a room's sidebar entry): focus inside one would fall to the page's body. It goes to the
  // same control of the new copy, with the message's menu as open as it was.

  const HOLDERS = "#log > .message, #people li[id]";
  let focusBeforeEvent = null;

  function focusSpot() {
    const active = document.activeElement;
    const holder = active && active !== document.body ? active.closest(HOLDERS) : null;
    if (!holder || !holder.id) return null;
    const more = holder.querySelector(".more");
    return {
      holder: holder,
      index: [holder].concat(Array.from(holder.querySelectorAll(FOCUSABLE))).indexOf(active),
      menuOpen: Boolean(more && more.getAttribute("aria-expanded") === "true"),
    };
  }

  function restoreFocus(spot) {
    const holder = document.getElementById(spot.holder.id);
    if (spot.holder.isConnected || !holder || holder.contains(document.activeElement)) return;
    const more = holder.querySelector(".more");
    if (spot.menuOpen && more) setMessageMenu(more, true);
    const controls = [holder].concat(Array.from(holder.querySelectorAll(FOCUSABLE)));
    const target = controls[spot.index];
    if (target) target.focus({ preventScroll: true });
  }

  // Capture: before the stream's handler above puts the event's HTML in place...
  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    const event = evt.detail;
    focusBeforeEvent = focusSpot();
    if (!event || event.type !== "message") return;
    const incoming = parseFragment(event.data);
    if (incoming && incoming.id && document.getElementById(incoming.id)) quietly();
  }, true);

  // ...and after it (listeners on one target run in the order they were added).
  document.addEventListener("htmx:sseBeforeMessage", function () {
    const spot = focusBeforeEvent;
    focusBeforeEvent = null;
    if (spot) restoreFocus(spot);
  });

  document.addEventListener("DOMContentLoaded", function () {
    const el = log();
    if (el) watchLog(el);
    document.querySelectorAll(ROVING_LISTS).forEach(watchList);
  });
})();
