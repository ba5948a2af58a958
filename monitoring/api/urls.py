"""Routes of the Monitoring API, mounted at /api/v1/."""

from django.urls import include, path

from monitoring.api import views

urlpatterns = [
    path("models/<slug:department>/<slug:model>/feedback", views.FeedbackView.as_view(), name="model_feedback"),
    path("models/<uuid:pk>/dashboard/", views.ModelDashboardView.as_view(), name="model_dashboard"),
    path("models/<uuid:pk>/drift/", views.ModelDriftView.as_view(), name="model_drift"),
    path("", include("monitoring.alerts.api.urls")),
]
