"""Continuous learning: a model re-trains on each new version of its dataset, and a candidate that
passes the gate asks for promotion by itself (a maintainer still approves)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils.translation import gettext as _

from datalake.models import Dataset, DatasetVersion, VersionStatus
from lepton import audit, policy
from lepton.errors import Forbidden, Invalid, ServiceError
from models_repo.models import RegisteredModel, TrainingRun

logger = logging.getLogger("lepton.models_repo")


def continuous_set(
    *, actor, model: RegisteredModel, dataset: Dataset | None, spec: dict | None = None, auto_promote: bool = False
) -> RegisteredModel:
    """Re-train `model` with `spec` on every new version of `dataset` (maintainers); dataset None turns it off.

    The spec is validated against the dataset's latest version when there is one. Runs are
    started with the rights of the person who set this up; if they lose them, runs stop.
    """
    from models_repo.engine.errors import TrainingError
    from models_repo.engine.spec import parse_spec

    policy.require(actor, "change", model)
    if dataset is None:
        values = {"retrain_dataset": None, "retrain_spec": {}, "retrain_by": None, "auto_promote": False}
    else:
        from .training import _invalid, _refuse_external

        _refuse_external(model, "retrain_dataset")
        if not policy.can(actor, "use", dataset):
            raise Forbidden(_("Your role does not allow training on this dataset (members and above may)."))
        if not isinstance(spec, dict) or not spec:
            raise Invalid(_("Give the training spec to re-run."), fields={"spec": [_("Give an object.")]})
        latest = dataset.versions.filter(status=VersionStatus.PUBLISHED).order_by("-number").first()
        if latest is not None:
            try:
                parse_spec(spec, {c["name"]: c["type"] for c in latest.schema})
            except TrainingError as exc:
                raise _invalid(exc) from None
        values = {"retrain_dataset": dataset, "retrain_spec": spec, "retrain_by": actor, "auto_promote": bool(auto_promote)}
    with transaction.atomic():
        RegisteredModel.objects.filter(pk=model.pk).update(**values)
        model.refresh_from_db()
        audit.record(
            actor=actor,
            action="model.continuous",
            obj=model,
            changes={"dataset": str(dataset.pk) if dataset else None, "auto_promote": values["auto_promote"]},
        )
    return model


def retrain_on_publish(sender, version: DatasetVersion, **kwargs) -> list[TrainingRun]:
    """The datalake's version_published receiver: start the runs of the models that follow this dataset."""
    from .training import training_start

    runs = []
    for model in RegisteredModel.objects.filter(retrain_dataset_id=version.dataset_id, archived_at__isnull=True):
        if model.retrain_by is None:
            continue
        try:
            run = training_start(
                actor=model.retrain_by,
                dataset_version=version,
                spec=model.retrain_spec,
                registered_model=model,
                name=_("Re-trained on v%(number)s") % {"number": version.number},
            )
        except ServiceError as exc:
            logger.warning("continuous learning of %s skipped v%s: %s", model, version.number, exc.message)
            continue
        TrainingRun.objects.filter(pk=run.pk).update(automatic=True)
        runs.append(run)
    return runs


def promote_if_passing(version) -> None:
    """After an automatic run registered `version`: open a promotion request when it passes the gate."""
    from .registry import gate_check, promotion_request

    model = version.model
    if not model.auto_promote:
        return
    if not gate_check(model, version)["passed"]:
        logger.info("continuous learning: %s did not pass the gate; no promotion request", version)
        return
    try:
        promotion_request(actor=None, version=version, reason=_("Re-trained on new data; passed the gate."), automatic=True)
    except ServiceError as exc:
        logger.info("continuous learning: no promotion request for %s: %s", version, exc.message)
