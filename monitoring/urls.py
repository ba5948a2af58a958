from django.urls import path

from monitoring import views

app_name = "monitoring"
urlpatterns = [
    path("", views.index, name="index"),
    path("platform/", views.platform, name="platform"),
    path("scheduling/", views.scheduling, name="scheduling"),
    path("data/<uuid:pk>/", views.dataset, name="dataset"),
    path("models/<uuid:pk>/drift/", views.model_drift, name="model_drift"),
]
