"""Core browser views: health, metrics, error pages (more in lepton/web_views.py)."""

import hmac

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView

from lepton.health import health


@never_cache
@require_GET
def healthz(request):
    ok, body = health(deep=request.GET.get("deep") in ("1", "true", "yes"))
    return JsonResponse(body, status=200 if ok else 503)


@never_cache
@require_GET
def metrics(request):
    expected = settings.METRICS_TOKEN
    if expected:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            response = HttpResponse("metrics need Authorization: Bearer <METRICS_TOKEN>\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = "Bearer"
            return response
    return ExportToDjangoView(request)


def error_403(request, exception=None):
    return render(request, "errors/403.html", status=403)


def _api(request) -> bool:
    return request.path.startswith("/api/")


def error_404(request, exception=None):
    """The 404 page; under /api/ (a path no route matches) the API's JSON error instead."""
    if _api(request):
        from django.http import JsonResponse
        from django.utils.translation import gettext

        return JsonResponse({"error": "not_found", "detail": gettext("Not found."), "fields": {}}, status=404)
    return render(request, "errors/404.html", status=404)


def database_unavailable(request):
    """The answer to a request that failed because the database cannot be reached (an outage, a restart):
    503 with Retry-After, in the request's language, built without a query (lepton.middleware.DatabaseUnavailableMiddleware).

    The page is rendered without the request, so no context processor (the user, their departments) runs.
    Under /api/ it is the API's own 503 (lepton.api.errors.exception_handler), for an error raised outside a view.
    """
    from django.template.loader import render_to_string
    from django.utils.cache import add_never_cache_headers
    from django.utils.translation import get_language
    from django.utils.translation import gettext as _

    if _api(request):
        detail = _("The database cannot be reached at the moment. Try again in a minute.")
        response = JsonResponse({"error": "unavailable", "detail": detail, "fields": {}}, status=503)
    else:
        response = HttpResponse(render_to_string("errors/503.html"), status=503)
        # The middlewares that would add these sit inside the one that answers: the page needs nothing but itself.
        response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
        response["X-Frame-Options"] = "DENY"
        response["Content-Language"] = get_language()
    response["Retry-After"] = "30"
    add_never_cache_headers(response)
    return response


def error_500(request):
    if _api(request):
        from django.http import JsonResponse

        return JsonResponse({"error": "server_error", "detail": "Server error.", "fields": {}}, status=500)
    try:
        return render(request, "errors/500.html", status=500)
    except Exception:  # noqa: BLE001 - the error page must not fail itself
        return HttpResponse("Server error", status=500, content_type="text/plain")
