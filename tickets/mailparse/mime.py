"""Walking a MIME tree: which parts are the body (text and HTML), which are
attachments, and how to read broken structures."""

from __future__ import annotations

import io
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from .blobs import Blobs
from .charsets import decode_text
from .headers import (
    clean_header,
    decode_words,
    header_param,
    header_param_text,
    header_text,
    raw_header,
)

MAX_DEPTH = 40
MAX_BOUNDARIES = 200
_BOUNDARY_PARAM = re.compile(rb"boundary\s*=", re.IGNORECASE)
MAX_FILENAME_LENGTH = 255
_BOUNDARY_IN_BODY = re.compile(rb"^--([^\s\"]{1,200}?)[ \t]*\r?\n[A-Za-z0-9-]+:", re.MULTILINE)
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.I)
_DEFECTS = {
    "CloseBoundaryNotFoundDefect": "multipart is truncated: its closing boundary is missing",
    "StartBoundaryNotFoundDefect": "multipart boundary not found in the body",
    "NoBoundaryInMultipartDefect": "multipart without a boundary",
    "MissingHeaderBodySeparatorDefect": "no blank line between headers and body",
    "MultipartInvariantViolationDefect": "multipart has no readable parts",
    "InvalidBase64PaddingDefect": "damaged base64 content (padding)",
    "InvalidBase64CharactersDefect": "damaged base64 content (characters)",
    "InvalidBase64LengthDefect": "damaged base64 content (length)",
}


@dataclass(frozen=True)
class Attachment:
    """An attached (or inline) part. ``payload`` is None when the part was
    over the size limit (``truncated``): its metadata is still reported.
    ``filename`` is never empty (unnamed parts get ``attachment-N.ext``);
    ``content_id`` is without angle brackets, "" when absent."""

    filename: str
    content_type: str
    size: int
    payload: bytes | None
    content_id: str = ""
    is_inline: bool = False
    truncated: bool = False


