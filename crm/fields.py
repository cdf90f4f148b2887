"""Customer email addresses as Japanese carriers issued them.

Before 2009, docomo and au let subscribers choose addresses that RFC 5322
forbids: consecutive dots (``taro..yamada@docomo.ne.jp``), a dot before the
"@" (``yamada.@docomo.ne.jp``) or at the start (``.hanako@ezweb.ne.jp``).
Those addresses still receive mail and are common among older customers;
Django's EmailValidator refuses them. On the carriers' domains the dots are
accepted; everywhere else Django's rules apply unchanged.
"""

from __future__ import annotations

import re

from django import forms
from django.core.validators import EmailValidator
from django.db import models
from django.utils.deconstruct import deconstructible
from rest_framework import serializers

# The carriers' mobile mail domains (and their subdomains: au's older
# addresses were <name>@<area>.ezweb.ne.jp).
CARRIER_DOMAINS = ("docomo.ne.jp", "ezweb.ne.jp", "au.com", "mopera.net")
# RFC 5322 atext and dots anywhere, at most 64 characters, not dots alone.
_CARRIER_LOCAL = re.compile(r"(?=[^@]*[^.@])[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")


def is_carrier_address(value: str) -> bool:
    """Whether ``value`` is an address on a carrier's domain whose local
    part breaks RFC 5322 only by where its dots are."""
    local, at, domain = (value or "").rpartition("@")
    domain = domain.lower()
    return (
        bool(at)
        and any(domain == d or domain.endswith("." + d) for d in CARRIER_DOMAINS)
        and _CARRIER_LOCAL.fullmatch(local) is not None
    )


@deconstructible
class CustomerEmailValidator(EmailValidator):
    """Django's EmailValidator, except that the carriers' legacy addresses
    (see the module docstring) are valid."""

    def __call__(self, value) -> None:
        if isinstance(value, str) and is_carrier_address(value):
            return
        super().__call__(value)


validate_customer_email = CustomerEmailValidator()


class CustomerEmailFormField(forms.EmailField):
    default_validators = [validate_customer_email]


class CustomerEmailField(models.EmailField):
    """An EmailField that accepts the carriers' legacy addresses."""

    default_validators = [validate_customer_email]

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": CustomerEmailFormField, **kwargs})


class CustomerEmailSerializerField(serializers.EmailField):
    """The API's email field, with the carriers' legacy addresses valid."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [
            validate_customer_email if type(validator) is EmailValidator else validator
            for validator in self.validators
        ]
