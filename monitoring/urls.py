from django.urls import path

from monitoring import views

app_name = "monitoring"
urlpatterns = [
    path("", views.index, name="index"),
    path("models/<uuid:pk>/drift/", views.model_drift, name="model_drift"),
]
