"""Routes of the data-lake API, mounted under /api/v1/ by lepton/api/urls.py."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from datalake.api import recalls, views

router = SimpleRouter()
router.register("datasets", views.DatasetViewSet, basename="dataset")
router.register("uploads", views.UploadSessionViewSet, basename="upload")
router.register("recipes", views.RecipeViewSet, basename="recipe")
router.register("queries", views.SavedQueryViewSet, basename="saved_query")
router.register("recalls", recalls.RecallViewSet, basename="recall")
router.register("unmask-grants", views.UnmaskGrantViewSet, basename="unmask_grant")

urlpatterns = [
    path("recall-impacts/<uuid:pk>/acknowledge/", recalls.RecallAcknowledgeView.as_view(), name="recall_acknowledge"),
    path("sql/", views.SqlView.as_view(), name="sql"),
    path("sql/tables/", views.SqlTablesView.as_view(), name="sql_tables"),
    path("sql/export/", views.SqlExportView.as_view(), name="sql_export"),
    *router.urls,
]
