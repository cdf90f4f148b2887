"""Serializer building blocks shared by the API apps."""

from __future__ import annotations

import copy
from datetime import UTC, timedelta

from django.db import models
from rest_framework import serializers


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


class Serializer(ShallowFieldCopies, serializers.Serializer):
    """A plain serializer with ShallowFieldCopies."""


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
