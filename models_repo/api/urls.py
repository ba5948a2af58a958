"""Routes of the model-repository API, mounted under /api/v1/ by lepton/api/urls.py."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from models_repo.api import predict, upload, views

router = SimpleRouter()
router.register("runs", views.TrainingRunViewSet, basename="run")
router.register("models", views.RegisteredModelViewSet, basename="model")
router.register("promotions", views.PromotionRequestViewSet, basename="promotion")

urlpatterns = [
    path("models/<slug:department>/<slug:model>/predict", predict.PredictView.as_view(), name="predict"),
    path("models/<slug:department>/<slug:model>/versions", upload.VersionUploadView.as_view(), name="version_upload"),
    *router.urls,
]
