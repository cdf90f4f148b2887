"""A model's field validation for many rows at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, ProhibitNullCharactersValidator
from django.db import models


class FieldsCheck:
    """What `Model.clean_fields` (full_clean's field validation) says of
    given values of `names`, for many rows: compiled once per model, then
    per row a plain string within its length (and among its choices), or an
    aware datetime for a DateTimeField, passes without a call; any other
    value goes through the field's own `clean`, so a refusal carries
    full_clean's very message. The fields not given are those the model's
    defaults fill (they pass); a blank value passes a blank=True field, as
    in clean_fields."""

    def __init__(self, model: type[models.Model], names: Sequence[str]) -> None:
        # In the model's order, as clean_fields reports them.
        self._fields = [
            self._compile(field) for field in model._meta.fields if field.name in set(names)
        ]

    @staticmethod
    def _compile(field: models.Field):
        plain = (MaxLengthValidator, ProhibitNullCharactersValidator)
        if type(field) in (models.CharField, models.TextField) and all(
            isinstance(validator, plain) for validator in field.validators
        ):
            choices = {str(value) for value, _label in field.flatchoices} if field.choices else None
            return field, "text", (field.max_length, choices)
        if type(field) is models.DateTimeField and not field.validators:
            return field, "datetime", None
        return field, "", None

    def errors(self, values: Mapping[str, Any]) -> dict[str, list[ValidationError]]:
        """{field name: its errors} for the fields of `values` that it
        holds; empty when all pass."""
        errors: dict[str, list[ValidationError]] = {}
        for field, kind, limits in self._fields:
            if field.name not in values:
                continue
            value = values[field.name]
            if field.blank and value in field.empty_values:
                continue
            if kind == "text" and type(value) is str and value and "\x00" not in value:
                max_length, choices = limits
                if (max_length is None or len(value) <= max_length) and (
                    choices is None or value in choices
                ):
                    continue
            elif kind == "datetime" and isinstance(value, datetime) and value.tzinfo is not None:
                continue
            try:
                field.clean(value, None)
            except ValidationError as error:
                errors[field.name] = error.error_list
        return errors
