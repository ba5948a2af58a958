"""Routes of the API, mounted at /api/ by lepton/urls.py: the core under v1/, the schema and its docs.

Parts add their own routes to `v1_patterns` (`path("", include("datalake.api.urls"))`),
so everything shares one version prefix and one schema.
"""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from lepton.api import views
from lepton.api.permissions import TokenScopePermission
from lepton.collab.api import views as collab_views

app_name = "api"

router = SimpleRouter()
router.register("departments", views.DepartmentViewSet, basename="department")
router.register(r"departments/(?P<department_slug>[-a-z0-9]+)/memberships", views.MembershipViewSet, basename="membership")
router.register("jobs", views.JobViewSet, basename="job")
router.register("tokens", views.ApiTokenViewSet, basename="token")
router.register("audit", views.AuditEventViewSet, basename="audit")
router.register("shares", collab_views.ShareViewSet, basename="share")
router.register("access-requests", collab_views.AccessRequestViewSet, basename="access-request")
router.register("comments", collab_views.CommentViewSet, basename="comment")
router.register("watches", collab_views.WatchViewSet, basename="watch")

v1_patterns = [
    path("me", views.MeView.as_view(), name="me"),
    # The schema is for people and services with an account (it maps the whole platform).
    path("schema/", SpectacularAPIView.as_view(permission_classes=[TokenScopePermission]), name="schema"),
    *router.urls,
    path("", include("datalake.api.urls")),
    path("", include("models_repo.api.urls")),
    path("", include("scheduling.api.urls")),
    path("", include("monitoring.api.urls")),
]

urlpatterns = [
    path("v1/", include(v1_patterns)),
    path("docs/", views.ApiDocsView.as_view(url_name="api:schema"), name="docs"),
]
