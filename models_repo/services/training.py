"""Training runs: start (validated spec on a dataset version), execute in a worker, re-run, cancel."""

from __future__ import annotations

import os
import tempfile
import time

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from datalake import selectors as datalake_selectors
from datalake.models import DatasetVersion, VersionStatus
from datalake.services import lineage_add
from lepton import audit, policy
from lepton.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from lepton.i18n import translated, translated_fields
from lepton.jobs.models import JobStatus
from lepton.jobs.services import job_cancel, job_submit
from lepton.storage import get_storage
from models_repo.engine.errors import TrainingError, gettext_noop, phrase
from models_repo.external import by_flavor, by_task
from models_repo.models import RegisteredModel, RunStatus, TrainingRun

# One handler, three kinds: where the run goes is the person's choice (docs: GPU nodes).
TRAIN_KINDS = {"cpu": "models_repo.train", "gpu": "models_repo.train_gpu", "gpu_or_cpu": "models_repo.train_gpu_or_cpu"}


def _columns(version: DatasetVersion, actor) -> dict[str, str]:
    """{name: type} of the columns `actor` reads: a hidden sensitive column is not there, a hashed
    one is text (as in the masked Parquet the run trains on, datalake.services.sensitive)."""
    from datalake.models import MaskMode
    from datalake.services.sensitive import may_unmask

    columns = {c["name"]: c["type"] for c in version.schema}
    rules = version.dataset.sensitive_columns or {}
    if not rules or may_unmask(actor, version.dataset):
        return columns
    for name, rule in rules.items():
        if name in columns:
            if rule.get("mode") == MaskMode.HASH:
                columns[name] = "VARCHAR"
            else:
                del columns[name]
    return columns


def _invalid(exc: TrainingError) -> Invalid:
    """The engine's refusal as the API's 400, in the request's language."""
    message = translated(exc.message)
    fields = {f"spec.{k}": v for k, v in translated_fields(exc.fields).items()} or {"spec": [message]}
    return Invalid(message, fields=fields, code=exc.code)


def _warnings_in_language(warnings: list[dict]) -> list[dict]:
    """The engine's warnings as stored on a run: the message in the job's language, the code as it is."""
    return [{**w, "message": translated(w.get("message", ""))} for w in warnings]


def _device(spec: dict) -> str:
    keras = spec.get("keras")
    device = keras.get("device", "cpu") if isinstance(keras, dict) else "cpu"
    return device if device in TRAIN_KINDS else "cpu"


def _keras_features_numeric(parsed) -> None:
    """Keras networks read numbers: a text or date feature is refused here, not after the job starts."""
    if parsed.task == "image_classification":
        return
    bad = [name for name, kind in parsed.feature_kinds.items() if kind not in ("integer", "number", "boolean")]
    if bad:
        message = gettext_noop(
            "Keras models take numeric features only; not numeric: %(columns)s "
            "(use a scikit-learn algorithm, which encodes categories, text and dates)."
        )
        reason = gettext_noop("'%(name)s' is %(kind)s, not numeric.")
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            phrase(message, columns=", ".join(bad)),
            {"features": [phrase(reason, name=name, kind=parsed.feature_kinds[name]) for name in bad]},
        )


