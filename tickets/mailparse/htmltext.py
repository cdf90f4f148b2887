"""HTML mail bodies: a readable plain-text rendering, and a sanitised copy
safe to show in the admin."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

# Tags kept by the sanitiser. No <img>: remote images are tracking pixels and
# leak the agent's address; inline images are attachments with a content_id.
SAFE_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "dd", "del",
        "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
        "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "small", "span", "strike",
        "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
        "tt", "u", "ul",
    }
)  # fmt: skip
SAFE_ATTRIBUTES = {
    "a": {"href", "title"},
    "td": {"colspan", "rowspan", "align", "valign"},
    "th": {"colspan", "rowspan", "align", "valign"},
    "*": {"dir", "lang"},
}
# Removed with their content. script/style/iframe/object are also absent
# from SAFE_TAGS, so nothing of them survives either way.
DROPPED_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "embed", "noscript", "template", "title", "head"}
)


def sanitise_html(html: str) -> str:
    """Allowlist sanitising with nh3 (ammonia): basic formatting tags only,
    no scripts, styles, frames, event-handler attributes or ``style``
    attributes; links only to http(s), mailto and tel, opened with
    ``rel="noopener noreferrer nofollow"``."""
    return nh3.clean(
        html,
        tags=set(SAFE_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in SAFE_ATTRIBUTES.items()},
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    ).strip()


_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
        "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table",
        "tbody", "tfoot", "thead", "tr", "ul",
    }
)  # fmt: skip
_SKIPPED = frozenset({"script", "style", "head", "title", "noscript", "template", "iframe"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "wbr", "area", "base", "col"})
_WIDE = r"[\u3000-\u30ff\u3400-\u9fff\uf900-\ufaff\uff01-\uff60]"
# A source line break between two Japanese characters is not a space.
_CJK_BREAK = re.compile(rf"(?<={_WIDE})[ \t\r\n\f]*[\r\n][ \t\r\n\f]*(?={_WIDE})")
_HTML_SPACE = re.compile(r"[ \t\r\n\f]+")  # HTML whitespace: ASCII only, never U+3000


class _TextRenderer(HTMLParser):
    """Collects lines of text; lines inside <blockquote> get a "> " per level
    so that quoted history in HTML mail is recognised like plain-text quotes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = []
        self.current: list[str] = []
        self.current_depth = 0
        self.depth = 0
        self.skip = 0
        self.pre = 0
        self.links: list[tuple[str, int]] = []  # (href, length of text before the link)

    def _text_so_far(self) -> str:
        return "".join(self.current)

    def newline(self, *, blank: bool = False) -> None:
        line = self._text_so_far().rstrip()
        if line or not blank:
            self.lines.append((self.current_depth, line))
        if blank and line:
            self.lines.append((self.depth, ""))
        self.current = []
        self.current_depth = self.depth

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skip += tag not in _VOID
            return
        if tag == "br":
            self.newline()
        elif tag in _BLOCK:
            if self.current and self._text_so_far().strip():
                self.newline()
            if tag == "blockquote":
                self.depth += 1
                self.current_depth = self.depth
            elif tag == "pre":
                self.pre += 1
            elif tag == "li":
                self.current.append("・")
            elif tag == "hr":
                self.lines.append((self.depth, "-" * 20))
        elif tag in ("td", "th") and self.current:
            self.current.append("\t")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.links.append((href, len(self._text_so_far())))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skip = max(0, self.skip - 1)
            return
        if tag == "a" and self.links:
            href, start = self.links.pop()
            label = self._text_so_far()[start:].strip()
            if href.startswith(("http://", "https://")) and label and label != href:
                self.current.append(f" ({href})")
        elif tag in _BLOCK:
            self.newline(blank=tag in ("p", "blockquote", "table"))
            if tag == "blockquote":
                self.depth = max(0, self.depth - 1)
                self.current_depth = self.depth
            elif tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.newline()
        elif tag not in _VOID:
            self.handle_starttag(tag, attrs)
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            parts = data.replace("\r\n", "\n").split("\n")
            for index, part in enumerate(parts):
                if index:
                    self.newline()
                self.current.append(part)
            return
        data = _HTML_SPACE.sub(" ", _CJK_BREAK.sub("", data))
        if not self._text_so_far().strip():
            data = data.lstrip(" ")
        if data:
            self.current.append(data)


def html_to_text(html: str) -> str:
    """Render HTML as plain text with html.parser: scripts, styles and the
    head are dropped, blocks and <br> become line breaks, list items get
    "・", link targets follow their text, and blockquotes become "> " lines."""
    renderer = _TextRenderer()
    try:
        renderer.feed(html)
        renderer.close()
    except (AssertionError, ValueError):  # pragma: no cover - html.parser is lenient
        pass
    renderer.newline()
    out: list[str] = []
    for depth, line in renderer.lines:
        out.append(("> " * depth + line) if depth and line else line)
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")
