"""Training runs of the kinds another part trains (models_repo.external: a scheduling policy).

This part keeps the record (a TrainingRun without a dataset), the artifact (a lake blob) and the
version; the owning part's job does the computation between `external_training_claim` and
`external_training_finish` (or `external_training_stop`). A run's progress, cancel, settling
after a lost worker and its page are the ordinary ones.
"""

from __future__ import annotations

import time

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lepton import audit, policy
from lepton.errors import Forbidden, Invalid, NotFound
from lepton.jobs.services import job_submit
from lepton.models import Department
from lepton.storage import BlobNotFound, CorruptBlob, get_storage
from models_repo.external import ExternalKind
from models_repo.models import RegisteredModel, RunStatus, TrainingRun

from .registry import model_create, version_from_run
from .training import _finish_failed, _resources


def _target(actor, kind: ExternalKind, model: RegisteredModel) -> RegisteredModel:
    """`model` when the actor may train a new version of it for `kind`; the refusal otherwise."""
    if not policy.can(actor, "view", model):
        raise NotFound()
    if not policy.can(actor, "use", model):
        raise Forbidden(_("Your role does not allow training into this model."))
    if model.archived_at is not None:
        message = _("%(model)s is archived; restore it before training new versions.") % {"model": model}
        raise Invalid(message, fields={"model": [message]}, code="archived")
    if model.task != kind.task:
        message = _("%(model)s is not a model of this kind (its task is “%(task)s”, not “%(kind)s”).") % {
            "model": model, "task": model.task or "-", "kind": kind.task,
        }  # fmt: skip
        raise Invalid(message, fields={"model": [message]}, code="wrong_task")
    return model


def external_training_start(
    *,
    actor,
    department: Department,
    kind: ExternalKind,
    job_kind: str,
    spec: dict,
    label: str,
    model: RegisteredModel | None = None,
    model_name: str = "",
    name: str = "",
) -> TrainingRun:
    """Queue `job_kind` to train the next version of `model`, or of a new model `model_name` in `department`.

    An existing model must be of the kind's task, usable by the actor and not archived; a new
    one is registered as model_create does (maintainers). The job is submitted in the model's
    department (members and above). All in one transaction: a refusal leaves nothing behind.
    """
    if (model is None) == (not (model_name or "").strip()):
        message = _("Choose one of the department's models, or name a new one (not both).")
        raise Invalid(message, fields={"model": [message]}, code="model_required")
    with transaction.atomic():
        if model is not None:
            model = _target(actor, kind, model)
        else:
            model = model_create(actor=actor, department=department, name=model_name, task=kind.task)
        run = TrainingRun.objects.create(
            department=model.department, name=(name or model.name).strip()[:200], dataset_label=label[:300], spec=spec,
            registered_model=model, flavor=kind.flavor, task=kind.task, created_by=actor,
        )  # fmt: skip
        run.job = job_submit(
            actor=actor, department=model.department, kind=job_kind, params={"run": str(run.pk)}, user_request=False
        )
        run.save(update_fields=["job"])
        audit.record(actor=actor, action="run.start", obj=run, changes={"kind": kind.flavor, "model": str(model), "data": label})
    return run


def external_training_claim(run_id) -> TrainingRun | None:
    """The queued run, now running; None when another delivery of its job has it or it has ended."""
    claimed = TrainingRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now()
    )
    return TrainingRun.objects.select_related("registered_model").get(pk=run_id) if claimed else None


def external_training_finish(
    run_id,
    *,
    artifact: bytes,
    algorithm: str,
    params: dict,
    metrics: dict,
    holdout: dict,
    output: dict,
    curves: dict,
    started: float,
    cpu_started: float,
) -> TrainingRun:
    """Store `artifact` in the lake and register it as the next version of the run's model (one transaction).

    Only a running run finishes: one settled meanwhile (runs_settle, after its job ended) is left as it is.
    `started` and `cpu_started` are time.monotonic() and time.process_time() when the work began.
    """
    blob = get_storage().put_bytes(artifact)
    with transaction.atomic():
        finished = TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.SUCCEEDED, algorithm=algorithm, params=params, metrics=metrics, holdout=holdout,
            output=output, curves=curves, seconds=round(time.monotonic() - started, 3),
            resources=_resources(cpu_started), artifact_sha256=blob.sha256, artifact_bytes=blob.size,
            finished_at=timezone.now(),
        )  # fmt: skip
        run = TrainingRun.objects.select_related("registered_model").get(pk=run_id)
        if not finished:  # settled meanwhile (its job was given up): it stays as it was left
            return run
        audit.record(actor=None, action="run.succeeded", obj=run, changes={"metrics": metrics})
        if run.registered_model is not None:
            version_from_run(run)
    return run


def external_training_stop(run_id, message: str, *, cancelled: bool = False) -> TrainingRun:
    """End a claimed run without a version: cancelled (asked for) or failed, with the reason."""
    run = TrainingRun.objects.get(pk=run_id)
    if cancelled:
        return _finish_failed(run, "cancelled", message, status=RunStatus.CANCELLED)
    return _finish_failed(run, "failed", message)


def external_artifact(version) -> bytes:
    """A version's artifact, checksum-verified (models_repo.serving.ArtifactUnavailable when missing or altered)."""
    from models_repo.serving import ArtifactUnavailable

    try:
        return get_storage().read_bytes(version.artifact_sha256)
    except (CorruptBlob, BlobNotFound):
        raise ArtifactUnavailable(
            _("The stored artifact of %(version)s is missing or does not match its checksum; it was not loaded.")
            % {"version": version}
        ) from None