def training_start(
    *, actor, dataset_version: DatasetVersion, spec: dict, registered_model: RegisteredModel | None = None, name: str = ""
) -> TrainingRun:
    """Validate `spec` against the version's schema and queue a training job.

    The person must be allowed to use the dataset (own department or a `use` share) and to
    submit jobs in the department that owns the run (the model's; else the dataset's, or for
    shared data the trainer's own department, see _run_department).
    """
    from models_repo.engine.spec import parse_spec
    from models_repo.engine.train import deep_spec

    dataset = dataset_version.dataset
    if not datalake_selectors.datasets_visible(actor).filter(pk=dataset.pk).exists():
        raise NotFound()
    if not policy.can(actor, "use", dataset):
        raise Forbidden(_("Your role does not allow training on this dataset (members and above may)."))
    if dataset_version.status != VersionStatus.PUBLISHED:
        message = _("Only a published version can be trained on.")
        raise Invalid(message, fields={"dataset_version": [message]}, code="not_published")
    if registered_model is not None:
        if not policy.can(actor, "view", registered_model):
            raise NotFound()
        if not policy.can(actor, "use", registered_model):
            raise Forbidden(_("Your role does not allow training into this model."))
        if RegisteredModel.objects.filter(pk=registered_model.pk, archived_at__isnull=False).exists():
            message = _("%(model)s is archived; restore it before training new versions.") % {"model": registered_model}
            raise Invalid(message, fields={"registered_model": [message]}, code="archived")
        _refuse_external(registered_model, "registered_model")
    department = _run_department(actor, dataset, registered_model)
    if not isinstance(spec, dict):
        raise Invalid(_("The spec must be an object."), fields={"spec": [_("Give an object.")]})
    try:
        parsed = parse_spec(spec, _columns(dataset_version, actor))
        if parsed.flavor == "keras":
            deep_spec(parsed)  # the Keras options (window, epochs…), checked here rather than in the worker
            _keras_features_numeric(parsed)
    except TrainingError as exc:
        raise _invalid(exc) from None
    with transaction.atomic():
        run = TrainingRun.objects.create(
            department=department,
            name=(name or "").strip()[:200],
            dataset_version=dataset_version,
            dataset_label=f"{dataset.department.slug}.{dataset.slug} v{dataset_version.number}",
            spec=spec,
            registered_model=registered_model,
            task=str(spec.get("task", "")),
            created_by=actor,
        )
        job = job_submit(
            actor=actor,
            department=department,
            kind=TRAIN_KINDS[_device(spec)],
            params={"run": str(run.pk)},
            user_request=False,
        )
        run.job = job
        run.save(update_fields=["job"])
        audit.record(
            actor=actor,
            action="run.start",
            obj=run,
            changes={"dataset": run.dataset_label, "task": run.task, "device": _device(spec)},
        )
    return run


def _run_department(actor, dataset, registered_model: RegisteredModel | None):
    """Whose run (and whose compute quota): the model's department; without a model, the dataset's
    for its own people, and for data shared with another department the trainer's own department."""
    from lepton.models import ROLE_RANK, Role

    if registered_model is not None:
        return registered_model.department
    role = policy.role_in(actor, dataset.department_id)
    if role is not None and ROLE_RANK[role] >= ROLE_RANK[Role.MEMBER]:
        return dataset.department
    own = [m.department for m in actor.memberships.select_related("department") if ROLE_RANK[m.role] >= ROLE_RANK[Role.MEMBER]]
    if len(own) == 1:
        return own[0]
    if not own:
        raise Forbidden(_("Your role does not allow starting jobs in any department (members and above may)."))
    message = _("You train for several departments: choose a model of the department this run is for.")
    raise Invalid(message, fields={"registered_model": [message]}, code="department_ambiguous")


def _refuse_external(model: RegisteredModel, field: str) -> None:
    """A model of a kind another part trains (models_repo.external) takes versions from that training only."""
    if by_task(model.task) is not None:
        message = _("%(model)s is a %(task)s: its versions come from its own training, not from a dataset or a file.") % {
            "model": model, "task": model.task,
        }  # fmt: skip
        raise Invalid(message, fields={field: [message]}, code="wrong_task")


def training_rerun(*, actor, run: TrainingRun) -> TrainingRun:
    """The same spec on the same data version: reproducible from the record (seed included).

    A run of a kind another part trains (models_repo.external) is re-run by that part, with the same spec.
    """
    policy.require(actor, "view", run)
    kind = by_flavor(run.flavor)
    if kind is not None and run.dataset_version_id is None:
        again = kind.rerun(actor=actor, run=run)
    elif run.dataset_version is None:
        message = _("The dataset version this run learnt from was deleted; it cannot be re-run.")
        raise Conflict(message, code="data_gone")
    else:
        again = training_start(
            actor=actor,
            dataset_version=run.dataset_version,
            spec=run.spec,
            registered_model=run.registered_model,
            name=run.name,
        )
    TrainingRun.objects.filter(pk=again.pk).update(rerun_of=run)
    again.rerun_of = run
    return again


