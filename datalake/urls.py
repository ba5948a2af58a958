from django.urls import path

from datalake import views

app_name = "datalake"
urlpatterns = [path("", views.index, name="index")]
