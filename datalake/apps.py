from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DatalakeConfig(AppConfig):
    name = "datalake"
    verbose_name = _("Data lake")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from datalake import checks  # noqa: F401  (system checks: the data key)
        from datalake.models import DatabaseImport, Dataset, DatasetVersion, Recall, RecallImpact, Recipe, SavedQuery
        from lepton import counters, policy
        from lepton.models import Role

        # A recall that stops (or, acknowledged, resumes) a model's predictions must reach the
        # predict fast path's cached grants at once (lepton.counters).
        counters.watch(Recall, RecallImpact)
        policy.register(Dataset, policy.OwnedRule())
        policy.register(DatasetVersion, policy.ChildRule("dataset", Dataset))
        policy.register(Recipe, policy.OwnedRule())
        policy.register(SavedQuery, policy.OwnedRule())
        # An import holds credentials (stored encrypted, never shown): members of its department
        # see it and may run it, maintainers set it up; it is never shared with other departments.
        import_rule = policy.OwnedRule(
            actions={"view": Role.MEMBER, "use": Role.MEMBER, "change": Role.MAINTAINER, "delete": Role.MAINTAINER}
        )
        import_rule.share_grants = {}
        policy.register(DatabaseImport, import_rule)

        from django.urls import reverse

        from lepton.collab import targets

        # Working together (lepton.collab): datasets are shared and discovered; versions take comments.
        targets.register(
            Dataset,
            url=lambda d: reverse("datalake:dataset", args=[d.pk]),
            shareable=True,
            discoverable=lambda d: d.discoverable and d.deleted_at is None,
            live=lambda qs: qs.filter(deleted_at__isnull=True),
            set_discoverable=_dataset_set_discoverable,
            discoverable_filter={"discoverable": True},
        )
        targets.register(
            DatasetVersion,
            url=lambda v: reverse("datalake:dataset", args=[v.dataset_id]),
            owner=lambda v: v.dataset,
            live=lambda qs: qs.filter(dataset__deleted_at__isnull=True),
        )


def _dataset_set_discoverable(actor, dataset, value: bool):
    from datalake.services import dataset_update

    return dataset_update(actor=actor, dataset=dataset, discoverable=value)
