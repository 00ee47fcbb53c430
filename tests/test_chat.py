"""The pure rules in webapp/chat.py, and the message-text filter in webapp/templating.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.html import Element, parse
from webapp.errors import BadRequest, ChatError, PayloadTooLarge
from webapp.rules import keys, rates
from webapp.rules import text as texts
from webapp.web.templating import render_text

# Usernames


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "abc"),
        ("a" * 32, "a" * 32),
        ("Alice_99", "Alice_99"),
        ("___", "___"),
        ("  bob  ", "bob"),
        ("007", "007"),
    ],
)
def test_clean_username_accepts(value: str, expected: str) -> None:
    assert texts.clean_username(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "ab",
        "a" * 33,
        "   ",
        "bob smith",
        "bob-smith",
        "bob.smith",
        "bob@example",
        "<script>",
        "héllo",
        "ｆｕｌｌ",  # full-width letters  # noqa: RUF001
        "bob\u200b",  # zero-width space
        "abc\x00",
        "abc/..",
        "١٢٣",  # Arabic-Indic digits
    ],
)
def test_clean_username_refuses(value: str) -> None:
    with pytest.raises(BadRequest) as caught:
        texts.clean_username(value)
    assert caught.value.status_code == 400
    assert "3 to 32" in caught.value.message


@pytest.mark.parametrize(
    ("value", "key"), [("Alice", "alice"), ("alice", "alice"), ("  BOB_1 ", "bob_1")]
)
def test_username_key_ignores_case_and_spaces(value: str, key: str) -> None:
    assert texts.username_key(value) == key


def test_names_differing_only_in_case_share_a_key() -> None:
    assert texts.username_key("Carol") == texts.username_key("cAROL")
    assert texts.username_key("carol") != texts.username_key("carol_")


LOOKALIKES = [
    # (case, a name that is not ASCII, the ASCII name it could be mistaken for)
    ("Kelvin sign", "\u212aate", "kate"),
    ("Kelvin sign inside", "mi\u212ae", "mike"),
    ("dotted capital I", "\u0130van", "ivan"),
    ("long s", "\u017fam", "sam"),
    ("full-width letters", "\uff4b\uff41\uff54\uff45", "kate"),
    ("Cyrillic a", "k\u0430te", "kate"),
]


@pytest.mark.parametrize(
    ("name", "ascii_name"),
    [case[1:] for case in LOOKALIKES],
    ids=[case[0] for case in LOOKALIKES],
)
def test_only_ascii_names_are_names(name: str, ascii_name: str) -> None:
    assert texts.is_username(ascii_name)
    assert texts.is_username(ascii_name.upper())
    assert not texts.is_username(name)
    assert texts.username_key(name) != texts.username_key(ascii_name)
    assert rates.throttle_keys(name, "10.0.0.1") != rates.throttle_keys(ascii_name, "10.0.0.1")


@pytest.mark.parametrize(
    ("value", "valid"),
    [("abc", True), ("  Bob_1 ", True), ("ab", False), ("a" * 33, False), ("a b c", False),
     ("abc\n", True), ("abc\x00", False), ("", False)],
)  # fmt: skip
def test_is_username(value: str, valid: bool) -> None:
    assert texts.is_username(value) is valid


# Passwords


@pytest.mark.parametrize("length", [8, 9, 64, 127, 128])
def test_check_password_accepts(length: int) -> None:
    password = "p" * length
    assert texts.check_password(password) == password


@pytest.mark.parametrize("length", [0, 1, 7, 129, 1000])
def test_check_password_refuses(length: int) -> None:
    with pytest.raises(BadRequest) as caught:
        texts.check_password("p" * length)
    assert caught.value.status_code == 400
    assert "8 to 128" in caught.value.message


def test_check_password_keeps_spaces() -> None:
    assert texts.check_password("  spaced  ") == "  spaced  "


# Message text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hello", "hello"),
        ("  hello  ", "hello"),
        ("line one\nline two", "line one\nline two"),
        ("line one\r\nline two", "line one\nline two"),
        ("a\r\n\r\nb", "a\n\nb"),
        ("\r\n\r\nhi\r\n", "hi"),
        ("x" * 4000, "x" * 4000),
        ("<b>kept as text</b>", "<b>kept as text</b>"),
    ],
)
def test_clean_body_accepts(value: str, expected: str) -> None:
    assert texts.clean_body(value) == expected


def test_clean_body_counts_a_line_break_once() -> None:
    """Browsers send a textarea's line breaks as CRLF; maxlength counts each as one."""
    typed = "\n".join(["y" * 99] * 39 + ["y" * 100])  # exactly 4000 characters as typed
    assert len(typed) == 4000
    sent = typed.replace("\n", "\r\n")
    assert len(sent) > 4000
    assert texts.clean_body(sent) == typed


