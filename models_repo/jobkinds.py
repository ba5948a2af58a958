"""Job kinds of the model repository: training (one handler on three queues, the person's choice),
the run analysis, batch prediction, the promotion gate, ONNX conversion and upload validation."""

from functools import partial

from rest_framework import serializers

from lepton.jobs.registry import JobCancelled, JobError, JobTimedOut, job_kind


class RunParams(serializers.Serializer):
    run = serializers.UUIDField()


def _stopper(ctx, stopped: list | None = None):
    """The engine's cooperative stop from the job's cancel and time limit (the reason kept in `stopped`)."""

    def should_stop() -> bool:
        try:
            ctx.check_cancelled()
        except (JobCancelled, JobTimedOut) as exc:
            if stopped is not None:
                stopped.append(exc)
            return True
        return False

    return should_stop


def training_job(ctx, params, execute) -> dict:
    """Run one training run's `execute(run_id, progress=, should_stop=)` as this job, and report it.

    `should_stop` turns the job's cancel and time limit into the engine's cooperative stop: a
    run that finished something keeps what it may (the best candidates or epochs); one that
    kept nothing ends cancelled. A run that ends any other way is failed with the reason. The
    tabular training below and other parts' trainings (models_repo.external: a scheduling
    policy) share it.
    """
    from lepton.jobs.runner import TRANSIENT_ERRORS
    from models_repo.models import RunStatus
    from models_repo.services.training import training_abandon

    stopped: list[Exception] = []
    should_stop = _stopper(ctx, stopped)
    try:
        run = execute(params["run"], progress=ctx.progress, should_stop=should_stop)
    except Exception as exc:
        # A transient error with an attempt left is tried again (lepton.jobs.runner): the run stays
        # running for the next attempt to take over. Otherwise it fails, unless another attempt has it.
        if not (isinstance(exc, TRANSIENT_ERRORS) and ctx.attempt < ctx.job.max_attempts):
            training_abandon(params["run"], f"The training failed ({type(exc).__name__}: {exc}).", attempt=ctx.attempt)
        raise
    if run.status == RunStatus.CANCELLED:
        if stopped and isinstance(stopped[0], JobTimedOut):
            raise JobError(f"The training passed its time limit of {ctx.time_limit:.0f} s before it had anything to keep.")
        raise JobCancelled()
    if run.status == RunStatus.FAILED:
        raise JobError(run.error_message)
    for warning in run.warnings:
        ctx.log(f"{warning.get('code')}: {warning.get('message')}", level="warning")
    ctx.log(f"{run.algorithm}: {run.metrics}")
    return {"run": str(run.pk), "metrics": run.metrics, "result_ref": f"models_repo.trainingrun:{run.pk}"}


def _train(ctx, params) -> dict:
    """Train one tabular or Keras run (models_repo.services.training_execute), re-entrant on this attempt."""
    from models_repo.services import training_execute

    return training_job(ctx, params, partial(training_execute, attempt=ctx.attempt))


def _analyse(ctx, params) -> dict:
    """The learning curve and permutation importance of a finished run (models_repo.services.training_analyse)."""
    from models_repo.engine.errors import TrainingError
    from models_repo.services.training import training_analyse

    try:
        run = training_analyse(params["run"], progress=ctx.progress, should_stop=_stopper(ctx))
    except TrainingError as exc:
        raise JobError(exc.message) from None
    ctx.log(f"learning curve: {'yes' if 'learning' in run.curves else 'no'}; importance of {len(run.importance)} features")
    return {"run": str(run.pk), "result_ref": f"models_repo.trainingrun:{run.pk}"}


# Two attempts, as a training: a run's analysis is written whole at its end (training_analyse), so an
# attempt after a lost worker just computes it again.
job_kind(
    "models_repo.analyse", label="Learning curve and importance of a run", params=RunParams, time_limit=3 * 3600,
    max_attempts=2,
)(_analyse)  # fmt: skip


class BatchParams(serializers.Serializer):
    version = serializers.UUIDField(help_text="The pending output dataset version.")


