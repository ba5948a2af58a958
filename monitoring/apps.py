from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = _("Monitoring")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from monitoring.metrics import register_collector

        # Drift gauges on /metrics; the core (lepton.metrics) cannot know the parts.
        register_collector()