@pytest.mark.parametrize("value", ["", " ", "\n", "\r\n\r\n", " \t \n "])
def test_clean_body_refuses_empty(value: str) -> None:
    with pytest.raises(BadRequest) as caught:
        texts.clean_body(value)
    assert caught.value.status_code == 400


@pytest.mark.parametrize("value", ["x" * 4001, "x" * 4001 + "   ", "x" * 10_000])
def test_clean_body_refuses_too_long(value: str) -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        texts.clean_body(value)
    assert caught.value.status_code == 413
    assert "4000" in caught.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ("tab\there\nand a line", "tab\there\nand a line"),
        ("nul\x00byte", "nulbyte"),
        ("bell\x07 escape\x1b[31m red", "bell escape[31m red"),
        ("delete\x7f and C1\x85\x9b", "delete and C1"),
        ("lone\rreturn", "lonereturn"),
        ("invoice_\u202egnp.exe", "invoice_gnp.exe"),  # right-to-left override
        ("\u202a\u202b\u202c\u202d\u202e", ""),  # embeddings, pop, overrides
        ("\u2066isolated\u2067 \u2068text\u2069", "isolated text"),
        ("שלום \u200fmark\u200e kept", "שלום \u200fmark\u200e kept"),  # direction marks stay
        ("👩🏽\u200d💻 joined", "👩🏽\u200d💻 joined"),  # a zero-width joiner stays
    ],
)
def test_strip_controls(value: str, expected: str) -> None:
    assert texts.strip_controls(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("\x00 hello \x00", "hello"),
        ("a\r\nb\x00\r\n", "a\nb"),
        ("\u202eevil\u202c", "evil"),
    ],
)
def test_clean_body_drops_controls(value: str, expected: str) -> None:
    assert texts.clean_body(value) == expected


@pytest.mark.parametrize("value", ["\x00", "\x00\x01\x1b", " \u202e \u2066\u2069 ", "\r"])
def test_clean_body_of_only_controls_is_empty(value: str) -> None:
    with pytest.raises(BadRequest):
        texts.clean_body(value)


# Away messages


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ""),
        ("   ", ""),
        ("Back at 3", "Back at 3"),
        ("  back \n  at\t3  ", "back at 3"),
        ("z" * 200, "z" * 200),
        ("gone\x00 \x1b fishing", "gone fishing"),
        ("\u202eyawa\u202c \u2067back\u2069", "yawa back"),
        ("\x00\u202e", ""),
    ],
)
def test_clean_away_accepts(value: str, expected: str) -> None:
    assert texts.clean_away(value) == expected


@pytest.mark.parametrize("value", ["z" * 201, "word " * 60])
def test_clean_away_refuses_too_long(value: str) -> None:
    with pytest.raises(BadRequest) as caught:
        texts.clean_away(value)
    assert caught.value.status_code == 400


# Conversations


def test_dm_key_is_symmetric() -> None:
    a, b, c = "65f0000000000000000000aa", "65f0000000000000000000bb", "65f0000000000000000000cc"
    assert keys.dm_key(a, b) == keys.dm_key(b, a)
    assert keys.dm_key(a, b) != keys.dm_key(a, c)
    assert keys.dm_key(a, b) != keys.dm_key(b, c)
    assert keys.dm_key(a, b) != keys.PUBLIC
    assert keys.dm_key(a, a) == f"dm:{a}:{a}"


@pytest.mark.parametrize(
    ("value", "cleaned"),
    [
        ("Plans", "Plans"),
        ("  Weekend   plans \n", "Weekend plans"),
        ("x" * 64, "x" * 64),
        ("\u202eevil\u202c", "evil"),  # bidi overrides dropped
        ("Ünïcødé 🎉", "Ünïcødé 🎉"),
        ("\u200bdev\u200d", "\u200bdev\u200d"),  # invisible beside something visible
        ("🏳️\u200d🌈", "🏳️\u200d🌈"),
        ("e\u0301", "e\u0301"),
    ],
)
def test_room_names_are_cleaned(value: str, cleaned: str) -> None:
    assert texts.clean_room_name(value) == cleaned


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "\x00\x01",
        "x" * 65,
        "\u200b\u200b",  # zero-width spaces
        "\u2060\ufeff",  # word joiner, BOM
        "\u00ad",  # soft hyphen
        "\u200c\u200d",  # joiners
        "\U000e0041\U000e007f",  # tag letters
        "\u0301\u20dd",  # combining marks with nothing to mark
        "\ufe0f",  # a variation selector
        "\u3164\u115f\uffa0",  # Hangul fillers
        "\u2800",  # blank Braille
        "\ue000",  # private use
        " \u200b\u00a0\u3000\u2028",  # all of a kind at once
    ],
)
def test_bad_room_names_are_refused(value: str) -> None:
    with pytest.raises(BadRequest):
        texts.clean_room_name(value)


