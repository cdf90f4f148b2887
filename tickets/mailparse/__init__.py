"""Inbound mail parsing (SPEC rule 11): raw RFC 822 bytes in, a decoded,
readable :class:`ParsedMail` out. Pure: no models, no database.

Japanese mail arrives in ISO-2022-JP (often with CP932 extensions),
Shift_JIS/CP932, EUC-JP and UTF-8, with encoded-word or raw 8-bit headers;
all of it comes out readable, and whatever could not be decoded is replaced
and recorded in ``ParsedMail.warnings``.

Modules: ``charsets`` (decoding bytes), ``headers`` (fields, addresses, ids,
dates), ``mime`` (body parts and attachments), ``htmltext`` (HTML to text,
sanitising), ``quoting`` (the display text), ``signals`` (auto-replies,
bounces, our own mail), ``reference`` (inquiry references in subjects).
"""

from .message import DEFAULT_MAX_ATTACHMENT_BYTES, MailParseError, ParsedMail, parse_message
from .mime import Attachment
from .reference import find_reference, is_forward_subject, subject_strip_prefixes

__all__ = [
    "DEFAULT_MAX_ATTACHMENT_BYTES",
    "Attachment",
    "MailParseError",
    "ParsedMail",
    "find_reference",
    "is_forward_subject",
    "parse_message",
    "subject_strip_prefixes",
]
