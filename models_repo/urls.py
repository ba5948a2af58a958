from django.urls import path

from models_repo import views

app_name = "models_repo"
urlpatterns = [path("", views.index, name="index")]
