// Times in the reader's own clock, and a busy room's day separators and runs of one sender.
// The server lays the page out in UTC (webapp's timeline rules: a separator per day, one
// name and time for a run of one sender within 5 minutes) and says so; the page lays it out
// again in the reader's own time zone, which only the browser knows. Only what is wrong is
// changed, so the live log announces nothing but new messages.

import { on } from "./dom.js";
import { log } from "./page.js";

const RUN_WINDOW_MS = 5 * 60 * 1000;
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateFormat = new Intl.DateTimeFormat(undefined, {
  day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
});
const weekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long" });
const fullDateFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "long", year: "numeric" });

function localiseTimes(root) {
  const today = new Date().toDateString();
  root.querySelectorAll("time[datetime]").forEach((el) => {
    const when = new Date(el.getAttribute("datetime"));
    if (isNaN(when)) return;
    el.textContent = (when.toDateString() === today ? timeFormat : dateFormat).format(when);
    el.title = when.toLocaleString();
  });
}

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
  el.querySelectorAll(":scope > .message").forEach((message) => {
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
  el.querySelectorAll(":scope > .day-separator").forEach((separator) => {
    if (!wanted.has(separator)) separator.remove();
  });
}

// Whatever htmx puts in the page (the page itself once it is ready, a fragment, an event's
// message) is laid out again.
on("htmx:load", "layout", (evt) => {
  localiseTimes(evt.detail.elt);
  arrangeLog();
});
