"""The rules of the chat, as pure functions: names, passwords, message text, room names,
limits. Who may do what in a room is access.py's."""

from __future__ import annotations

import math
import re
import string
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from webapp.errors import BadRequest, PayloadTooLarge

USERNAME_RE = re.compile(r"[A-Za-z0-9_]{3,32}")
PASSWORD_MIN, PASSWORD_MAX = 8, 128
BODY_MAX = 4000
AWAY_MAX = 200
PAGE_SIZE = 50
PUBLIC = "public"  # the public room's key
ROOM_NAME_MAX = 64
TOPIC_MAX = 200
UNREAD_CAP = 999  # unread messages counted per room, at most
UNREAD_WINDOW = 10 * UNREAD_CAP  # the newest messages of a room looked at to count them
BROWSE_PAGE = 50  # open rooms a page of "Browse rooms" lists
TYPING_REPEAT_SECS = 3  # a typing notice repeated sooner than this reaches nobody

LOGIN_WINDOW = timedelta(minutes=1)
MAX_FAILURES_PER_NAME = 5  # per name and address, in LOGIN_WINDOW
MAX_FAILURES_PER_ADDRESS = 50  # any names, in LOGIN_WINDOW


def clean_username(value: str) -> str:
    value = value.strip()
    if not USERNAME_RE.fullmatch(value):
        raise BadRequest("Usernames are 3 to 32 letters, digits or underscores.")
    return value


def is_username(value: str) -> bool:
    """Whether value (spaces around it aside) can be someone's name: only those are looked up."""
    return USERNAME_RE.fullmatch(value.strip()) is not None


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def username_key(username: str) -> str:
    """What names are unique by: ASCII letters lower-cased and nothing else folded (str.lower
    would make the Kelvin sign a "k")."""
    return username.strip().translate(_ASCII_LOWER)


def check_password(value: str) -> str:
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise BadRequest(f"Passwords are {PASSWORD_MIN} to {PASSWORD_MAX} characters.")
    return value


