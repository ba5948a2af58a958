"""Routes of the production-scheduling API, mounted at /api/v1/."""

from rest_framework.routers import SimpleRouter

from scheduling.api import views

router = SimpleRouter()
router.register("shop-problems", views.ShopProblemViewSet, basename="shop-problem")
router.register("schedule-runs", views.ScheduleRunViewSet, basename="schedule-run")
router.register("schedule-policies", views.SchedulePolicyViewSet, basename="schedule-policy")

urlpatterns = router.urls
