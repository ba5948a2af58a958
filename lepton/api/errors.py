"""One error shape for the whole API: {"error": code, "detail": message, "fields": {...}}."""

import errno

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from lepton.errors import ServiceError


def _flatten(detail, prefix=""):
    """DRF's nested error detail as {"field" or "field.sub": [messages]}."""
    fields = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            fields.update(_flatten(value, name))
    elif isinstance(detail, list) and detail and all(not isinstance(v, (dict, list)) for v in detail):
        fields[prefix or "non_field_errors"] = [str(v) for v in detail]
    elif isinstance(detail, list):
        for i, value in enumerate(detail):
            fields.update(_flatten(value, f"{prefix}.{i}" if prefix else str(i)))
    else:
        fields[prefix or "non_field_errors"] = [str(detail)]
    return fields


def error_response(code: str, detail: str, fields: dict | None = None, status_code: int = 400, headers=None):
    return Response({"error": code, "detail": detail, "fields": fields or {}}, status=status_code, headers=headers)


# Faults outside the request's control, answered with the reason instead of a bare 500
# (tests/faults/test_storage_full.py, tests/faults/test_postgres_restart.py).
STORAGE_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        return error_response(exc.code, exc.message, exc.fields, exc.status)
    if isinstance(exc, OSError) and exc.errno in STORAGE_FULL_ERRNOS:
        detail = _("The platform's storage is full, so this could not be stored. Ask an operator to free space, then try again.")
        return error_response("storage_full", detail, status_code=507)
    if isinstance(exc, (OperationalError, InterfaceError)):
        detail = _("The database cannot be reached at the moment. Try again in a minute.")
        return error_response("unavailable", detail, status_code=503, headers={"Retry-After": "30"})
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return error_response("invalid", _("The request is not valid."), fields, 400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found."))
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.items()), ("", [""]))
        detail = f"{first[0]}: {first[1][0]}" if first[0] != "non_field_errors" else first[1][0]
        response.data = {"error": "invalid", "detail": detail, "fields": fields}
        return response
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    if not isinstance(code, str):
        code = "error"
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    if isinstance(exc, exceptions.Throttled):
        code = "throttled"
    response.data = {"error": code, "detail": str(detail), "fields": {}}
    if response.status_code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" not in response:
        response["WWW-Authenticate"] = "Bearer"
    return response