@pytest.mark.parametrize(("value", "ok"), [("", True), ("t" * 200, True), ("t" * 201, False)])
def test_topics_are_at_most_200_characters(value: str, ok: bool) -> None:
    if ok:
        assert texts.clean_topic(value) == value
    else:
        with pytest.raises(BadRequest):
            texts.clean_topic(value)


# Throttling


def test_throttle_keys_ignore_the_case_of_the_name() -> None:
    assert rates.throttle_keys("Alice", "10.0.0.1") == rates.throttle_keys("alice", "10.0.0.1")
    assert rates.throttle_keys("alice", "10.0.0.1") != rates.throttle_keys("alice", "10.0.0.2")
    name_key, address_key = rates.throttle_keys("alice", "10.0.0.1")
    assert "alice" in name_key
    assert "alice" not in address_key


NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds_ago", "low", "high"),
    [
        (0, 60, 60),  # just failed: wait the whole window
        (0.5, 60, 60),
        (30, 30, 31),
        (30.5, 30, 30),
        (59, 1, 2),
        (59.9, 1, 1),
        (60, 1, 1),  # never 0: the client must wait at least a second
        (3600, 1, 1),
        (-30, 60, 60),  # a failure "in the future" (clock skew) never asks for over a minute
    ],
)
def test_retry_after_is_between_1_and_60(seconds_ago: float, low: int, high: int) -> None:
    value = rates.retry_after(NOW - timedelta(seconds=seconds_ago), NOW)
    assert 1 <= value <= 60
    assert low <= value <= high


def test_retry_after_covers_the_rest_of_the_window() -> None:
    """Waiting Retry-After seconds is always enough for the oldest failure to stop counting."""
    for tenths in range(0, 600):
        oldest = NOW - timedelta(seconds=tenths / 10)
        wait = rates.retry_after(oldest, NOW)
        assert NOW + timedelta(seconds=wait) >= oldest + rates.LOGIN_WINDOW, tenths


# The posting rate

T0 = 1_800_000_000.0  # a time of the right size: rounding at epoch seconds matters
RATE_CASES = [
    # (case, tat, seconds after T0, admitted, the tat after it)
    ("first ever", None, 0.0, True, T0 + 0.1),
    ("after a pause", T0 - 60, 0.0, True, T0 + 0.1),
    ("just due", T0, 0.0, True, T0 + 0.1),
    ("a little ahead", T0 + 1, 0.0, True, T0 + 1.1),
    ("at the tolerance", T0 + 2.9, 0.0, True, T0 + 3.0),
    ("past the tolerance", T0 + 3.0, 0.0, False, None),
    ("far past it", T0 + 60, 0.0, False, None),
    ("past it, later due", T0 + 3.0, 0.1, True, T0 + 3.1),
]


@pytest.mark.parametrize(
    ("tat", "later", "admitted", "after"),
    [case[1:] for case in RATE_CASES],
    ids=[case[0] for case in RATE_CASES],
)
def test_posting_rate_admits(
    tat: float | None, later: float, admitted: bool, after: float | None
) -> None:
    new_tat = rates.POSTING.admit(tat, T0 + later)
    assert (new_tat is not None) is admitted
    if after is not None:
        assert new_tat == pytest.approx(after, abs=1e-6)


def burst(rate: rates.Rate, times: list[float]) -> list[bool]:
    """Which of posts at these times are admitted, the tat carried from one to the next."""
    tat, admitted = None, []
    for now in times:
        new_tat = rate.admit(tat, now)
        admitted.append(new_tat is not None)
        tat = new_tat if new_tat is not None else tat
    return admitted


def test_posting_rate_takes_a_burst_of_thirty_at_once() -> None:
    assert burst(rates.POSTING, [T0] * 31) == [True] * 30 + [False]


def test_posting_rate_admits_ten_a_second_for_ever_after_a_burst() -> None:
    paced = [T0 + (n + 1) * 0.1 for n in range(600)]  # a minute at 10 a second
    assert burst(rates.POSTING, [T0] * 30 + paced) == [True] * 630


def test_posting_rate_refuses_eleven_a_second_once_the_burst_is_spent() -> None:
    admitted = burst(rates.POSTING, [T0 + n / 11 for n in range(11 * 60)])
    assert all(admitted[:30])
    assert not all(admitted)
    assert sum(admitted) <= 30 + 10 * 60