@dataclass
class Collected:
    """What a walk over the MIME tree found."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    blobs: Blobs = field(default_factory=Blobs)


def collect(msg: Message, *, max_attachment_bytes: int, blobs: Blobs | None = None) -> Collected:
    """Find the body texts and attachments of ``msg``; never raises on
    malformed structure (see :func:`_walk`). ``blobs``: the base64 runs
    taken out of the message before it was parsed (see blobs.py)."""
    found = Collected(blobs=blobs or Blobs())
    _walk(msg, found, depth=0, limit=max_attachment_bytes)
    # after the walk: decoding base64 and quoted-printable records defects too
    for part in msg.walk():
        for defect in part.defects:
            name = type(defect).__name__
            note = f"mime: {_DEFECTS.get(name, name)}"
            if note not in found.warnings:
                found.warnings.append(note)
    return found


def _walk(part: Message, found: Collected, *, depth: int, limit: int) -> None:
    if depth > MAX_DEPTH:
        found.warnings.append(f"mime: nested deeper than {MAX_DEPTH} levels; the rest skipped")
        return
    content_type = part.get_content_type()
    if content_type.startswith("message/") or content_type == "text/rfc822-headers":
        found.attachments.append(_attachment(part, found, limit))
    elif part.is_multipart():
        children = [child for child in part.get_payload() if isinstance(child, Message)]
        if part.get_content_subtype() == "alternative":
            _walk_alternative(children, found, depth=depth, limit=limit)
        else:
            for child in children:
                _walk(child, found, depth=depth + 1, limit=limit)
    elif part.get_content_maintype() == "multipart":
        recovered = _recover_multipart(part)
        if recovered is not None:
            found.warnings.append("mime: multipart read with the boundary found in its body")
            _walk(recovered, found, depth=depth + 1, limit=limit)
        else:
            text = _decode_part(part, found, "text/plain")
            if text.strip():
                found.plain.append(text)
    elif _is_body_text(part):
        text = _decode_part(part, found, content_type)
        (found.html if content_type == "text/html" else found.plain).append(text)
    else:
        found.attachments.append(_attachment(part, found, limit))


def _walk_alternative(children: list[Message], found: Collected, *, depth: int, limit: int) -> None:
    """Plain text from the first alternative that has it, HTML from the
    last (the richest) that has it; attachments and warnings from all."""
    versions = []
    for child in children:
        version = Collected(blobs=found.blobs)
        _walk(child, version, depth=depth + 1, limit=limit)
        versions.append(version)
        found.attachments.extend(version.attachments)
        found.warnings.extend(w for w in version.warnings if w not in found.warnings)
    plain = next((v.plain for v in versions if any(p.strip() for p in v.plain)), [])
    html = next((v.html for v in reversed(versions) if v.html), [])
    found.plain.extend(plain)
    found.html.extend(html)


def _is_body_text(part: Message) -> bool:
    if part.get_content_type() not in ("text/plain", "text/html"):
        return False
    if part.get_content_disposition() == "attachment":
        return False
    return header_param(part, "filename", "content-disposition") is None and (
        header_param(part, "name") is None
    )


def part_bytes(part: Message, found: Collected) -> bytes:
    """The decoded content of a leaf part (base64, quoted-printable...)."""
    hoisted = found.blobs.payload_bytes(part)
    if hoisted is not None:
        return hoisted
    try:
        payload = part.get_payload(decode=True)
    except Exception as exc:  # stdlib decoders on damaged input
        found.warnings.append(f"mime: content could not be decoded ({type(exc).__name__})")
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _decode_part(part: Message, found: Collected, content_type: str) -> str:
    data = part_bytes(part, found)
    charset = header_param_text(part, "charset") or None
    if charset is None and content_type == "text/html":
        meta = _META_CHARSET.search(data[:4096])
        charset = meta.group(1).decode("ascii") if meta else None
    text, note = decode_text(data, charset)
    if note:
        found.warnings.append(f"body ({content_type}): {note}")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if content_type == "text/plain" and header_param_text(part, "format").lower() == "flowed":
        text = unflow(text, delsp=header_param_text(part, "delsp").lower() == "yes")
    return text


def unflow(text: str, *, delsp: bool) -> str:
    """Join the soft line breaks of format=flowed text (RFC 3676)."""
    out: list[str] = []
    pending: tuple[int, str] | None = None
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" ") and content != "-- ":
            content = content[1:]
        if pending is not None and pending[0] == depth:
            content = pending[1] + content
        elif pending is not None:
            out.append(_quoted(*pending))
        pending = None
        if content.endswith(" ") and content != "-- ":
            pending = (depth, content[:-1] if delsp else content)
        else:
            out.append(_quoted(depth, content))
    if pending is not None:
        out.append(_quoted(*pending))
    return "\n".join(out)


def _quoted(depth: int, content: str) -> str:
    return (">" * depth + " " + content) if depth else content


def too_many_boundaries(data: bytes) -> bool:
    """Whether ``data`` declares more multipart boundaries than any real
    mail (the stdlib parser slows down quadratically on such nesting)."""
    return len(_BOUNDARY_PARAM.findall(data)) > MAX_BOUNDARIES


def _recover_multipart(part: Message) -> Message | None:
    """Re-read a multipart whose declared boundary is missing or wrong,
    with the first boundary line (followed by a header) in its body."""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return None
    raw = payload.encode("utf-8", "surrogateescape")
    if too_many_boundaries(raw):
        return None
    match = _BOUNDARY_IN_BODY.search(raw)
    if match is None:
        return None
    boundary = match.group(1)
    head = b'Content-Type: %s; boundary="%s"\r\n\r\n' % (part.get_content_type().encode(), boundary)
    try:
        recovered = BytesParser(policy=compat32).parsebytes(head + raw)
    except Exception:  # the stdlib parser on damaged input
        return None
    return recovered if recovered.is_multipart() else None


def _attachment(part: Message, found: Collected, limit: int) -> Attachment:
    content_type = part.get_content_type()
    if content_type.startswith("message/"):
        payload = _serialise(part, found)
    else:
        payload = part_bytes(part, found)
    filename = _filename(part, found) or _fallback_filename(part, len(found.attachments) + 1)
    content_id = clean_header(
        (raw_header(part, "Content-ID") or b"").decode("ascii", "replace")
    ).strip("<> ")
    disposition = part.get_content_disposition()
    size = len(payload)
    truncated = size > limit
    if truncated:
        found.warnings.append(
            f"attachment {filename!r}: {size} bytes is over the limit of {limit}; not kept"
        )
    return Attachment(
        filename=filename,
        content_type=content_type,
        size=size,
        payload=None if truncated else payload,
        content_id=content_id,
        is_inline=disposition == "inline" or (disposition is None and bool(content_id)),
        truncated=truncated,
    )


def _serialise(part: Message, found: Collected) -> bytes:
    inner = part.get_payload()
    messages = inner if isinstance(inner, list) else []
    buffer = io.BytesIO()
    try:
        for message in messages:
            BytesGenerator(buffer, mangle_from_=False, policy=compat32).flatten(message)  # type: ignore[arg-type]  # a multipart payload holds Messages
            buffer.write(b"\r\n")
    except Exception as exc:  # the generator on damaged input
        found.warnings.append(f"mime: attached message could not be kept ({type(exc).__name__})")
    if not messages:
        return part_bytes(part, found)
    return found.blobs.expand(buffer.getvalue())


def _filename(part: Message, found: Collected) -> str | None:
    """The part's file name: RFC 2231 (``filename*=UTF-8''...``, any
    charset), encoded-words inside quotes, or raw 8-bit bytes; NFC, without
    directories or control characters."""
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        value = _param(part, param, header, found)
        if not value:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, value as latin-1)
            charset, _language, text = value
            raw = str(text).encode("latin-1", "surrogateescape")
            name, note = decode_text(raw, charset or None)
        else:
            name, note = decode_text(str(value).encode("utf-8", "surrogateescape"), None)
            name = decode_words(name, found.warnings, "filename")
        if note:
            found.warnings.append(f"filename: {note}")
        name = _safe_filename(name)
        if name:
            return name
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner:
            subject = header_text(raw_header(inner[0], "Subject"), found.warnings, "subject")  # type: ignore[arg-type]  # a message/rfc822 payload holds a Message
            return _safe_filename(f"{subject}.eml") if subject else None
    return None


def _param(part: Message, param: str, header: str, found: Collected) -> str | tuple | None:
    """``part.get_param``, except that a header with raw 8-bit bytes (a
    Shift_JIS file name sent unencoded) is decoded first: the stdlib would
    turn those bytes into replacement characters."""
    raw = raw_header(part, header)
    if raw is None or raw.isascii():
        return header_param(part, param, header)
    text, note = decode_text(raw, None)
    if note:
        found.warnings.append(f"filename: {note}")
    decoded = Message()
    decoded[header] = text
    return header_param(decoded, param, header)


def _safe_filename(name: str) -> str:
    name = unicodedata.normalize("NFC", clean_header(name))
    name = re.split(r"[/\\]", name)[-1].strip(" .")
    if len(name) > MAX_FILENAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        if dot and len(extension) <= 10:
            name = stem[: MAX_FILENAME_LENGTH - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_FILENAME_LENGTH]
    return name


def _fallback_filename(part: Message, number: int) -> str:
    content_type = part.get_content_type()
    if content_type == "message/rfc822":
        extension = ".eml"
    elif content_type.startswith(("text/", "message/")):
        extension = ".txt"
    else:
        extension = mimetypes.guess_extension(content_type, strict=False) or ".bin"
    return f"attachment-{number}{extension}"
