from django.urls import path

from monitoring import views
from monitoring.alerts import views as alert_views

app_name = "monitoring"
urlpatterns = [
    path("", views.index, name="index"),
    path("platform/", views.platform, name="platform"),
    path("scheduling/", views.scheduling, name="scheduling"),
    path("data/<uuid:pk>/", views.dataset, name="dataset"),
    path("models/<uuid:pk>/", views.model_dashboard, name="model_dashboard"),
    path("models/<uuid:pk>/drift/", views.model_drift, name="model_drift"),
    path("alerts/", alert_views.alert_list, name="alert_list"),
    path("alerts/<uuid:pk>/acknowledge/", alert_views.alert_acknowledge, name="alert_acknowledge"),
    path("alerts/<uuid:pk>/resolve/", alert_views.alert_resolve, name="alert_resolve"),
    path("alerts/rules/", alert_views.rule_list, name="alert_rule_list"),
    path("alerts/rules/new/", alert_views.rule_create, name="alert_rule_create"),
    path("alerts/rules/<uuid:pk>/", alert_views.rule_edit, name="alert_rule_edit"),
    path("alerts/rules/<uuid:pk>/toggle/", alert_views.rule_toggle, name="alert_rule_toggle"),
    path("alerts/rules/<uuid:pk>/renew-secret/", alert_views.rule_secret_renew, name="alert_rule_secret_renew"),
    path("notifications/", alert_views.notification_list, name="notification_list"),
    path("notifications/read/", alert_views.notification_read, name="notification_read"),
]
