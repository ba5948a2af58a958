"""Routes of the Production scheduling API, mounted at /api/v1/."""

urlpatterns: list = []
