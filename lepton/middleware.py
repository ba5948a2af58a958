"""Per-request context for the audit log (client IP and user agent)."""

from django.conf import settings

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
