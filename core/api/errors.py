"""One JSON shape for every API error:

    {"error": {"status": 400, "code": "invalid", "message": "...",
               "fields": {"lines.0.sku": ["This field is required."]}}}

`fields` names each bad field by its path in the request body.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

# DRF's key for what concerns the body as a whole, not one field
NON_FIELD = api_settings.NON_FIELD_ERRORS_KEY


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, path))
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out[prefix or NON_FIELD] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                if item:
                    out.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out[prefix or NON_FIELD] = [str(detail)]
    return out


def error_body(status_code: int, code: str, message: str, fields=None) -> dict:
    body = {"status": status_code, "code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD: exc.messages}
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        names = ", ".join(sorted(name for name in fields if name != NON_FIELD))
        if names:
            message = _("Invalid input: %(fields)s.") % {"fields": names}
        else:  # the body as a whole (null, a list): say what is wrong with it
            message = " ".join(fields[NON_FIELD])
        response.data = error_body(response.status_code, "invalid", message, fields)
    else:
        detail = getattr(exc, "detail", str(exc))
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(response.status_code, str(code), str(detail))
    return response


def error_response(status_code: int, code: str, message: str) -> Response:
    return Response(error_body(status_code, code, message), status=status_code)


# --- Outside the API's views: unknown addresses and server errors -------------

API_PATH_PREFIX = "/api/"


def _json_error(status_code: int, code: str, message: str) -> JsonResponse:
    # Japanese as it is (not as \uXXXX escapes), like the DRF renderer
    return JsonResponse(
        error_body(status_code, code, message),
        status=status_code,
        json_dumps_params={"ensure_ascii": False},
    )


def _is_api_path(path_info: str) -> bool:
    """Under /api/, wherever the site is mounted (path_info, not path)."""
    return path_info.startswith(API_PATH_PREFIX)


@csrf_exempt  # like every API view: a POST to a wrong address is a 404, not a CSRF page
def api_not_found(request, exception=None) -> JsonResponse:
    """Every address under /api/ that no route matches (any method)."""
    message = _("There is no API endpoint at this address.")
    if not request.path_info.endswith("/") and _resolves_to_a_route(request.path_info + "/"):
        message = _(
            "There is no API endpoint at this address. API addresses end with a slash: %(path)s"
        ) % {"path": request.path + "/"}
    return _json_error(404, "not_found", message)


def _resolves_to_a_route(path: str) -> bool:
    try:
        return resolve(path).func is not api_not_found
    except Resolver404:
        return False


def page_not_found(request, exception=None):
    """handler404: the error shape under /api/, Django's page elsewhere."""
    if _is_api_path(request.path_info):
        return api_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: the error shape under /api/, Django's page elsewhere. The
    error itself is logged by Django before this runs."""
    if _is_api_path(request.path_info):
        message = _("Something went wrong on our side. Please try again later.")
        return _json_error(500, "server_error", message)
    return defaults.server_error(request)


__all__ = [
    "api_not_found",
    "error_body",
    "error_response",
    "exception_handler",
    "page_not_found",
    "server_error",
    "status",
]