def _batch_predict(ctx, params) -> dict:
    """Predict a dataset version into a new dataset version (models_repo.services.batch)."""
    from datalake.services import version_abandon
    from models_repo.services.batch import batch_predict_execute

    try:
        version = batch_predict_execute(params["version"], progress=ctx.progress)
    except Exception as exc:
        version_abandon(params["version"], f"The batch prediction failed ({type(exc).__name__}: {exc}).")
        raise
    if version.status != "published":
        raise JobError(version.error_message)
    ctx.log(f"published {version} ({version.row_count} rows)")
    return {"version": str(version.pk), "result_ref": f"datalake.datasetversion:{version.pk}"}


job_kind("models_repo.batch_predict", label="Batch prediction", params=BatchParams, time_limit=6 * 3600, max_attempts=1)(
    _batch_predict
)


class GateParams(serializers.Serializer):
    request = serializers.UUIDField(help_text="The promotion request whose gate to run.")


def _gate(ctx, params) -> dict:
    """Score production and the candidate on the same rows, then open or fail the request."""
    from models_repo.services.registry import promotion_gate_run

    request = promotion_gate_run(params["request"])
    ctx.log(f"gate: {request.status}: {request.gate.get('reason')}")
    return {"request": str(request.pk), "status": request.status}


job_kind("models_repo.gate", label="Promotion gate", params=GateParams, time_limit=3600, max_attempts=1)(_gate)

# Two attempts: a worker lost mid-training (a deploy, a node reboot, the OOM killer taking another task)
# costs the run one start over, not the run (training_execute is re-entrant); killed twice, it fails
# with the reason. Not more: a training that kills its worker itself (out of memory) should not do so
# again and again (tests/faults/test_worker_kills.py).
KIND_OPTIONS = {"params": RunParams, "time_limit": 6 * 3600, "max_attempts": 2}

job_kind("models_repo.train", label="Train a model (CPU)", **KIND_OPTIONS)(_train)
job_kind("models_repo.train_gpu", resource="gpu", label="Train a model (GPU)", **KIND_OPTIONS)(_train)
job_kind(
    "models_repo.train_gpu_or_cpu", resource="gpu", cpu_fallback=True, label="Train a model (GPU, else CPU)", **KIND_OPTIONS
)(_train)


class UploadParams(serializers.Serializer):
    version = serializers.UUIDField(help_text="The uploaded model version to validate.")


def _validate_upload(ctx, params) -> dict:
    """Load an uploaded .keras version with safe_mode (models_repo.services.uploads.version_validate)."""
    from models_repo.services.uploads import version_validate

    version = version_validate(params["version"])
    ctx.log(f"v{version.number}: {version.status}{f' ({version.status_reason})' if version.status_reason else ''}")
    return {"version": str(version.pk), "status": version.status}


job_kind(
    "models_repo.validate_upload", label="Validate an uploaded Keras model", params=UploadParams, time_limit=600,
    max_attempts=2,
)(_validate_upload)  # fmt: skip


class OnnxParams(serializers.Serializer):
    version = serializers.UUIDField(help_text="The scikit-learn model version to convert.")


def _onnx_convert(ctx, params) -> dict:
    """Convert a version to ONNX and check it on its holdout (models_repo.services.registry.version_onnx_convert)."""
    from models_repo.services.registry import version_onnx_convert

    version = version_onnx_convert(params["version"], progress=ctx.progress)
    report = version.onnx_report
    ctx.log(f"ONNX: {report.get('status')} — {report.get('reason', '')}")
    for name, variant in (report.get("variants") or {}).items():
        ctx.log(f"{name}: {'offered' if variant.get('offered') else variant.get('reason', '')}")
    return {"version": str(version.pk), "status": report.get("status"), "result_ref": f"models_repo.modelversion:{version.pk}"}


# Off the training job, so conversion never makes a training longer; a rerun after a lost worker is harmless.
job_kind(
    "models_repo.onnx_convert", label="Convert a model version to ONNX", params=OnnxParams, time_limit=3600,
    max_attempts=2,
)(_onnx_convert)  # fmt: skip
