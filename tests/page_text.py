"""What a person reads on a page: its visible text, and the internal values
that must never be part of it (snake_case words, JSON braces, enum values,
usernames). Used by the page tests (Django's client) and the browser tests
(the text Chromium renders)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

SNAKE_CASE = re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b")
ASCII_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
HIDDEN_TAGS = {"script", "style", "template", "head", "textarea"}


class _VisibleText(HTMLParser):
    """The text nodes of an HTML page that a browser shows: not scripts,
    styles nor elements marked hidden (nor the inside of a text box, which
    is what someone types)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.stack: list[tuple[str, bool]] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag in {"br", "hr", "img", "input", "meta", "link", "source", "wbr"}:
            return
        hidden = tag in HIDDEN_TAGS or any(name == "hidden" for name, _value in attrs)
        self.stack.append((tag, hidden))

    def handle_endtag(self, tag) -> None:
        while self.stack:
            open_tag, _hidden = self.stack.pop()
            if open_tag == tag:
                break

    def handle_data(self, data) -> None:
        if not any(hidden for _tag, hidden in self.stack):
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def internal_values(text: str, *, words: set[str] = frozenset()) -> list[str]:
    """What in `text` is internal: snake_case words, JSON braces, and any of
    `words` (enum values, usernames) standing alone."""
    found = SNAKE_CASE.findall(text)
    found += [brace for brace in "{}" if brace in text]
    found += [word for word in ASCII_WORD.findall(text) if word in words]
    return found
