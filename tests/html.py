"""Markup, parsed (never read with regexes): a small element tree over the standard library's
HTML parser, with find-by-tag-and-attribute. Every test that looks at a page, a fragment or an
event's markup reads it through this module.

    page = parse(response.text)
    page.one("ul", id="rooms").find_all("li", class_="current")
    fragment(event.data).attrs["data-conversation"]

Attribute filters: `class_` matches one of the element's classes, `data_seq` names
`data-seq` (underscores become hyphens), and True matches any value (the attribute is there).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    ]
)


def _attribute_name(name: str) -> str:
    return "class" if name == "class_" else name.replace("_", "-")


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    children: list[Element | str] = field(default_factory=list)

    def __repr__(self) -> str:  # short, in assertion messages
        return f"<{self.tag} {self.attrs}>"

    def iter(self) -> Iterator[Element]:
        """Every element inside this one, in document order."""
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def matches(self, tag: str, attrs: dict[str, str | bool]) -> bool:
        if tag and self.tag != tag:
            return False
        for name, value in attrs.items():
            if value is True:
                if name not in self.attrs:
                    return False
            elif value is False:
                if name in self.attrs:
                    return False
            elif name == "class":
                if value not in self.classes:
                    return False
            elif self.attrs.get(name) != value:
                return False
        return True

    def is_(self, tag: str = "", **attrs: str | bool) -> bool:
        """Whether this element is of this tag, with these attributes (as find_all takes)."""
        return self.matches(tag, {_attribute_name(k): v for k, v in attrs.items()})

    def find_all(self, tag: str = "", **attrs: str | bool) -> list[Element]:
        wanted = {_attribute_name(k): v for k, v in attrs.items()}
        return [element for element in self.iter() if element.matches(tag, wanted)]

    def find(self, tag: str = "", **attrs: str | bool) -> Element | None:
        found = self.find_all(tag, **attrs)
        return found[0] if found else None

    def one(self, tag: str = "", **attrs: str | bool) -> Element:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag or '*'} {attrs}> in {self!r}"
        return found[0]

    def by_text(self, text: str, tag: str = "", **attrs: str | bool) -> list[Element]:
        """The elements (of this tag and these attributes) whose text is `text`."""
        return [element for element in self.find_all(tag, **attrs) if element.text == text]

    def get(self, name: str, default: str = "") -> str:
        """An attribute's value ("" for one without a value, `default` when it is not there)."""
        if name not in self.attrs:
            return default
        return self.attrs[name] or ""

    def has(self, name: str) -> bool:
        return name in self.attrs

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    @property
    def data(self) -> dict[str, str]:
        """The data- attributes, by their names without "data-"."""
        return {
            name.removeprefix("data-"): value or ""
            for name, value in self.attrs.items()
            if name.startswith("data-")
        }

    @property
    def text(self) -> str:
        """The text inside, whitespace collapsed (elements apart count as words apart)."""
        parts = [c if isinstance(c, str) else c.text for c in self.children]
        return " ".join(" ".join(parts).split())

    @property
    def raw_text(self) -> str:
        """The text inside exactly as it is (character references decoded)."""
        return "".join(c if isinstance(c, str) else c.raw_text for c in self.children)

    def lines(self) -> list[str]:
        """The text inside, split where it has <br> elements (the spaces after each dropped)."""
        lines = [""]

        def read(element: Element) -> None:
            for child in element.children:
                if isinstance(child, str):
                    lines[-1] += child
                elif child.tag == "br":
                    lines.append("")
                else:
                    read(child)

        read(self)
        return [line.lstrip() for line in lines]

    def elements(self) -> list[Element]:
        """The elements directly inside this one."""
        return [child for child in self.children if isinstance(child, Element)]

    def before(self, first: Element, second: Element) -> bool:
        """Whether `first` comes before `second` in this element's document order."""
        order = list(self.iter())
        return order.index(first) < order.index(second)


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {})
        self._open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        self._open[-1].children.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open[-1].children.append(Element(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self._open) - 1, 0, -1):
            if self._open[depth].tag == tag:
                del self._open[depth:]
                return

    def handle_data(self, data: str) -> None:
        self._open[-1].children.append(data)


def parse(html: str | bytes) -> Element:
    """A page or any markup, as a tree under a "#root" element."""
    builder = TreeBuilder()
    builder.feed(html.decode() if isinstance(html, bytes) else html)
    builder.close()
    return builder.root


class _FirstTag(HTMLParser):
    def __init__(self, tag: str, attrs: dict[str, str | bool]) -> None:
        super().__init__(convert_charrefs=True)
        self.wanted = Element(tag, {}), attrs
        self.element: Element | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        if self.element is None and element.matches(self.wanted[0].tag, self.wanted[1]):
            self.element = element

    handle_startendtag = handle_starttag


def first_tag(html: str | bytes, tag: str = "", **attrs: str | bool) -> Element | None:
    """The first element of this tag and these attributes, its attributes only (no children):
    the markup is read only as far as that element, for reading thousands of events, or a
    page's head, cheaply."""
    text = html.decode() if isinstance(html, bytes) else html
    parser = _FirstTag(tag, {_attribute_name(k): v for k, v in attrs.items()})
    read = 0
    while parser.element is None and read < len(text):
        end = text.find(">", read) + 1 or len(text)  # a tag at a time (">" may be quoted)
        parser.feed(text[read:end])
        read = end
    return parser.element


def opening_tag(html: str | bytes) -> Element:
    """The first element of some markup, its attributes only."""
    element = first_tag(html)
    assert element is not None, f"no element in {str(html)[:200]!r}"
    return element


def fragment(html: str | bytes) -> Element:
    """The one top-level element of a fragment (an htmx answer, an event's data)."""
    elements = parse(html).elements()
    assert len(elements) == 1, str(html)[:300]
    return elements[0]


def is_page(html: str) -> bool:
    """A whole page (an <html> element), not a fragment."""
    return parse(html).find("html") is not None
