from django.contrib import admin
from django.urls import include, path

from lepton import views, web_views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    # The language switcher: Django's set_language, which also keeps the choice on a signed-in person's profile.
    path("i18n/setlang/", web_views.language_set, name="set_language"),
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
