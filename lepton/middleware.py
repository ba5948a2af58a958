"""Per-request context for the audit log (client IP and user agent), and the request size limit."""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
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
