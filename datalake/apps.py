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

    def blob_references(self):
        """(sha256, what names it) for every lake blob the catalog names (lepton.backup copies these)."""
        from datalake.models import DatasetVersion, UploadSession, VersionBlob

        versions = DatasetVersion._base_manager.values_list("pk", "raw_sha256", "parquet_sha256")
        for pk, raw, parquet in versions.iterator(chunk_size=2000):
            yield raw, f"dataset version {pk} (raw upload)"
            yield parquet, f"dataset version {pk} (Parquet)"
        for version_id, sha in VersionBlob._base_manager.values_list("version_id", "sha256").iterator(chunk_size=2000):
            yield sha, f"dataset version {version_id} (image)"
        # A completed session's chunks are deleted once joined (datalake.services.upload_session_complete).
        for pk, chunks in UploadSession._base_manager.filter(completed_at__isnull=True).values_list("pk", "chunks"):
            for sha in chunks:
                yield sha, f"resumable upload {pk} (chunk)"


def _dataset_set_discoverable(actor, dataset, value: bool):
    from datalake.services import dataset_update

    return dataset_update(actor=actor, dataset=dataset, discoverable=value)