def training_cancel(*, actor, run: TrainingRun) -> TrainingRun:
    """Ask the run's job to stop; a run that already finished some candidates keeps the best one."""
    policy.require(actor, "view", run)
    if run.job is None or run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        raise Conflict(_("This run has finished; there is nothing to cancel."), code="finished")
    job_cancel(actor=actor, job=run.job)
    run.refresh_from_db()
    return run


def _attempt_rows(run_id, attempt: int | None):
    """The run's row for a write of its job's attempt `attempt`: no row once the job has been handed to
    another attempt (the reaper took this worker for dead) or has ended. Without an attempt (a call
    outside a job), the row itself."""
    rows = TrainingRun.objects.filter(pk=run_id)
    if attempt is not None:
        rows = rows.filter(job__status=JobStatus.RUNNING, job__attempts=attempt)
    return rows


def training_execute(
    run_id, *, progress=lambda pct, msg: None, should_stop=lambda: False, attempt: int | None = None
) -> TrainingRun:
    """Train one queued run in this worker: fetch the data, fit, evaluate, store the artifact, register.

    Idempotent: a run that already finished is returned as it is. A TrainingError fails the run
    with its message; anything else fails it and is raised for the job's log.

    Re-entrant under its job (`attempt`: the job's attempt number, models_repo.jobkinds): the
    attempt after a lost one (a killed worker, requeued by the reaper) finds the run still running
    and takes it over from the start, dropping the epochs the lost attempt recorded; the lost
    attempt's scratch folder goes with its process (lepton.celery.sweep_scratch); the artifact is stored
    only once the fit is done, just before the run is finished. Every write is fenced on
    the attempt, so a lost attempt that comes back (a worker that only looked dead) changes nothing,
    registers nothing and keeps no artifact.
    """
    from models_repo.engine.train import train as engine_train

    run = TrainingRun.objects.select_related("dataset_version__dataset", "registered_model").get(pk=run_id)
    if run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED):
        return run
    mine = _attempt_rows(run.pk, attempt)
    if run.dataset_version is None:
        return _finish_failed(run, "data_gone", _("The dataset version was deleted before the run started."), rows=mine)
    # Claim the run: a second caller finds it taken and leaves it. Under its job, a run left running
    # by a lost attempt is this attempt's to start again (the job's own claim lets one attempt run).
    claimable = [RunStatus.QUEUED] if attempt is None else [RunStatus.QUEUED, RunStatus.RUNNING]
    claimed = mine.filter(status__in=claimable).update(status=RunStatus.RUNNING, started_at=timezone.now(), epochs=[])
    if not claimed:
        run.refresh_from_db()
        return run
    storage = get_storage()
    epochs: list[dict] = []
    last_saved = [0.0]

    def on_epoch(epoch: int, logs: dict) -> None:
        epochs.append({"epoch": epoch, **logs})
        if time.monotonic() - last_saved[0] > 1.0:  # the run page polls; one write a second at most
            mine.update(epochs=epochs)
            last_saved[0] = time.monotonic()

    cpu_started = time.process_time()
    with tempfile.TemporaryDirectory(prefix="lepton-train-") as folder:
        progress(2, _("Reading %(dataset)s") % {"dataset": run.dataset_label})
        try:
            parquet = _named_parquet(storage, run.dataset_version, folder, actor=run.created_by)
        except ServiceError as exc:
            return _finish_failed(run, exc.code, exc.message, epochs=epochs, rows=mine)
        try:
            result = engine_train(
                run.spec,
                _columns(run.dataset_version, run.created_by),
                parquet,
                folder,
                progress=progress,
                should_stop=should_stop,
                on_epoch=on_epoch,
                image_loader=storage.read_bytes,
            )
        except TrainingError as exc:
            if exc.code == TrainingError.CANCELLED:
                return _finish_failed(run, exc.code, exc.message, status=RunStatus.CANCELLED, epochs=epochs, rows=mine)
            return _finish_failed(run, exc.code, exc.message, epochs=epochs, rows=mine)
        if not mine.exists():  # handed to another attempt meanwhile: store nothing
            run.refresh_from_db()
            return run
        with open(result.artifact_path, "rb") as stream:
            blob = storage.put_stream(stream)
        device = result.params.get("device_used", "cpu") if isinstance(result.params, dict) else "cpu"
        resources = _resources(cpu_started, device)
        return _finish_succeeded(run, result, blob, epochs, resources, rows=mine)


