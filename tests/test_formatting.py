"""A message's small Markdown (webapp/rules/formatting.py): every construct of the contract, and
what an attacker would type, as tables. Markup is read with the suite's parser, never regexes."""

from __future__ import annotations

import pytest

from tests.html import Element, parse
from webapp.rules.formatting import LINK_REL, TAGS, excerpt, render

SAFE_SCHEMES = ("http://", "https://", "mailto:")


def tags_of(html: str) -> list[Element]:
    return list(parse(html).iter())


def assert_harmless(html: str) -> None:
    """Only the allowed tags, links only to absolute http, https and mailto, with rel."""
    for element in tags_of(html):
        assert element.tag in TAGS, (element.tag, html)
        allowed = {"a": {"href", "rel"}, "ol": {"start"}}.get(element.tag, set())
        assert set(element.attrs) <= allowed, (element.tag, element.attrs, html)
        if element.tag == "a":
            href = str(element.attrs["href"])
            assert href.startswith(SAFE_SCHEMES), html
            assert element.attrs["rel"] == LINK_REL


@pytest.mark.parametrize(
    ("text", "structure"),
    [
        ("*em* and _em_", [("p", "em and em"), ("em", "em"), ("em", "em")]),
        ("**strong**", [("p", "strong"), ("strong", "strong")]),
        ("~~struck~~", [("p", "struck"), ("s", "struck")]),
        ("`code` here", [("p", "code here"), ("code", "code")]),
        ("```\nx = 1\n  y\n```", [("pre", "x = 1 y"), ("code", "x = 1 y")]),
        ("> quoted\n> more", [("blockquote", "quoted more"), ("p", "quoted more"), ("br", "")]),
        ("- a\n- b", [("ul", "a b"), ("li", "a"), ("li", "b")]),
        ("1. x\n2. y", [("ol", "x y"), ("li", "x"), ("li", "y")]),
        ("one\ntwo", [("p", "one two"), ("br", "")]),
        ("one\n\ntwo", [("p", "one"), ("p", "two")]),
        ("[text](https://example.com/a)", [("p", "text"), ("a", "text")]),
        (
            "see https://example.com",
            [("p", "see https://example.com"), ("a", "https://example.com")],
        ),
        ("www.example.com", [("p", "www.example.com"), ("a", "www.example.com")]),
        ("[mail](mailto:a@example.com)", [("p", "mail"), ("a", "mail")]),
    ],
)
def test_every_construct_of_the_contract(text: str, structure: list[tuple[str, str]]) -> None:
    html = render(text).html
    assert [(e.tag, e.text) for e in tags_of(html)] == structure
    assert_harmless(html)


@pytest.mark.parametrize(
    ("text", "href"),
    [
        ("[t](https://example.com)", "https://example.com"),
        ("http://example.com/x?y=1&z=2", "http://example.com/x?y=1&z=2"),
        ("www.example.com", "http://www.example.com"),
        ("[m](mailto:someone@example.com)", "mailto:someone@example.com"),
    ],
)
def test_links_go_where_they_say_with_rel(text: str, href: str) -> None:
    (link,) = parse(render(text).html).find_all("a")
    assert link.attrs == {"href": href, "rel": "noopener nofollow ugc"}


@pytest.mark.parametrize(
    "text",
    [
        "# a heading",
        "| a | b |\n|---|---|\n| 1 | 2 |",
        "***",
        "<b>raw</b>",
        "<div>block</div>",
    ],
)
def test_what_is_not_part_of_it_shows_as_typed(text: str) -> None:
    rendered = render(text)
    assert parse(rendered.html).text == " ".join(text.split())
    assert [e.tag for e in tags_of(rendered.html)] in (["p"], ["p", "br", "br"])


# What an attacker would type: script URLs in every disguise, entity-encoded schemes, data
# URLs, event handlers, raw HTML, relative and protocol-relative links, images.
XSS = [
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](feed:javascript:alert(1))",
    "[x](jav&#x61;script:alert(1))",
    "[x](jav&#97;script:alert(1))",
    "[x](&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x]( javascript:alert(1))",
    "[x](java\tscript:alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](//evil.example/path)",
    "[x](/relative)",
    "[x](relative/path)",
    "[x](#fragment)",
    "[x](file:///etc/passwd)",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "<svg onload=alert(1)>",
    '<iframe src="https://evil.example"></iframe>',
    "![x](https://example.com/a.png)",
    '![x](https://example.com/a.png" onerror="alert(1))',
    '[x](https://example.com "title" onclick="alert(1)")',
    '[x](https://example.com" onmouseover="alert(1))',
    "<style>*{}</style>",
    "`<script>alert(1)</script>`",
    "```html\n<script>alert(1)</script>\n```",
    "javascript:alert(1)",
    "[x](https://example.com)<script>",
    "<!-- a comment --> after",
    "&lt;script&gt;",
    "[x][ref]\n\n[ref]: javascript:alert(1)",
]


@pytest.mark.parametrize("text", XSS)
def test_known_attacks_render_as_harmless_text(text: str) -> None:
    html = render(text).html
    assert_harmless(html)  # no element but the allowed ones, no attribute but href and start
    for link in parse(html).find_all("a"):
        assert not str(link.attrs["href"]).lower().startswith(("javascript", "data", "vbscript"))


@pytest.mark.parametrize("char", [">", "[", "*", "_", "`", "~", "-", "(", "<", "&", "!", "\\"])
def test_four_thousand_of_one_character_render_harmlessly(char: str) -> None:
    """Deep nesting and unclosed brackets render, harmlessly, in bounded time (the benchmark
    prints the time per message; here, that they render at all)."""
    rendered = render(char * 4000)
    assert_harmless(rendered.html)
    assert len(rendered.html) < 200_000


def test_plain_words_are_what_a_reader_sees() -> None:
    rendered = render("**bold** and [a link](https://example.com) `code`\n> quoted")
    assert rendered.plain == "bold and a link code quoted"


@pytest.mark.parametrize(
    ("plain", "quote"),
    [
        ("short", "short"),
        ("x" * 120, "x" * 120),
        ("x" * 121, "x" * 119 + "…"),
        ("word " * 40, ("word " * 40)[:119].rstrip() + "…"),
    ],
)
def test_a_quote_shows_the_start(plain: str, quote: str) -> None:
    assert excerpt(plain) == quote
