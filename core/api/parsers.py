"""Request bodies: JSON, with errors a store site's developer can act on."""

from __future__ import annotations

import codecs
import json

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a translated message that says where the body
    stops being JSON (DRF's message is Python's, in English)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            return json.load(
                codecs.getreader(encoding)(stream),
                parse_constant=strict_constant if self.strict else None,
            )
        except json.JSONDecodeError as exc:
            raise ParseError(
                _("The request body is not valid JSON (line %(line)d, column %(column)d).")
                % {"line": exc.lineno, "column": exc.colno}
            ) from None
        except UnicodeDecodeError:
            raise ParseError(
                _("The request body is not valid %(encoding)s text.")
                % {"encoding": encoding.upper()}
            ) from None
        except ValueError:  # NaN or Infinity (strict JSON)
            raise ParseError(
                _("The request body is not valid JSON: NaN and Infinity are not numbers in JSON.")
            ) from None
