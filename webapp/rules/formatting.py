"""A message's small Markdown, rendered to safe HTML once per change (never once per reader).

The parser is markdown-it-py with raw HTML off and bare links made clickable (linkify-it-py);
headings, tables, images and rules are not part of it and show as typed. Its own link check
is a deny-list (it lets `feed:javascript:` through), so a link here must be absolute http,
https or mailto, or it shows as text; and whatever the parser makes goes through nh3, with an
allow-list of tags, attributes and URL schemes, before anyone sees it.

The plain text of a message, for search and quotes, is its words without the Markdown: what a
reader sees.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

TAGS = frozenset(
    {"p", "br", "em", "strong", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a", "span"}
)
ATTRIBUTES = {"a": {"href"}, "ol": {"start"}, "span": {"data-username"}}
CLASSES = {"span": {"mention"}}  # a span is a mention, and nothing else
MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{3,32})(?![\w])")
MENTIONS_MAX = 50  # names looked up (and so notified) per message
SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener nofollow ugc"
MAX_NESTING = 20  # quotes within quotes, lists within lists: deeper shows as text
QUOTE_CHARS = 120  # how much of a message a reply's quote shows


def _absolute_link(url: str) -> bool:
    """Only absolute http, https and mailto links; relative and //host ones stay text."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    if parts.scheme.lower() not in SCHEMES:
        return False
    return parts.scheme.lower() == "mailto" or bool(parts.netloc)


def _parser() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark",
        {"html": False, "linkify": True, "breaks": True, "maxNesting": MAX_NESTING},
    )
    md.enable(["linkify", "strikethrough"])
    md.disable(["heading", "lheading", "image", "hr", "html_block", "html_inline"])
    md.validateLink = _absolute_link  # type: ignore[method-assign]
    return md


_markdown = _parser()
_cleaner = nh3.Cleaner(
    tags=set(TAGS),
    attributes={"*": set(), **{tag: set(names) for tag, names in ATTRIBUTES.items()}},
    allowed_classes={tag: set(names) for tag, names in CLASSES.items()},
    url_schemes=set(SCHEMES),
    link_rel=LINK_REL,
    url_relative="deny",
    strip_comments=True,
)


@dataclass(frozen=True)
class Rendered:
    html: str  # what every reader sees
    plain: str  # its words, on one line: for search and for quotes


def mention_candidates(text: str) -> list[str]:
    """The names written as @name in a message's text (not in code), each once, in order, at
    most MENTIONS_MAX: whether each is a mention depends on who can read the conversation."""
    names: dict[str, None] = {}
    if "@" not in text:
        return []  # (most messages: no need to parse)
    for token in _markdown.parse(text):
        for child in token.children or []:
            if child.type == "text":
                for found in MENTION.finditer(child.content):
                    names.setdefault(found.group(1), None)
                    if len(names) >= MENTIONS_MAX:
                        return list(names)
    return list(names)


def render(text: str, mentioned: Collection[str] = ()) -> Rendered:
    """The message's HTML (its Markdown, rendered and sanitised, `mentioned` names marked as
    mentions) and its plain words."""
    tokens = _markdown.parse(text)
    if mentioned:
        _mark_mentions(tokens, {name.lower(): name for name in mentioned})
    html = _cleaner.clean(_markdown.renderer.render(tokens, _markdown.options, {})).strip()
    return Rendered(html, " ".join(_words(tokens)))


def _mark_mentions(tokens: list[Token], names: dict[str, str]) -> None:
    """Splits text tokens around each @name of `names` (by its lower case: each person's name
    as it is) into a mention element."""
    for token in tokens:
        if token.type != "inline" or not token.children:
            continue
        children: list[Token] = []
        for child in token.children:
            if child.type != "text":
                children.append(child)
                continue
            last = 0
            for found in MENTION.finditer(child.content):
                name = names.get(found.group(1).lower())
                if name is None:
                    continue
                children.append(_text(child.content[last : found.start()]))
                children += _mention(name)
                last = found.end()
            children.append(_text(child.content[last:]))
        token.children = [c for c in children if c.type != "text" or c.content]


def _text(content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


def _mention(name: str) -> list[Token]:
    opening = Token("mention_open", "span", 1)
    opening.attrs = {"class": "mention", "data-username": name}
    closing = Token("mention_close", "span", -1)
    return [opening, _text(f"@{name}"), closing]


def _words(tokens: list[Token]) -> list[str]:
    """The text of each block, with inline markup taken away (not replaced by a space)."""
    words: list[str] = []
    for token in tokens:
        if token.type == "inline":
            pieces = [
                child.content if child.type in ("text", "code_inline") else " "
                for child in token.children or []
                if child.type in ("text", "code_inline", "softbreak", "hardbreak")
            ]
            words += "".join(pieces).split()
        elif token.type in ("code_block", "fence"):
            words += token.content.split()
    return words


def excerpt(plain: str, limit: int = QUOTE_CHARS) -> str:
    """The start of a message's plain words, for a reply's quote."""
    return plain if len(plain) <= limit else plain[: limit - 1].rstrip() + "…"
