from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LeptonConfig(AppConfig):
    name = "lepton"
    verbose_name = _("Lepton core")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from lepton import policy

        policy.register_core()
        from lepton import checks  # noqa: F401  (system checks)
        from lepton.metrics import register_collector

        register_collector()
