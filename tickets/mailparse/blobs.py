"""Large base64 bodies kept out of the stdlib parser.

The stdlib's feed parser holds a message as a list of str lines and then
joins them: a 40 MB message (a 30 MB attachment in base64) peaked at about
nine times its size. Before parsing, every run of base64 lines of at least
BLOB_MIN_BYTES is replaced by one placeholder line; the parser sees a small
message, and a part whose body is a placeholder is decoded straight from the
raw bytes (a view, not a copy). Placeholders carry a random token per
message, so mail cannot forge one.
"""

from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass, field
from email.message import Message

BLOB_MIN_BYTES = 64 * 1024
# Runs of whole lines of base64 characters: greedy and anchored at line
# starts, so the search is linear. Boundaries ("--"), header fields (":")
# and blank lines end a run.
_BASE64_RUN = re.compile(rb"^(?:[A-Za-z0-9+/=]{1,100}\r?\n)+", re.MULTILINE)


@dataclass
class Blobs:
    """The runs taken out of one message, by placeholder."""

    token: str = ""
    spans: dict[str, memoryview] = field(default_factory=dict)

    def placeholder(self, number: int) -> str:
        return f"madoguchi-blob-{self.token}-{number}"

    def payload_bytes(self, part: Message) -> bytes | None:
        """The decoded content of ``part`` if its body holds a placeholder
        (None if not): straight from the raw bytes when the body is one
        base64 run, else through the stdlib with the runs put back."""
        if not self.spans:
            return None
        # As stored: get_payload() would decode 8-bit bodies with the
        # declared charset, whatever codec that names.
        payload = part._payload  # type: ignore[attr-defined]  # the payload as stored (see above)
        if not isinstance(payload, str) or self.token not in payload:
            return None
        encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
        span = self.spans.get(payload.strip())
        if span is not None and encoding == "base64":
            try:
                return binascii.a2b_base64(span)
            except binascii.Error:
                pass  # damaged: the stdlib reads what it can and notes the defect
        whole = Message()
        if encoding:
            whole["Content-Transfer-Encoding"] = encoding
        whole.set_payload(
            self.expand(payload.encode("ascii", "surrogateescape")).decode(
                "ascii", "surrogateescape"
            )
        )
        decoded = whole.get_payload(decode=True)
        part.defects.extend(whole.defects)
        return decoded if isinstance(decoded, bytes) else b""

    def expand(self, data: bytes) -> bytes:
        """``data`` with every placeholder line replaced by its run again."""
        if not self.spans or self.token.encode() not in data:
            return data
        pattern = re.compile(rb"madoguchi-blob-" + self.token.encode() + rb"-\d+\r?\n")
        return pattern.sub(lambda match: bytes(self.spans[match.group().rstrip().decode()]), data)


def blobs_hoist(data: bytes) -> tuple[bytes, Blobs]:
    """``data`` with its long base64 runs replaced by placeholder lines, and
    the runs; ``data`` itself when it has none."""
    blobs = Blobs(token=secrets.token_hex(8))
    if len(data) < BLOB_MIN_BYTES:
        return data, blobs
    view = memoryview(data)
    pieces: list[bytes | memoryview] = []
    position = 0
    for match in _BASE64_RUN.finditer(data):
        start, end = match.span()
        if end - start < BLOB_MIN_BYTES:
            continue
        key = blobs.placeholder(len(blobs.spans))
        blobs.spans[key] = view[start:end]
        pieces += [view[position:start], key.encode() + b"\r\n"]
        position = end
    if not blobs.spans:
        return data, blobs
    pieces.append(view[position:])
    return b"".join(pieces), blobs