def _named_parquet(storage, version: DatasetVersion, folder: str, *, actor=None, purpose: str = "training") -> str:
    """The version's Parquet with its original column names (the lake stores SQL-safe identifiers).

    Read through the data lake's one read path as `actor` (the person who asked for the run):
    sensitive columns are in clear only if they may unmask (audited), masked otherwise; with no
    actor (the person was deleted), masked. Access was checked when the run was asked for.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from datalake.services.sensitive import readable_parquet

    with readable_parquet(version, actor, purpose=purpose, check_access=False, folder=folder) as readable:
        source = readable.path
    names = {c.get("identifier", c["name"]): c["name"] for c in version.schema}
    reader = pq.ParquetFile(source)
    stored = reader.schema_arrow
    if all(names.get(n, n) == n for n in stored.names):
        return source
    target_schema = pa.schema([field.with_name(names.get(field.name, field.name)) for field in stored])
    target = os.path.join(folder, "data.parquet")
    with pq.ParquetWriter(target, target_schema, compression="zstd") as writer:
        for batch in reader.iter_batches(batch_size=65_536):
            writer.write_table(pa.Table.from_batches([batch]).rename_columns(target_schema.names))
    return target


def _finish_failed(run: TrainingRun, code: str, message: str, *, status=RunStatus.FAILED, epochs=None, rows=None) -> TrainingRun:
    """End the run with `status` and the reason (an engine's phrase or words, stored in the active
    language); `rows` (_attempt_rows) fences it on a job attempt."""
    rows = rows if rows is not None else TrainingRun.objects.filter(pk=run.pk)
    message = translated(message)
    with transaction.atomic():
        ended = rows.update(
            status=status,
            error_code=code,
            error_message=message,
            finished_at=timezone.now(),
            **({"epochs": epochs} if epochs is not None else {}),
        )
        run.refresh_from_db()
        if ended:
            audit.record(actor=None, action=f"run.{status}", obj=run, changes={"error": message[:500]})
    return run


def _resources(cpu_started: float, device: str = "cpu") -> dict:
    """CPU seconds of this process while it trained, its peak memory so far, the worker and device."""
    import resource
    import socket
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    peak_mb = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    return {
        "cpu_seconds": round(time.process_time() - cpu_started, 2),
        "peak_rss_mb": round(peak_mb, 1),
        "worker": socket.gethostname(),
        "device": device,
    }


def _finish_succeeded(
    run: TrainingRun, result, blob, epochs: list[dict], resources: dict | None = None, rows=None
) -> TrainingRun:
    """Record the run's result, its lineage and model version in one transaction; `rows` (_attempt_rows)
    fences it on a job attempt: an attempt handed on meanwhile records nothing and drops its artifact."""
    from .registry import version_from_run

    rows = rows if rows is not None else TrainingRun.objects.filter(pk=run.pk)
    with transaction.atomic():
        finished = rows.update(
            status=RunStatus.SUCCEEDED,
            flavor=result.flavor,
            task=result.task,
            algorithm=result.algorithm,
            params=result.params,
            metrics=result.metrics,
            cv=result.cv,
            candidates=result.candidates,
            curves=result.curves,
            importance=result.importance,
            epochs=epochs,
            input_schema=result.input_schema,
            output=result.output,
            holdout=result.holdout,
            warnings=_warnings_in_language(result.warnings),
            packages=result.packages,
            seconds=result.seconds,
            resources=resources or {},
            artifact_sha256=blob.sha256,
            artifact_bytes=blob.size,
            finished_at=timezone.now(),
        )
        run.refresh_from_db()
        if finished:
            lineage_add(from_obj=run.dataset_version, to_obj=run, via=run.job)
            audit.record(actor=None, action="run.succeeded", obj=run, changes={"metrics": result.metrics})
            _queue_analysis(run)
            if run.registered_model is not None:
                version = version_from_run(run)
                if run.automatic:
                    from .continuous import promote_if_passing

                    promote_if_passing(version)
    if not finished:
        _drop_unnamed_artifact(blob.sha256)
    return run


def _drop_unnamed_artifact(sha256: str) -> None:
    """Delete an artifact no run, model version or dataset version names (one stored by an attempt that was
    handed on before it could finish its run)."""
    from datalake.services.datasets import blobs_in_use
    from models_repo.models import ModelVersion

    named = (
        TrainingRun.objects.filter(artifact_sha256=sha256).exists()
        or ModelVersion.objects.filter(Q(artifact_sha256=sha256) | Q(onnx_sha256=sha256)).exists()
        or blobs_in_use([sha256])
    )
    if not named:
        get_storage().delete(sha256)


ANALYSIS_KIND = "models_repo.analyse"


def _queue_analysis(run: TrainingRun) -> None:
    """Queue the learning curve and importance of a scikit-learn run, with its starter's rights.

    Skipped for runs stopped early (their record says so) and when the starter may no longer
    submit jobs in the department; the run and its model are complete without it.
    """
    if run.flavor != "sklearn" or any(w.get("code") == "cancelled" for w in run.warnings) or run.created_by is None:
        return
    try:
        job = job_submit(
            actor=run.created_by, department=run.department, kind=ANALYSIS_KIND, params={"run": str(run.pk)},
            priority=3, user_request=False,
        )  # fmt: skip
    except (Forbidden, NotFound):
        return
    TrainingRun.objects.filter(pk=run.pk).update(analysis_job=job)
    run.analysis_job = job


def training_analyse(run_id, *, progress=lambda pct, msg: None, should_stop=lambda: False) -> TrainingRun:
    """Add the learning curve and permutation importance to a succeeded scikit-learn run.

    Reads the run's data version and its stored model (checksum-verified); idempotent. Raises
    TrainingError when the data or the model can no longer be read.
    """
    from models_repo.engine import tabular
    from models_repo.engine.spec import parse_spec

    run = TrainingRun.objects.select_related("dataset_version__dataset").get(pk=run_id)
    if run.status != RunStatus.SUCCEEDED or run.flavor != "sklearn" or "learning" in run.curves or run.importance:
        return run
    if run.dataset_version is None:
        raise TrainingError(TrainingError.INVALID_SPEC, _("The dataset version of this run was deleted."))
    storage = get_storage()
    spec = parse_spec(run.spec, _columns(run.dataset_version, run.created_by))
    with tempfile.TemporaryDirectory(prefix="lepton-analyse-") as folder:
        progress(2, _("Reading %(dataset)s") % {"dataset": run.dataset_label})
        parquet = _named_parquet(storage, run.dataset_version, folder, actor=run.created_by, purpose="analysis")
        model = tabular.load_model(storage.verified_local_path(run.artifact_sha256))
        found = tabular.analyse(spec, parquet, model, run.holdout.get("indices", []), progress=progress, should_stop=should_stop)
    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
        curves = dict(locked.curves)
        if found["learning"]:
            curves["learning"] = found["learning"]
        locked.curves = curves
        locked.importance = found["importance"]
        locked.save(update_fields=["curves", "importance"])
    return locked


def training_abandon(run_id, message: str, *, attempt: int | None = None) -> None:
    """Fail a run whose job ended without finishing it (an error, a killed worker); with `attempt`, only
    while that attempt of its job still has it."""
    rows = _attempt_rows(run_id, attempt)
    run = rows.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).first()
    if run is not None:
        _finish_failed(run, "job_failed", message, rows=rows)


def runs_settle() -> int:
    """Fail runs left queued or running by a job that already ended (the dispatcher's periodic pass)."""
    from lepton.jobs.models import JobStatus

    ended = [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED]
    stale = TrainingRun.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING], job__status__in=ended)
    count = 0
    for run in stale.select_related("job")[:100]:
        reason = run.job.error_message or _("The job ended without finishing the run.")
        status = RunStatus.CANCELLED if run.job.status == JobStatus.CANCELLED else RunStatus.FAILED
        _finish_failed(run, "job_ended", reason, status=status)
        count += 1
    return count
