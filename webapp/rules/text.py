"""Text people type, cleaned and checked: names, passwords, messages, away messages, room
names and topics, and the small values forms carry."""

from __future__ import annotations

import re
import string
import unicodedata

import emoji

from webapp.errors import BadRequest, PayloadTooLarge

USERNAME_RE = re.compile(r"[A-Za-z0-9_]{3,32}")
PASSWORD_MIN, PASSWORD_MAX = 8, 128
BODY_MAX = 4000
AWAY_MAX = 200
ROOM_NAME_MAX = 64
TOPIC_MAX = 200
REACTION_KINDS_MAX = 20  # different emoji on one message
_EMOJI_MAX = 32  # characters: the longest ZWJ sequence is well under this


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


def clean_emoji(value: str) -> str:
    """A reaction: exactly one emoji (skin tones, ZWJ sequences and variation selectors
    included), as emoji's data knows them."""
    if not 0 < len(value) <= _EMOJI_MAX or not emoji.is_emoji(value):
        raise BadRequest("A reaction is one emoji.")
    return value


def clean_reply_to(value: str) -> str:
    """The id of the message a new one answers ("" for none): 24 hex digits."""
    value = value.strip()
    if value and not re.fullmatch(r"[0-9a-f]{24}", value):
        raise BadRequest(NO_SUCH_ORIGINAL)
    return value


NO_SUCH_ORIGINAL = "reply_to names no message of this conversation."


CLIENT_KEY_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")


def clean_client_key(value: str) -> str:
    """What a client calls a message it sends ("" for none): 8 to 64 letters, digits, - or _."""
    if value and not CLIENT_KEY_RE.fullmatch(value):
        raise BadRequest("client_key is 8 to 64 letters, digits, - or _.")
    return value
