"""Core browser views: health, metrics, error pages (more in lepton/web_views.py)."""

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
    return ExportToDjangoView(request)


def error_403(request, exception=None):
    return render(request, "errors/403.html", status=403)


def error_404(request, exception=None):
    return render(request, "errors/404.html", status=404)


def error_500(request):
    try:
        return render(request, "errors/500.html", status=500)
    except Exception:  # noqa: BLE001 - the error page must not fail itself
        return HttpResponse("Server error", status=500, content_type="text/plain")
