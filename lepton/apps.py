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
        from django.contrib.auth import get_user_model

        from lepton import counters
        from lepton.models import ApiToken, Department, Membership, Share

        # Who may predict with what: the predict fast path's grants end when one of these changes.
        counters.watch(get_user_model(), ApiToken, Department, Membership, Share)
