from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ModelsRepoConfig(AppConfig):
    name = "models_repo"
    verbose_name = _("Model repository")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from datalake.signals import version_published
        from lepton import policy
        from lepton.models import Role
        from models_repo.models import ModelVersion, PromotionRequest, RegisteredModel, TrainingRun
        from models_repo.services.continuous import retrain_on_publish

        # Viewers see models and runs; members train and predict ("use", also through a
        # share at the use level); maintainers register, move aliases and approve promotions.
        policy.register(
            RegisteredModel,
            policy.OwnedRule(
                actions={
                    "view": Role.VIEWER,
                    "use": Role.MEMBER,
                    "change": Role.MAINTAINER,
                    "delete": Role.MAINTAINER,
                    "share": Role.MAINTAINER,
                }
            ),
        )
        policy.register(ModelVersion, policy.ChildRule("model", RegisteredModel))
        policy.register(PromotionRequest, policy.ChildRule("model", RegisteredModel))
        policy.register(TrainingRun, policy.OwnedRule())
        version_published.connect(retrain_on_publish, dispatch_uid="models_repo.retrain_on_publish")
        from lepton import counters
        from models_repo.models import ModelAlias

        # Which version answers a prediction (models_repo.api.fastpath): models, versions, aliases.
        counters.watch(RegisteredModel, ModelVersion, ModelAlias)
        # The demo (load_demo) approves the first version of its models once it is registered.
        from models_repo.demo import first_version_to_production
        from models_repo.signals import version_registered

        version_registered.connect(first_version_to_production, dispatch_uid="models_repo.demo_first_version")

        from django.urls import reverse

        from lepton.collab import targets

        # Working together (lepton.collab): models are shared; versions and runs take comments.
        targets.register(
            RegisteredModel,
            url=lambda m: reverse("models_repo:model", args=[m.pk]),
            shareable=True,
            discoverable=lambda m: m.discoverable and m.archived_at is None,
            live=lambda qs: qs,
            set_discoverable=_model_set_discoverable,
            discoverable_filter={"discoverable": True, "archived_at__isnull": True},
        )
        targets.register(ModelVersion, url=lambda v: v.get_absolute_url(), owner=lambda v: v.model)
        targets.register(TrainingRun, url=lambda r: r.get_absolute_url())

    def blob_references(self):
        """(sha256, what names it) for every lake blob the registry names (lepton.backup copies these)."""
        from models_repo.models import ModelVersion, TrainingRun

        for pk, sha in TrainingRun._base_manager.values_list("pk", "artifact_sha256").iterator(chunk_size=2000):
            yield sha, f"training run {pk} (artifact)"
        versions = ModelVersion._base_manager.values_list("pk", "artifact_sha256", "onnx_sha256", "onnx_report")
        for pk, artifact, onnx, report in versions.iterator(chunk_size=2000):
            yield artifact, f"model version {pk} (artifact)"
            yield onnx, f"model version {pk} (ONNX)"
            # Reduced-precision ONNX variants (models_repo.services.registry, models_repo.serving).
            for name, variant in ((report or {}).get("variants") or {}).items():
                if isinstance(variant, dict) and variant.get("sha256"):
                    yield variant["sha256"], f"model version {pk} (ONNX {name})"


def _model_set_discoverable(actor, model, value: bool):
    from models_repo.services import model_update

    return model_update(actor=actor, model=model, discoverable=value)
