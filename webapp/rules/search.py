"""Finding messages: the words a message is found by, the words a query asks for, and the
words of a result to mark.

A message's words are its plain text (rules/formatting.py: what a reader sees, not its
Markdown), lower-cased, with accents and other marks folded away; anything that is not a
letter or a digit separates words, so punctuation and regex characters are plain text. A query
matches a message when each of its words is a word of the message or the start of one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from markupsafe import Markup, escape

from webapp.errors import BadRequest

QUERY_MAX = 200  # characters
QUERY_WORDS_MAX = 10  # words of a query that count; more only narrow what is already narrow
WORDS_MAX = 1000  # different words kept per message (a 4,000-character message has fewer)
PAGE = 20  # results a page
_WORD = re.compile(r"[^\W_]+")  # letters and digits; anything else separates words


def fold(text: str) -> str:
    """Lower-cased, accents and other combining marks taken away (é -> e, Å -> a)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words_of(plain: str) -> list[str]:
    """The different words of a message's plain text, folded, in the order they first come."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(fold(plain)):
        seen.setdefault(word, None)
        if len(seen) >= WORDS_MAX:
            break
    return list(seen)


@dataclass(frozen=True)
class Query:
    text: str  # as asked, trimmed
    words: tuple[str, ...]  # folded, different, at most QUERY_WORDS_MAX


def clean_query(value: str) -> Query:
    """What someone asks for: 1 to QUERY_MAX characters, else BadRequest. A query with no word
    in it (only punctuation, say) is no error: it finds nothing."""
    text = " ".join(value.split())
    if not text:
        raise BadRequest("Type something to search for.")
    if len(text) > QUERY_MAX:
        raise BadRequest(f"Search for at most {QUERY_MAX} characters.")
    return Query(text, tuple(words_of(text))[:QUERY_WORDS_MAX])


def matches(word: str, query_words: Iterable[str]) -> bool:
    """Whether a (folded) word of a message is one the query asks for, or starts like one."""
    return any(word.startswith(asked) for asked in query_words)


def marked(plain: str, query_words: Iterable[str]) -> Markup:
    """The text, escaped, with the words the query matched in <mark>."""
    asked = tuple(query_words)
    parts: list[str] = []
    last = 0
    for found in _WORD.finditer(plain):
        if any(matches(word, asked) for word in _WORD.findall(fold(found.group()))):
            parts.append(escape(plain[last : found.start()]))
            parts.append(Markup("<mark>%s</mark>") % found.group())
            last = found.end()
    parts.append(escape(plain[last:]))
    return Markup("").join(parts)
