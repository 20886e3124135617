"""Read server-rendered HTML in tests: elements by id, tag or class, their text and attributes."""

from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    children: list["Element | str"] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The element's text, whitespace collapsed as a browser shows it."""
        parts: list[str] = []

        def walk(node: "Element | str") -> None:
            if isinstance(node, str):
                parts.append(node)
            else:
                for child in node.children:
                    walk(child)

        walk(self)
        return " ".join("".join(parts).split())

    def find_all(self, match: Callable[["Element"], bool]) -> list["Element"]:
        found: list[Element] = []
        for child in self.children:
            if isinstance(child, Element):
                if match(child):
                    found.append(child)
                found.extend(child.find_all(match))
        return found

    def select(self, tag: str, class_: str | None = None) -> list["Element"]:
        """Descendants with this tag (and class)."""
        return self.find_all(
            lambda e: (
                e.tag == tag and (class_ is None or class_ in (e.attrs.get("class") or "").split())
            )
        )

    def by_id(self, element_id: str) -> "Element":
        found = self.find_all(lambda e: e.attrs.get("id") == element_id)
        assert len(found) == 1, f"{len(found)} elements with id {element_id!r}"
        return found[0]

    def has_id(self, element_id: str) -> bool:
        return bool(self.find_all(lambda e: e.attrs.get("id") == element_id))

    def rows(self) -> list[list[str]]:
        """The text of each body row's cells (th and td), for a <table>."""
        return [
            [cell.text for cell in row.children if isinstance(cell, Element)]
            for body in self.select("tbody")
            for row in body.select("tr")
        ]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root
