"""The OpenAPI schema says what the API really answers, errors included.

drf-spectacular documents the successful answers of each operation; this
postprocessing hook adds the errors each one can give, all in the one error
shape (core.api.errors), so that a client generated from the schema, and
the schema fuzz test (tests/core/test_api_schema.py), know them.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.plumbing import get_doc

from core.api import serializers as api_serializers
from core.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from core.api.pagination import IdCursorPagination
from core.api.routers import ID_REGEX
from core.types import StrOrPromise

ERROR_COMPONENT = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error answers in this shape.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "status": {"type": "integer", "description": "The HTTP status, again."},
                "code": {
                    "type": "string",
                    "description": "Stable, for programs: invalid, parse_error, "
                    "not_authenticated, authentication_failed, permission_denied, "
                    "not_found, unsupported_media_type, idempotency_key_reused...",
                },
                "message": {"type": "string", "description": "For people, translated."},
                "fields": {
                    "type": "object",
                    "description": "For `invalid`: each bad field by its path in the "
                    "request (`lines.0.sku`), or the bad query parameter, with its messages.",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
            "required": ["status", "code", "message"],
            "additionalProperties": False,
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}

SAFE_METHODS = {"get", "head", "options"}
# An operation that only keys of one scope may call says so (extend_schema's
# extensions): its 403 is described by that.
REQUIRED_SCOPE_EXTENSION = "x-required-scope"


def _names_a_record_by_id(components: dict, operation: dict) -> bool:
    """Whether the request body points at another record by id (`customer_id`)."""
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    reference = schema.get("schema", {}).get("$ref", "")
    body = components.get(reference.rpartition("/")[2], {})
    return any(
        name.endswith("_id") and field.get("type") == "integer"
        for name, field in body.get("properties", {}).items()
    )


def _error_statuses(
    path: str, method: str, operation: dict, components: dict
) -> dict[str, StrOrPromise]:
    parameters = operation.get("parameters", [])
    statuses: dict[str, StrOrPromise] = {"401": _("No API key, or an unknown or revoked one.")}
    if "requestBody" in operation or any(p["in"] == "query" for p in parameters):
        statuses["400"] = _(
            "Invalid input: `fields` names each bad field or query parameter; "
            "or a body that is not JSON."
        )
    if operation.get(REQUIRED_SCOPE_EXTENSION) == "privacy":
        statuses["403"] = _("The key does not have the privacy scope.")
    elif method not in SAFE_METHODS:
        statuses["403"] = _("The key is read-only, or not allowed the channel.")
    if "{" in path or _names_a_record_by_id(components, operation):
        statuses["404"] = _("Not found, or not visible to this key's channels.")
    if "requestBody" in operation:
        statuses["415"] = _("The body is not application/json.")
    if any(p["in"] == "header" and p["name"] == IDEMPOTENCY_HEADER for p in parameters):
        statuses["422"] = _("This Idempotency-Key was already used for a different request.")
    return statuses


# drf-spectacular reads a route's id regex as a string with a pattern.
ID_PARAMETER_AS_STRING = {"type": "string", "pattern": f"^{ID_REGEX}$"}


def _ids_as_integers(operation: dict) -> None:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path" and parameter["schema"] == ID_PARAMETER_AS_STRING:
            parameter["schema"] = {"type": "integer"}


# A filter given empty (`?status=`) is not applied (django-filter); the page
# size must be a number.
NOT_FILTERS = {IdCursorPagination.cursor_query_param, IdCursorPagination.page_size_query_param}


def _empty_filters_allowed(operation: dict) -> None:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "query" and parameter["name"] not in NOT_FILTERS:
            parameter["allowEmptyValue"] = True


# drf-spectacular describes a serializer by the first docstring up its
# classes: for one without its own, a core base class's, which is about our
# code and not about the API.
BASE_CLASS_DOCS = {
    get_doc(cls)
    for cls in (
        api_serializers.ShallowFieldCopies,
        api_serializers.Serializer,
        api_serializers.ModelSerializer,
    )
}


def _without_base_class_docs(components: dict) -> None:
    for component in components.values():
        if component.get("description") in BASE_CLASS_DOCS:
            del component["description"]


def error_responses(result, generator, request, public):
    """POSTPROCESSING_HOOKS entry: add the error answers to every operation,
    type ids in routes as integers, allow filters given empty, and describe
    no serializer by a base class's docstring."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components[ERROR_COMPONENT] = ERROR_SCHEMA
    _without_base_class_docs(components)
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            _ids_as_integers(operation)
            _empty_filters_allowed(operation)
            responses = operation.setdefault("responses", {})
            for status, description in _error_statuses(path, method, operation, components).items():
                responses.setdefault(
                    status,
                    {
                        "description": str(description),
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result
