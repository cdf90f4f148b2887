"""A customer's profile: the fields a caller may set and how each is
cleaned, and the columns derived from them (identity resolution's and
search's keys)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from crm.models import Customer, Prefecture
from crm.normalize import (
    email_normalize,
    kana_normalize,
    name_search_key,
    phone_normalize,
    postal_code_normalize,
)

# Fields a caller may set on a customer, and how each is cleaned.
PROFILE_FIELDS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "email",
    "phone",
    "postal_code",
    "prefecture",
    "address",
    "birthday",
)
_KANA_FIELDS = {"family_name_kana", "given_name_kana"}
_PREFECTURES = frozenset(Prefecture.values)


def _clean_profile(data: dict[str, Any]) -> dict[str, Any]:
    """Trim and normalise the profile fields that were given (None and ""
    mean "not given"). Raises ValidationError naming the field."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name in PROFILE_FIELDS:
        value = data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if name == "birthday":
            if not isinstance(value, date):
                errors[name] = [_("Enter a date.")]
            else:
                cleaned[name] = value
            continue
        value = str(value).strip()
        if name in _KANA_FIELDS:
            value = kana_normalize(value)
        elif name == "email":
            if not email_normalize(value):
                errors[name] = [_("Enter a valid email address.")]
                continue
        elif name == "postal_code":
            normalized = postal_code_normalize(value)
            if not normalized:
                errors[name] = [_("A postal code has 7 digits, e.g. 150-0001.")]
                continue
            value = normalized
        elif name == "prefecture" and value not in _PREFECTURES:
            errors[name] = [_("Unknown prefecture: %(value)s.") % {"value": value}]
            continue
        cleaned[name] = value
    if errors:
        raise ValidationError(errors)
    return cleaned


def _apply_profile(customer: Customer, profile: dict[str, Any], *, overwrite: bool) -> list[str]:
    """Set profile values on the instance; return the names that changed."""
    changed = []
    for name, value in profile.items():
        current = getattr(customer, name)
        if current == value or (current and not overwrite):
            continue
        setattr(customer, name, value)
        changed.append(name)
    return changed


# The columns profile_save derives from the profile: identity resolution's
# keys and search's (crm.search).
DERIVED_FIELDS = ("email_normalized", "phone_normalized", "search_name", "search_kana")


def customer_derived_values(customer: Customer) -> dict[str, str]:
    """The values of DERIVED_FIELDS for the customer's profile as it is."""
    return profile_derived_values(
        {name: getattr(customer, name) for name in (*_NAME_FIELDS, "email", "phone", "nickname")}
    )


_NAME_FIELDS = ("family_name", "given_name", "family_name_kana", "given_name_kana")


def profile_derived_values(profile: Mapping[str, Any]) -> dict[str, str]:
    """The values of DERIVED_FIELDS for a profile's values (missing ones
    blank)."""

    def get(name: str) -> str:
        return profile.get(name) or ""

    return {
        "email_normalized": email_normalize(get("email")),
        "phone_normalized": phone_normalize(get("phone")),
        # A customer known only by their name on a channel (「LINE: さくら」)
        # is found by that name.
        "search_name": name_search_key(get("family_name"), get("given_name"))
        or name_search_key(get("nickname")),
        "search_kana": name_search_key(get("family_name_kana"), get("given_name_kana")),
    }


def profile_save(customer: Customer, changed: list[str] | None = None) -> None:
    """Save a profile write (`changed` fields, or a new customer): the
    normalised email and phone that identity resolution matches on, and the
    name keys search matches on, always follow the fields they come from."""
    for name, value in customer_derived_values(customer).items():
        setattr(customer, name, value)
    if changed is None:
        customer.save()
    else:
        customer.save(update_fields=[*changed, *DERIVED_FIELDS, "updated_at"])


def customer_search_keys_refresh(*, customer_ids: Sequence[int]) -> int:
    """Recompute the search keys of these customers from the names they now
    hold, after a set-based write of names (the retention job's). Returns
    how many changed."""
    changed = []
    customers = Customer.objects.filter(pk__any_of=list(customer_ids)).only(
        "pk",
        "family_name",
        "given_name",
        "family_name_kana",
        "given_name_kana",
        "nickname",
        "search_name",
        "search_kana",
    )
    for customer in customers:
        values = customer_derived_values(customer)
        if (customer.search_name, customer.search_kana) != (
            values["search_name"],
            values["search_kana"],
        ):
            customer.search_name, customer.search_kana = (
                values["search_name"],
                values["search_kana"],
            )
            changed.append(customer)
    Customer.objects.bulk_update(changed, ["search_name", "search_kana"], batch_size=1000)
    return len(changed)
