"""The part of a mail body worth showing: quoted history and the signature
removed, forwarded content kept.

Rules, in order:

1. A **forward marker** ("---------- Forwarded message ---------",
   "-------- 転送メッセージ --------", "Begin forwarded message:") ends the
   search: what follows is the content the customer is sending us (an order
   confirmation they ask about), so it is kept as it is. When the subject
   says the mail is a forward (Fwd:, FW:, 転送:), Outlook's
   "-----Original Message-----" and "From:/Sent:" blocks count as forward
   markers too, since Outlook forwards with them.
2. A **reply separator** cuts everything from it on: "-----Original
   Message-----" (with or without spaces), "-----元のメッセージ-----", and an
   Outlook header block ("From:/差出人:" followed within five lines by two of
   "Sent:/送信日時:/Date:/日時:", "To:/宛先:", "Subject:/件名:"), with the
   "_____" rule above it.
3. An **attribution line** ("On ... wrote:", "2026年11月20日(金) 10:15 山田 太郎
   <taro@example.jp>:", "2026/11/20 10:15、山田 太郎 <...> のメッセージ:",
   "... さんは書きました:"), possibly wrapped over three lines, cuts
   everything after it, unless unquoted lines follow the quotes (the
   customer answered inline): then only the attribution goes.
4. Lines starting with ">" or "＞" (after optional spaces) go.
5. A signature after a "-- " (or "--") line goes, when at most
   :data:`SIGNATURE_MAX_LINES` lines follow it.

When nothing is left (a mail that is all quotes), the full text is shown.
"""

from __future__ import annotations

import re

SIGNATURE_MAX_LINES = 20

_QUOTED = re.compile(r"^[ \t\u3000]*[>＞]")
_FORWARD = re.compile(
    r"^(?:-{2,}\s*(?:forwarded message|転送メッセージ|転送されたメッセージ|forwarded by .*)\s*-*"
    r"|begin forwarded message\s*[:：]|転送されたメッセージ\s*[:：]|転送メッセージ\s*[:：])$",
    re.IGNORECASE,
)
_ORIGINAL = re.compile(
    r"^-{2,}\s*(?:original message|元のメッセージ|オリジナル\s*メッセージ)\s*-{2,}$", re.IGNORECASE
)
_RULE = re.compile(r"^_{10,}$")
_OUTLOOK_FROM = re.compile(r"^(?:from|差出人|送信者)\s*[:：]", re.IGNORECASE)
_OUTLOOK_FIELDS = (
    re.compile(r"^(?:sent|date|送信日時|日時|日付|送信日)\s*[:：]", re.IGNORECASE),
    re.compile(r"^(?:to|宛先|受信者)\s*[:：]", re.IGNORECASE),
    re.compile(r"^(?:subject|件名)\s*[:：]", re.IGNORECASE),
)
_DATE_OR_ADDRESS = re.compile(r"\d{4}\s*[/年.\-]\s*\d{1,2}|@|\d{1,2}:\d{2}")
_ATTRIBUTIONS = (
    re.compile(r"^On\s.{4,}\swrote\s*[:：]$", re.IGNORECASE),
    re.compile(r"(?:wrote|書きました|のメッセージ|のメール)\s*[:：]$", re.IGNORECASE),
    re.compile(r"^\d{4}年\s*\d{1,2}月\s*\d{1,2}日.*@.*[:：]$"),
)


def visible_text(text: str, *, forwarded: bool = False) -> str:
    """The display version of ``text`` (see the module docstring)."""
    lines = text.split("\n")
    head, tail = _split_history(lines, forwarded=forwarded)
    head = [line for line in head if not _QUOTED.match(line)]
    head = _without_signature(head)
    shown = "\n".join(head + tail)
    shown = re.sub(r"\n[ \t]*(?:\n[ \t]*){2,}", "\n\n", shown).strip("\n").rstrip()
    return shown if shown.strip() else text.strip("\n").rstrip()


def _split_history(lines: list[str], *, forwarded: bool) -> tuple[list[str], list[str]]:
    """(lines before the history, kept forwarded lines)."""
    for index, line in enumerate(lines):
        if _QUOTED.match(line):
            continue
        stripped = line.strip()
        if _FORWARD.match(stripped):
            return lines[:index], lines[index:]
        outlook = _ORIGINAL.match(stripped) or _is_outlook_block(lines, index)
        if outlook:
            if forwarded:
                return lines[:index], lines[index:]
            return lines[: _rule_above(lines, index)], []
        length = _attribution_length(lines, index)
        if length:
            rest = lines[index + length :]
            if _answers_inline(rest):
                return lines[:index] + rest, []
            return lines[:index], []
    return lines, []


def _is_outlook_block(lines: list[str], index: int) -> bool:
    if not _OUTLOOK_FROM.match(lines[index].strip()):
        return False
    following = [line.strip() for line in lines[index + 1 : index + 6]]
    found = sum(any(field.match(line) for line in following) for field in _OUTLOOK_FIELDS)
    return found >= 2 and any(_OUTLOOK_FIELDS[0].match(line) for line in following)


def _rule_above(lines: list[str], index: int) -> int:
    """Where to cut: at the "_____" line above an Outlook block, if any."""
    above = index - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    return above if above >= 0 and _RULE.match(lines[above].strip()) else index


def _attribution_length(lines: list[str], index: int) -> int:
    """How many lines (1-3) the attribution starting at ``index`` spans; 0 if none."""
    parts: list[str] = []
    for line in lines[index : index + 3]:
        if not line.strip() or _QUOTED.match(line):
            break
        parts.append(line.strip())
        joined = " ".join(parts)
        if len(joined) > 400:
            break
        if _ATTRIBUTIONS[0].match(joined) or _ATTRIBUTIONS[2].match(joined):
            return len(parts)
        if _ATTRIBUTIONS[1].search(joined) and _DATE_OR_ADDRESS.search(joined):
            return len(parts)
    return 0


def _answers_inline(rest: list[str]) -> bool:
    """Whether unquoted text is interleaved with the quotes after an
    attribution (a signature after "-- " does not count)."""
    seen_quote = False
    for line in rest:
        if line.rstrip() in ("--", "-- "):
            return False
        if _QUOTED.match(line):
            seen_quote = True
        elif line.strip() and seen_quote:
            return True
    return False


def _without_signature(lines: list[str]) -> list[str]:
    for index in range(len(lines) - 1, -1, -1):
        if lines[index] in ("-- ", "--") and len(lines) - index - 1 <= SIGNATURE_MAX_LINES:
            return lines[:index]
    return lines