@pytest.mark.parametrize(("ahead", "wait"), [(3.0, 1), (3.5, 1), (3.95, 2), (10.0, 8), (62.9, 60)])
def test_posting_rate_retry_after(ahead: float, wait: int) -> None:
    assert rates.POSTING.admit(T0 + ahead, T0) is None
    assert rates.POSTING.retry_after(T0 + ahead, T0) == wait
    assert rates.POSTING.admit(T0 + ahead, T0 + wait) is not None  # waiting is enough


def test_errors_are_chat_errors_with_their_status() -> None:
    assert issubclass(BadRequest, ChatError)
    assert BadRequest("x").status_code == 400
    assert PayloadTooLarge("x").status_code == 413


# Message text as HTML


def test_render_text_escapes_markup() -> None:
    text = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
    html = str(render_text(text))
    shown = parse(html)
    assert shown.elements() == []  # no script, no img: nothing but text
    assert shown.raw_text == text
    assert "&#34;x&#34;" in html or "&quot;x&quot;" in html  # quotes escaped too


def test_render_text_keeps_line_breaks() -> None:
    shown = parse(str(render_text("one\ntwo\n\nthree")))
    assert [element.tag for element in shown.elements()] == ["br"] * 3
    assert shown.raw_text.replace("\n", "") == "onetwothree"
    assert shown.lines() == ["one", "two", "", "three"]


def test_render_text_plain_text_unchanged() -> None:
    assert str(render_text("just words")) == "just words"


def _links(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """(href, other attributes) of each link; the link text must be its href, and links are
    all the markup there is besides line breaks."""
    shown = parse(html)
    found = []
    for link in shown.find_all("a"):
        assert link.raw_text == link.get("href") and link.elements() == [], html
        found.append((link.get("href"), {k: v for k, v in link.attrs.items() if k != "href"}))
    assert {element.tag for element in shown.iter()} <= {"a", "br"}, html
    return found


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "https://example.com/path?q=1",
        "https://example.com/a_b-c/~d#frag",
    ],
)
def test_render_text_links_http_urls(url: str) -> None:
    html = str(render_text(f"see {url} now"))
    links = _links(html)
    assert len(links) == 1, html
    href, attrs = links[0]
    assert href == url
    assert attrs["rel"] == "noopener nofollow"
    assert html.startswith("see ")
    assert html.endswith(" now")


def test_render_text_escapes_inside_links() -> None:
    html = str(render_text("https://example.com/?a=1&b=2"))
    assert [href for href, _ in _links(html)] == ["https://example.com/?a=1&b=2"]
    assert "&b=" not in html  # the ampersand escaped, in the attribute and in the text


@pytest.mark.parametrize(
    "text",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "ftp://example.com/file",
        "//example.com/protocol-relative",
        "www.example.com",
    ],
)
def test_render_text_does_not_link_other_schemes(text: str) -> None:
    html = str(render_text(text))
    shown = parse(html)
    assert shown.elements() == [], html  # no link, no script: text
    assert shown.raw_text == text


def test_render_text_link_cannot_break_out_of_its_attribute() -> None:
    html = str(render_text('https://example.com/"onmouseover="alert(1)'))
    handlers = [k for e in parse(html).iter() for k in e.attrs if k.startswith("on")]
    assert handlers == [], html
    links = _links(html)
    assert len(links) == 1
    assert links[0][0] == "https://example.com/"
    assert '"' not in links[0][0]


@pytest.mark.parametrize("mark", [".", ",", ";", ":", "!", "?", ")", "]"])
def test_render_text_leaves_trailing_punctuation_out_of_links(mark: str) -> None:
    html = str(render_text(f"go to https://example.com/page{mark}"))
    links = _links(html)
    assert len(links) == 1, html
    assert links[0][0] == "https://example.com/page"
    last = parse(html).children[-2:]
    assert isinstance(last[0], Element) and last[0].tag == "a" and last[1] == mark


def test_render_text_links_each_url_once() -> None:
    html = str(render_text("https://a.example and\nhttps://b.example."))
    assert [href for href, _ in _links(html)] == ["https://a.example", "https://b.example"]
    assert parse(html).find_all("br")


@pytest.mark.parametrize(
    ("conversation", "user_id", "peer"),
    [
        ("dm:a:b", "a", "b"),
        ("dm:a:b", "b", "a"),
        ("dm:a:a", "a", "a"),
        ("dm:a:b", "c", None),
        ("public", "a", None),
    ],
)
def test_dm_peer(conversation: str, user_id: str, peer: str | None) -> None:
    assert keys.dm_peer(conversation, user_id) == peer
