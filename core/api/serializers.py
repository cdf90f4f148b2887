"""Serializer building blocks shared by the API apps."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, timedelta

from django.db import models
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings


class ShallowFieldCopies:
    """Give each serializer instance shallow copies of its declared fields.

    DRF deep-copies every declared field for every serializer instance, and
    a field's deep copy calls its constructor again with deep copies of its
    arguments (every label, every choice of a ChoiceField). On an order POST
    that was three quarters of request-body validation, and most of the
    response (bench/api_ingest.py).

    A shallow copy of a declared field is as good as a new one: declared
    fields are never bound or used themselves, only copied. Binding
    (`bind()`) sets attributes on the copy, and DRF's fields only read what
    their constructor built (validators, error messages, choices). So code
    may still set a field's attributes per instance (`fields["x"].required =
    False`), but must not change those shared lists and dicts in place
    (`fields["x"].validators.append(...)` would reach every instance);
    assign a new list instead. A field that holds other fields (a nested
    serializer, a ListField's or DictField's `child`, a many-related field's
    `child_relation`) is deep-copied, as DRF does: its inner fields are
    bound to it, so each instance needs its own.
    """

    def get_fields(self):
        return {
            name: copy.deepcopy(field) if _holds_fields(field) else copy.copy(field)
            for name, field in self._declared_fields.items()
        }


def _holds_fields(field) -> bool:
    return (
        isinstance(field, serializers.BaseSerializer)
        or hasattr(field, "child")
        or hasattr(field, "child_relation")
    )


def json_type_error(field: serializers.Field, value):
    """Why `value`, as parsed from the JSON body, is not of the JSON type the
    schema gives `field` (None when it is). DRF would take `0` for a string
    and `"5"` for a number; the schema says otherwise, and so does the API.
    A list's items are checked by the list's child field: {index: [message]}."""
    if value is None:
        return None  # allow_null decides
    if isinstance(field, serializers.CharField) and not isinstance(value, str):
        return [_("Give text (a JSON string).")]
    if isinstance(field, serializers.IntegerField) and (
        isinstance(value, bool)
        or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer()))
    ):
        return [_("Give a whole number (a JSON number).")]
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        items = {
            str(index): error
            for index, item in enumerate(value)
            if (error := json_type_error(field.child, item))
        }
        return items or None
    return None


class Serializer(ShallowFieldCopies, serializers.Serializer):
    """A plain serializer with ShallowFieldCopies, that takes each field only
    in the JSON type the schema gives it (json_type_error)."""

    def run_validation(self, data=serializers.empty):
        if data is None and self.parent is None:
            # DRF answers an untranslated "No data provided".
            raise serializers.ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: [_("Send a JSON object, not null.")]}
            )
        return super().run_validation(data)

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)
        type_errors = {
            field.field_name: error
            for field in self._writable_fields
            if field.field_name in data
            and (error := json_type_error(field, data[field.field_name]))
        }
        if not type_errors:
            return super().to_internal_value(data)
        try:  # for the other fields' errors too
            super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, Mapping):
                raise serializers.ValidationError({**exc.detail, **type_errors}) from None
        raise serializers.ValidationError(type_errors)


@extend_schema_field({"type": "string", "nullable": True})
class OptionalSlugRelatedField(serializers.SlugRelatedField):
    """A record by its slug (a category's code), or none: null, or empty
    (DRF reads an empty string as null for every relation; the schema says so)."""


class DateTimeField(serializers.DateTimeField):
    """ISO 8601 in the current time zone (Asia/Tokyo), always with an offset
    in whole minutes.

    Before 1888 Asia/Tokyo is local mean time, +09:18:59: an offset with
    seconds, which RFC 3339 cannot write and clients fail to parse. Such an
    instant is given in UTC instead (the same instant). New dates are kept
    in trade's years (crm.trade_time); this covers rows already stored.
    """

    def enforce_timezone(self, value):
        value = super().enforce_timezone(value)
        offset = value.utcoffset()
        if offset is not None and offset % timedelta(minutes=1):
            return value.astimezone(UTC)
        return value


class ModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose model datetimes are API DateTimeFields."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: DateTimeField,
    }
