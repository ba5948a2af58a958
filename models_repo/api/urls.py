"""Routes of the Model repository API, mounted at /api/v1/."""

urlpatterns: list = []
