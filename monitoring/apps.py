from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = _("Monitoring")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from lepton import policy
        from lepton.models import Role
        from monitoring.alerts.metrics import register_collector as register_alert_collector
        from monitoring.alerts.models import Alert, AlertRule
        from monitoring.metrics import register_collector

        # Drift and alert gauges on /metrics; the core (lepton.metrics) cannot know the parts.
        register_collector()
        register_alert_collector()

        # Members read their department's alert rules and maintainers change them; anyone in the
        # department sees its alerts and members acknowledge or resolve them. Neither is shared.
        class Unshared(policy.OwnedRule):
            share_grants: dict = {}  # no share reaches these: skip the shares query

        policy.register(AlertRule, Unshared(actions={"view": Role.MEMBER, "change": Role.MAINTAINER, "delete": Role.MAINTAINER}))
        policy.register(Alert, Unshared(actions={"view": Role.VIEWER, "change": Role.MEMBER}))
