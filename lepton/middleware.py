"""Per-request context for the audit log (client IP and user agent), the request size limit, the language
kept on a signed-in person's profile, and the 503 page while the database cannot be reached."""

import sys

from django.conf import settings
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.utils import translation
from django.utils.translation import gettext as _

from lepton.audit import RequestContext, reset_request_context, set_request_context


def client_ip(request) -> str | None:
    # Behind a trusted proxy (BEHIND_HTTPS_PROXY) the first X-Forwarded-For hop is the client.
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = set_request_context(RequestContext(ip=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", "")))
        try:
            return self.get_response(request)
        finally:
            reset_request_context(token)


def max_request_bytes() -> int:
    """The largest request body accepted: the largest file any upload may bring, plus 1 MiB of form fields."""
    return (
        max(settings.LEPTON_MAX_UPLOAD_BYTES, settings.LEPTON_MODEL_UPLOAD_MAX_BYTES, settings.LEPTON_MAX_CHUNK_BYTES) + 1024**2
    )


class RequestSizeLimitMiddleware:
    """Refuse (413) a request whose declared body is larger than any upload may be, before it is read.

    The services check each kind of upload against its own limit with a field error; this
    stops the bytes of an oversize request from being received and spooled at all.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = max_request_bytes()
        if length > limit:
            message = _("The request is %(size)s bytes; uploads may have at most %(limit)s bytes.") % {
                "size": length,
                "limit": limit,
            }
            if request.path.startswith("/api/"):
                return JsonResponse({"error": "too_large", "detail": message, "fields": {}}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


# The profile's language, read once per session: "" when the person keeps none. lepton.web_views.language_set
# writes it when the person picks a language; a new session (a sign-in on another device) reads the profile again.
LANGUAGE_SESSION_KEY = "lepton_language"


def profile_language(request) -> str:
    """The language kept on the signed-in person's profile ("" for none, or for an anonymous request)."""
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        # No session, so nobody signed in through the browser (an API call with a token, a first
        # visit): do not touch request.user, which would load the session and add "Vary: Cookie".
        return ""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    if LANGUAGE_SESSION_KEY not in request.session:
        from lepton.selectors import kept_language

        request.session[LANGUAGE_SESSION_KEY] = kept_language(user.pk)
    language = request.session[LANGUAGE_SESSION_KEY]
    return language if language in dict(settings.LANGUAGES) else ""


class UserLanguageMiddleware:
    """A signed-in person sees the language kept on their profile, on any device, whatever the browser asks for.

    Sits after AuthenticationMiddleware (it needs request.user) and after LocaleMiddleware, whose choice it
    overrides; the language cookie is set to match, so that the sign-in page shows the same language after a
    sign-out.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = profile_language(request)
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        response = self.get_response(request)
        # The language switcher's own answer sets the cookie to the new choice: left as it is.
        stale = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != language
        if language and stale and settings.LANGUAGE_COOKIE_NAME not in response.cookies:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                path=settings.LANGUAGE_COOKIE_PATH,
                domain=settings.LANGUAGE_COOKIE_DOMAIN,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
        return response


def _note_database_unreachable(sender, request=None, **kwargs):
    """got_request_exception's receiver: Django sends it inside its `except` for every uncaught error, before it
    builds the 500 answer (the debug page, or lepton.views.error_500); the request remembers a database error."""
    if request is not None and isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        request.database_unreachable = True


class DatabaseUnavailableMiddleware:
    """A request that failed because the database cannot be reached is answered 503 with Retry-After and a page
    that says so (lepton.views.database_unavailable), not the generic 500 page.

    The error can come from a view, from the session or the user loaded by a middleware (the profile language),
    or from a middleware on the way out (monitoring.traffic.ActiveUsers); Django turns each into a 500 answer at
    the layer where it is raised, so this middleware, outside all that may query, replaces that answer. It
    works the same with DEBUG on (tests/faults/test_postgres_restart.py runs the web server so). The API's
    views answer their own 503 (lepton.api.errors.exception_handler).
    """

    def __init__(self, get_response):
        self.get_response = get_response
        got_request_exception.connect(_note_database_unreachable, dispatch_uid="lepton.database_unreachable")

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, "database_unreachable", False):
            from lepton.views import database_unavailable

            return database_unavailable(request)
        return response
