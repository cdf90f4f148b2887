"""The /api/v1/ router."""

from __future__ import annotations

from rest_framework.routers import DefaultRouter

# An id is a positive whole number; a route by id matches nothing else.
ID_REGEX = "[0-9]+"


class ApiRouter(DefaultRouter):
    """A router whose routes by id match digits only.

    DRF's default (`[^/.]+`) lets `/customers/false/orders/` reach the view,
    where a lookup by a non-number fails as a server error. Here it matches
    no route and is answered like every other unknown address under /api/
    (a 404 in the error shape). A viewset that looks up by something else
    (an inquiry's reference) declares its own `lookup_value_regex`.
    """

    def get_lookup_regex(self, viewset, lookup_prefix=""):
        lookup_field = getattr(viewset, "lookup_field", "pk")
        if getattr(viewset, "lookup_value_regex", None) is None and lookup_field in ("pk", "id"):
            kwarg = getattr(viewset, "lookup_url_kwarg", None) or lookup_field
            return f"(?P<{lookup_prefix}{kwarg}>{ID_REGEX})"
        return super().get_lookup_regex(viewset, lookup_prefix)
