"""Routes of the alerting API, mounted at /api/v1/ by monitoring.api.urls."""

from rest_framework.routers import SimpleRouter

from monitoring.alerts.api import views

router = SimpleRouter()
router.register("alert-rules", views.AlertRuleViewSet, basename="alert_rule")
router.register("alerts", views.AlertViewSet, basename="alert")
urlpatterns = router.urls
