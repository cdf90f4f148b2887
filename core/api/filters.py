"""Filter building blocks shared by the API apps."""

from __future__ import annotations

import django_filters
from django import forms
from drf_spectacular.utils import extend_schema_field

# Ids are PostgreSQL bigints.
MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """A record's id: a whole number from 1 (django-filter's NumberFilter
    takes any decimal, `1.5` or `1e40`, and the schema says `number`)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)
