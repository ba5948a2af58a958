from django.urls import path

from models_repo import views

app_name = "models_repo"
urlpatterns = [
    path("", views.index, name="index"),
    path("train/", views.train, name="train"),
    path("promotions/", views.inbox, name="inbox"),
    path("promotions/<uuid:pk>/<str:decision>/", views.decide, name="decide"),
    path("runs/<uuid:pk>/", views.run, name="run"),
    path("runs/<uuid:pk>/rerun/", views.run_rerun, name="run_rerun"),
    path("runs/<uuid:pk>/cancel/", views.run_cancel, name="run_cancel"),
    path("<uuid:pk>/", views.model, name="model"),
    path("<uuid:pk>/versions/<int:number>/promote/", views.promote, name="promote"),
    path("<uuid:pk>/rollback/", views.rollback, name="rollback"),
    path("<uuid:pk>/try/", views.try_it, name="try"),
    path("<uuid:pk>/settings/", views.model_settings, name="settings"),
    path("<uuid:pk>/compare/", views.compare, name="compare"),
    path("<uuid:pk>/archive/", views.archive, name="archive"),
    path("<uuid:pk>/versions/<int:number>/archive/", views.version_archive, name="version_archive"),
    path("<uuid:pk>/batch/", views.batch, name="batch"),
    path("<uuid:pk>/versions/upload/", views.version_upload, name="version_upload"),
]
