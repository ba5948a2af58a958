"""Routes of the Data lake API, mounted at /api/v1/."""

urlpatterns: list = []
