"""Routes of the Monitoring API, mounted at /api/v1/."""

urlpatterns: list = []
