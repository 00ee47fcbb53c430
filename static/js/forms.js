// Forms sent by htmx: their errors shown in place (or in the page's flash), cleared once one
// goes through; an answer that sends the page elsewhere (HX-Location: leaving a room) opens
// that page afresh; Enter sends a text box's form (Shift+Enter: a new line).

import { on } from "./dom.js";
import { parseFragment } from "./page.js";

export const NOT_REACHED = "Could not reach the server. Check your connection and try again.";

export function showError(elt, text) {
  const form = elt.closest("form");
  const slot = (form && form.querySelector(".form-error")) || document.getElementById("flash");
  if (!slot) {
    window.alert(text);
    return;
  }
  slot.textContent = text;
  slot.hidden = false;
}

export function clearError(elt) {
  const form = elt.closest && elt.closest("form");
  const slot = form && form.querySelector(".form-error");
  if (slot) {
    slot.hidden = true;
    slot.textContent = "";
  }
}

// What went wrong, from a failed answer: JSON {"error"}, or an error fragment's text.
export function errorText(text, status) {
  try {
    return JSON.parse(text || "").error;
  } catch (e) {
    const el = parseFragment(text || "");
    return (el && el.textContent.trim()) || "Something went wrong (" + status + ").";
  }
}

on("htmx:responseError", "forms", (evt) => {
  const xhr = evt.detail.xhr;
  showError(evt.detail.elt, errorText(xhr.responseText, xhr.status));
});

on("htmx:sendError", "forms", (evt) => {
  showError(evt.detail.elt, NOT_REACHED);
});

// htmx would fetch the page and swap its body into this one, and this page's script would go
// on watching what is gone: the browser opens it instead.
on("htmx:beforeOnLoad", "forms", (evt) => {
  const xhr = evt.detail.xhr;
  const where = xhr && xhr.getResponseHeader("HX-Location");
  if (!where) return;
  evt.preventDefault();
  window.location.assign(where.charAt(0) === "{" ? JSON.parse(where).path : where);
});

on("htmx:afterRequest", "forms", (evt) => {
  const elt = evt.detail.elt;
  if (!evt.detail.successful) return;
  clearError(elt);
  if (elt.classList.contains("add-member") || elt.classList.contains("room-settings")) {
    const field = elt.querySelector("input[name=username]");
    if (field) field.value = "";
  }
});

// Away form: the sidebar entry that comes back through the stream shows the new note.
on("htmx:afterRequest", "forms", (evt) => {
  if (!evt.detail.successful || !evt.detail.elt.classList.contains("away-form")) return;
  evt.detail.elt.querySelector("input[name=away_message]").blur();
});

on("keydown", "forms", (evt) => {
  const field = evt.target;
  if (evt.defaultPrevented || !(field instanceof HTMLTextAreaElement)) return; // (a name chosen)
  if (evt.key !== "Enter" || evt.shiftKey || evt.isComposing) return;
  const form = field.closest("form");
  if (!form) return;
  evt.preventDefault();
  if (field.value.trim() === "") return;
  form.requestSubmit();
});
