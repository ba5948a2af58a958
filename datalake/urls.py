from django.urls import path

from datalake import views

app_name = "datalake"
urlpatterns = [
    path("", views.index, name="index"),
    path("trash/", views.trash, name="trash"),
    path("trash/<uuid:pk>/restore/", views.trash_restore, name="trash_restore"),
    path("trash/<uuid:pk>/purge/", views.trash_purge, name="trash_purge"),
    path("sql/", views.sql_console, name="sql"),
    path("sql/export/", views.sql_export, name="sql_export"),
    path("sql/save/", views.sql_save, name="sql_save"),
    path("sql/queries/<uuid:pk>/delete/", views.sql_query_delete, name="sql_query_delete"),
    path("recalls/", views.recalls_list, name="recalls"),
    path("recalls/impacts/<uuid:pk>/acknowledge/", views.recall_acknowledge, name="recall_acknowledge"),
    path("<uuid:pk>/", views.dataset, name="dataset"),
    path("<uuid:pk>/upload/", views.upload, name="upload"),
    path("<uuid:pk>/settings/", views.dataset_settings, name="settings"),
    path("<uuid:pk>/columns/", views.dataset_columns, name="columns"),
    path("<uuid:pk>/trash/", views.dataset_trash, name="dataset_trash"),
    path("<uuid:pk>/recipes/", views.recipe_create, name="recipe_create"),
    path("<uuid:pk>/recipes/preview/", views.recipe_preview, name="recipe_preview"),
    path("recipes/<uuid:pk>/run/", views.recipe_run, name="recipe_run"),
    path("<uuid:pk>/versions/<uuid:version_pk>/retry/", views.retry, name="retry"),
    path("<uuid:pk>/versions/<uuid:version_pk>/recall/", views.version_recall, name="version_recall"),
    path("<uuid:pk>/versions/<uuid:version_pk>/download/", views.download, name="download"),
    path("<uuid:pk>/versions/<uuid:version_pk>/images/<str:sha256>/", views.image, name="image"),
    path("<uuid:pk>/import/", views.import_save, name="import_save"),
    path("<uuid:pk>/import/run/", views.import_run, name="import_run"),
    path("<uuid:pk>/import/delete/", views.import_delete, name="import_delete"),
]
