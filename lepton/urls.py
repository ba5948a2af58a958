from django.contrib import admin
from django.urls import include, path

from lepton import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/", include("lepton.api.urls")),
    path("data/", include("datalake.urls")),
    path("models/", include("models_repo.urls")),
    path("scheduling/", include("scheduling.urls")),
    path("dashboards/", include("monitoring.urls")),
    path("", include("lepton.web_urls")),
]

handler403 = "lepton.views.error_403"
handler404 = "lepton.views.error_404"
handler500 = "lepton.views.error_500"
