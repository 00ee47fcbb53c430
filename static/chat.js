// The chat page's behaviour: placing live messages, the composer, scrolling, unread badges.
// Pages work without it; this file only adds liveness and comfort.
(function () {
  "use strict";

  const NEAR_BOTTOM_PX = 80;

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
    document.querySelectorAll(".people .badge").forEach(function (badge) {
      total += parseInt(badge.textContent, 10) || 0;
    });
    const base = document.title.replace(/^\(\d+\) /, "");
    document.title = total > 0 ? "(" + total + ") " + base : base;
  }

  // --- Messages -------------------------------------------------------------

  // One place for every message fragment, from the composer or the stream. Idempotent by id:
  // a message already on the page is replaced, never doubled.
  function placeMessage(html, fromStream) {
    const incoming = parseFragment(html);
    if (!incoming || !incoming.id) return;
    const root = chatRoot();
    const existing = document.getElementById(incoming.id);
    if (existing) {
      const editing = existing.classList.contains("editing");
      if (!editing || incoming.classList.contains("deleted")) {
        htmx.swap(existing, html, swapSpec("outerHTML"));
      }
      return;
    }
    const isNew = !incoming.querySelector(".edited") && !incoming.classList.contains("deleted");
    const here = root && incoming.dataset.conversation === root.dataset.conversation;
    const el = log();
    if (here && el && !el.querySelector(".newer")) {
      const stick = isNearBottom(el) || !fromStream;
      const empty = el.querySelector(".empty");
      if (empty) empty.remove();
      htmx.swap(el, html, swapSpec("beforeend"));
      if (stick) scrollToBottom();
    } else if (fromStream && isNew && incoming.dataset.sender !== (root && root.dataset.me)) {
      bumpUnread(incoming.dataset.conversation, 1);
    }
  }

  function bumpUnread(conversation, by) {
    const badge = badgeFor(conversation);
    if (!badge) return;
    setUnread(conversation, (parseInt(badge.textContent, 10) || 0) + by);
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
    else if (event.type === "reload") window.location.reload();
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
    if (elt.id === "composer") {
      placeMessage(evt.detail.xhr.responseText, false);
      elt.reset();
      const field = elt.querySelector("textarea");
      field.style.height = "";
      field.focus();
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
    if (older) htmx.trigger(older, "click");
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

  htmx.onLoad(function (content) {
    localiseTimes(content);
  });

  document.addEventListener("DOMContentLoaded", function () {
    const el = log();
    if (!el) return;
    el.addEventListener("scroll", loadOlderWhenAtTop, { passive: true });
    if (!window.location.hash) scrollToBottom();
    const field = document.getElementById("message-body");
    if (field && window.matchMedia("(min-width: 720px)").matches) field.focus();
  });

  window.chatPage = { setUnread: setUnread, placeMessage: placeMessage };
})();