# Dropped from people's text: control characters (Unicode category Cc: NUL, escape, C1 ...)
# but newline and tab, and the bidi embedding, override and isolate controls, which make text
# read other than it is. The bidi marks (U+200E, U+200F, U+061C) and joiners stay: they change
# nothing but the direction or shape of the text around them.
_STRIPPED = str.maketrans(
    dict.fromkeys(
        [c for c in range(0xA0) if unicodedata.category(chr(c)) == "Cc" and chr(c) not in "\n\t"]
        + [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
    )
)


def strip_controls(value: str) -> str:
    """`value` without control characters (newline and tab kept) and bidi controls."""
    return value.translate(_STRIPPED)


def clean_body(value: str) -> str:
    """Message text trimmed, with its inner newlines kept; 1 to BODY_MAX characters."""
    value = strip_controls(value.replace("\r\n", "\n")).strip()
    if not value:
        raise BadRequest("Write a message first: it cannot be empty.")
    if len(value) > BODY_MAX:
        raise PayloadTooLarge(f"Messages are at most {BODY_MAX} characters.")
    return value


def one_line(value: str, *, limit: int, too_long: str) -> str:
    """Text on one line, control characters dropped and runs of spaces made one; BadRequest
    saying `too_long` past `limit` characters."""
    value = " ".join(strip_controls(value).split())
    if len(value) > limit:
        raise BadRequest(too_long)
    return value


def clean_away(value: str) -> str:
    """The away message: one line of at most AWAY_MAX characters."""
    return one_line(
        value, limit=AWAY_MAX, too_long=f"Away messages are at most {AWAY_MAX} characters."
    )


def dm_key(a: str, b: str) -> str:
    """The key of the direct conversation between two user ids (the same both ways)."""
    first, second = sorted((a, b))
    return f"dm:{first}:{second}"


def dm_peer(key: str, user_id: str) -> str | None:
    """The other person of a DM's key (`user_id` for notes to self), else None."""
    kind, _, rest = key.partition(":")
    first, _, second = rest.partition(":")
    if kind != "dm" or user_id not in (first, second):
        return None
    return second if first == user_id else first


SEQ_RE = re.compile(r"[0-9]{1,18}")


def clean_seq(value: str) -> int:
    """A message's number in its room (its seq), as a reader names what they have read up to:
    a whole number, 0 or more."""
    if not SEQ_RE.fullmatch(value):
        raise BadRequest("seq is the number of a message: a whole number, 0 or more.")
    return int(value)


MUTED = {"on": True, "off": False}


def clean_muted(value: str) -> bool:
    """Whether a room is to be muted: "on" or "off"."""
    if value not in MUTED:
        raise BadRequest('muted is "on" or "off".')
    return MUTED[value]


# What shows nothing by itself: separators, controls, format characters (zero-width space and
# joiners, word joiner, BOM, soft hyphen, tag characters ...), combining marks with nothing to
# mark, unassigned and private code points, and the letters and symbols drawn blank (Hangul
# fillers, the blank Braille pattern).
_UNSEEN_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn", "Mn", "Me"})
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_visible(char: str) -> bool:
    """Whether the character shows something on its own."""
    return char not in _BLANK and unicodedata.category(char) not in _UNSEEN_CATEGORIES


def clean_room_name(value: str) -> str:
    """A group room's name on one line: 1 to ROOM_NAME_MAX characters, something visible."""
    too_long = f"Room names are at most {ROOM_NAME_MAX} characters."
    value = one_line(value, limit=ROOM_NAME_MAX, too_long=too_long)
    if not any(map(is_visible, value)):
        raise BadRequest("Give the room a name.")
    return value


def clean_room_filter(value: str) -> str:
    """What "Browse rooms" looks for in room names: one line of at most ROOM_NAME_MAX."""
    too_long = f"Look for at most {ROOM_NAME_MAX} characters of a room's name."
    return one_line(value, limit=ROOM_NAME_MAX, too_long=too_long)


def clean_topic(value: str) -> str:
    """A room's topic on one line, at most TOPIC_MAX characters (empty: none)."""
    return one_line(value, limit=TOPIC_MAX, too_long=f"Topics are at most {TOPIC_MAX} characters.")


def presence_status(online: bool, away_message: str) -> str:
    """What the sidebar shows: "online", "away" (online with an away message) or "offline"."""
    if not online:
        return "offline"
    return "away" if away_message else "online"


def throttle_keys(username: str, address: str) -> tuple[str, str]:
    """The counters a failed sign-in adds to: this name from this address, and the address."""
    return f"name:{username_key(username)}@{address}", f"addr:{address}"


def retry_after(oldest_failure: datetime, now: datetime) -> int:
    """Seconds until the oldest failure in the window stops counting (1 to 60)."""
    remaining = (oldest_failure + LOGIN_WINDOW - now).total_seconds()
    return max(1, min(int(LOGIN_WINDOW.total_seconds()), int(remaining) + 1))


@dataclass(frozen=True)
class Rate:
    """A rate limit by the generic cell rate algorithm: one event every `interval` seconds
    sustained, and up to `burst` at once. All it keeps is one number, the theoretical arrival
    time (tat): when the next event would be due had all so far come evenly spaced."""

    interval: float
    burst: int

    @property
    def tolerance(self) -> float:
        """How far ahead of now the tat may be for one more event to be admitted: burst - 1
        intervals, and a millisecond so that rounding never refuses the last of a burst."""
        return self.interval * (self.burst - 1) + 0.001

    def admit(self, tat: float | None, now: float) -> float | None:
        """The tat after one more event at `now` (None: the first), or None to refuse it."""
        if tat is None or tat < now:
            return now + self.interval
        if tat > now + self.tolerance:
            return None
        return tat + self.interval

    def retry_after(self, tat: float, now: float) -> int:
        """Whole seconds (at least 1) until an event refused at `now` would be admitted."""
        return max(1, math.ceil(tat - self.tolerance - now))

    def scaled(self, factor: float) -> Rate:
        """The same burst, with every interval `factor` times as long."""
        return Rate(self.interval * factor, self.burst)


POSTING = Rate(interval=0.1, burst=30)  # per user: 10 messages a second, 30 at once
ROOM_MAKING = Rate(interval=6.0, burst=10)  # per user: 10 rooms a minute, all 10 at once
ROOM_ADDING = Rate(interval=2.0, burst=30)  # per user who adds: 30 people a minute
