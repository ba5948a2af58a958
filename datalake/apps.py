from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DatalakeConfig(AppConfig):
    name = "datalake"
    verbose_name = _("Data lake")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from datalake.models import Dataset, DatasetVersion, Recipe
        from lepton import policy

        policy.register(Dataset, policy.OwnedRule())
        policy.register(DatasetVersion, policy.ChildRule("dataset", Dataset))
        policy.register(Recipe, policy.OwnedRule())
