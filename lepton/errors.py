"""Errors a service raises for something the user did; views and the API turn them into messages.

The API renders each as `{"error": code, "detail": message, "fields": {...}}` with its
status; browser views show `message` (and field errors on their form).
"""


class ServiceError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, fields: dict | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code:
            self.code = code


class Invalid(ServiceError):
    """Bad input: nothing was changed (400)."""


class NotFound(ServiceError):
    """Missing, or outside the user's reach: the two are never told apart (404)."""

    status = 404
    code = "not_found"

    def __init__(self, message: str = "", **kwargs):
        from django.utils.translation import gettext

        super().__init__(message or gettext("Not found."), **kwargs)


class Forbidden(ServiceError):
    """The user sees the object but their role does not allow the action (403)."""

    status = 403
    code = "forbidden"


class Conflict(ServiceError):
    """The object's state does not allow the action now (409), e.g. cancelling a finished job."""

    status = 409
    code = "conflict"


def raise_for_access(exc: ServiceError) -> None:
    """For browser views: an object out of reach is a 404 page, a role that may not act a 403;
    any other service error is left to the caller (a form error or a message)."""
    from django.core.exceptions import PermissionDenied
    from django.http import Http404

    if isinstance(exc, NotFound):
        raise Http404(exc.message)
    if isinstance(exc, Forbidden):
        raise PermissionDenied(exc.message)
