"""Monitoring's state changes: expiring old traffic counts (`traffic_expire`), input drift, and the
ground truth posted back for predictions (`feedback_record`).

Input drift: the periodic pass that queues drift jobs, and the work those jobs do.

Nobody asks for drift by hand. The dispatcher's periodic pass (`drift_enqueue_due`, in
settings.LEPTON_PERIODIC_TASKS) finds the production versions with enough new sampled inputs
and queues one platform job per version and window; the worker runs `drift_compute`, which
profiles the version's training inputs the first time (`drift_reference`) and stores the drift
of each feature. People read the results through monitoring.selectors. The computation itself
is monitoring.engine.drift (no Django).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Func, IntegerField, Max, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from lepton import audit, policy
from lepton.errors import Conflict, Invalid, NotFound, ServiceError
from lepton.i18n import translated
from monitoring.engine import drift as engine
from monitoring.engine import feedback as feedback_engine
from monitoring.models import ActiveUser, DriftReference, FeatureDrift, PredictionFeedback, ReferenceStatus, TrafficMinute

logger = logging.getLogger(__name__)

DRIFT_KIND = "monitoring.drift"
# Production versions looked at in one periodic pass at most (the next pass takes the rest).
VERSIONS_PER_PASS = 200

# Why a version has no drift reference (DriftReference.reason; monitoring.selectors words them).
UPLOADED = "uploaded"
NOT_TABULAR = "not_tabular"
IMAGES = "images"
NO_FEATURES = "no_features"
DATA_GONE = "data_gone"
DATA_CHANGED = "data_changed"
NO_TRAINING_ROWS = "no_training_rows"


class _Unavailable(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


class JsonArrayLength(Func):
    """Items of a JSON array column (0 for anything else), on PostgreSQL and SQLite."""

    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        template = "CASE WHEN jsonb_typeof(%(expressions)s) = 'array' THEN jsonb_array_length(%(expressions)s) ELSE 0 END"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="COALESCE(json_array_length(%(expressions)s), 0)", **extra)


def window_end_for(now: datetime) -> datetime:
    """The end of the latest whole drift interval at `now` (window ends fall on multiples of it, UTC)."""
    step = max(1, settings.LEPTON_DRIFT_INTERVAL_MINUTES) * 60
    seconds = int(now.timestamp()) // step * step
    return datetime.fromtimestamp(seconds, tz=UTC)


def window_start_for(end: datetime) -> datetime:
    return end - timedelta(hours=settings.LEPTON_DRIFT_WINDOW_HOURS)


def drift_enqueue_due(now: datetime | None = None) -> int:
    """Queue a drift job for each production version whose current window is due; the number queued.

    Due: a version trained here (uploaded files have no training data), ready, not archived,
    whose reference is not known to be unavailable; no drift job of it is queued or running and
    none was queued for this window already (so a failing job is retried at the next window,
    not every pass); some input was sampled since its last computed window; and the window holds
    at least LEPTON_DRIFT_MIN_SAMPLE sampled input rows. Only counts run here; the job reads Parquet.
    """
    from lepton.jobs.models import Job, JobStatus
    from lepton.jobs.services import platform_job_submit
    from models_repo.models import ModelVersion, PredictionLog, VersionSource, VersionState
    from models_repo.services import PRODUCTION

    end = window_end_for(now or timezone.now())
    start = window_start_for(end)
    versions = list(
        ModelVersion.objects.filter(
            aliases__name=PRODUCTION,
            source=VersionSource.RUN,
            status=VersionState.READY,
            archived_at__isnull=True,
            model__archived_at__isnull=True,
        )
        .exclude(drift_reference__status=ReferenceStatus.UNAVAILABLE)
        .distinct()
        .order_by("pk")[:VERSIONS_PER_PASS]
    )
    if not versions:
        return 0
    taken = {
        str((params or {}).get("version"))
        for params in Job.objects.filter(kind=DRIFT_KIND)
        .filter(Q(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]) | Q(queued_at__gte=end))
        .values_list("params", flat=True)
    }
    last = dict(
        FeatureDrift.objects.filter(version__in=versions)
        .values("version")
        .annotate(last=Max("window_end"))
        .values_list("version", "last")
    )
    queued = 0
    for version in versions:
        if str(version.pk) in taken or (last.get(version.pk) is not None and last[version.pk] >= end):
            continue
        logs = PredictionLog.objects.filter(version=version, created_at__gt=start, created_at__lte=end)
        if last.get(version.pk) is not None and not logs.filter(created_at__gt=last[version.pk]).exists():
            continue
        sampled = logs.exclude(inputs=[]).aggregate(n=Sum(JsonArrayLength("inputs")))["n"] or 0
        if sampled < settings.LEPTON_DRIFT_MIN_SAMPLE:
            continue
        platform_job_submit(kind=DRIFT_KIND, params={"version": str(version.pk), "window_end": end.isoformat()}, priority=3)
        queued += 1
    return queued


def drift_compute(version_id, window_end: datetime, *, progress=lambda pct, msg: None) -> dict:
    """Compare a version's sampled inputs of the window ending at `window_end` with its reference.

    Idempotent: the rows of (version, feature, window_end) are replaced. A version without a
    reference says why and stores nothing else. Returns a summary for the job's result.
    """
    from models_repo.models import ModelVersion

    version = ModelVersion.objects.select_related("model", "run__dataset_version").get(pk=version_id)
    progress(5, _("Profiling the training inputs"))
    reference = drift_reference(version)
    if reference.status != ReferenceStatus.READY:
        return {"version": str(version.pk), "status": reference.status, "reason": reference.reason}
    start = window_start_for(window_end)
    progress(40, _("Reading the sampled inputs"))
    records = sampled_inputs(version, start, window_end)
    progress(60, _("Comparing each input with its training profile"))
    results = [
        engine.compare(
            profile,
            [record.get(profile["name"]) for record in records],
            min_sample=settings.LEPTON_DRIFT_MIN_SAMPLE,
            moderate=settings.LEPTON_DRIFT_PSI_MODERATE,
            significant=settings.LEPTON_DRIFT_PSI_SIGNIFICANT,
        )
        for profile in reference.features
    ]
    now = timezone.now()
    with transaction.atomic():
        for result in results:
            FeatureDrift.objects.update_or_create(
                version=version,
                feature=result["feature"][:200],
                window_end=window_end,
                defaults={
                    "window_start": start,
                    "kind": result["kind"],
                    "psi": result["psi"],
                    "ks_statistic": result["ks_statistic"],
                    "ks_pvalue": result["ks_pvalue"],
                    "sample_size": result["sample_size"],
                    "status": result["status"],
                    "reason": result["reason"],
                    "bins": result["bins"],
                    "computed_at": now,
                },
            )
    counts: dict[str, int] = {}
    for result in results:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    return {"version": str(version.pk), "window_end": window_end.isoformat(), "rows": len(records), "statuses": counts}


def sampled_inputs(version, start: datetime, end: datetime) -> list[dict]:
    """The most recent LEPTON_DRIFT_MAX_SAMPLE input records logged for `version` in (start, end]."""
    from models_repo.models import PredictionLog

    limit = settings.LEPTON_DRIFT_MAX_SAMPLE
    columns = [c["name"] for c in version.input_schema if isinstance(c, dict) and c.get("name")]
    records: list[dict] = []
    logs = (
        PredictionLog.objects.filter(version=version, created_at__gt=start, created_at__lte=end)
        .exclude(inputs=[])  # every request is logged; a sample of them with their inputs
        .order_by("-created_at")
        .values_list("inputs", flat=True)
    )
    for inputs in logs.iterator(chunk_size=500):
        records.extend(engine.input_records(inputs, columns))
        if len(records) >= limit:
            break
    return records[:limit]


def drift_reference(version) -> DriftReference:
    """The version's reference profile, built from its training rows the first time (on the worker).

    Kept once built, ready or unavailable: training data is immutable, so it never changes. An
    unexpected error (storage away) is raised and nothing is kept, so a later job tries again.
    """
    existing = DriftReference.objects.filter(version=version).first()
    if existing is not None:
        return existing
    try:
        columns, rows, rows_from, data_version = _training_inputs(version)
    except _Unavailable as exc:
        fields = {"status": ReferenceStatus.UNAVAILABLE, "reason": exc.reason, "detail": exc.detail[:2000]}
    else:
        fields = {
            "status": ReferenceStatus.READY,
            "dataset_version": data_version,
            "rows": rows,
            "rows_from": rows_from,
            "features": [
                engine.profile_feature(column["name"], column.get("type", "string"), columns.get(column["name"], []))
                for column in version.input_schema
            ],
        }
    with transaction.atomic():
        reference, created = DriftReference.objects.get_or_create(version=version, defaults=fields)
        if created:
            audit.record(
                actor=None,
                action="drift.reference",
                obj=version,
                department=version.model.department,
                changes={"status": reference.status, "reason": reference.reason, "rows": reference.rows},
            )
    return reference


def _training_inputs(version) -> tuple[dict[str, object], int, str, object]:
    """({feature: values}, rows, how they were found, data version) of the rows the version was fitted on.

    sklearn and Keras tables hold out row positions of the Parquet (`holdout.indices`): the rest
    trained it (Keras also left out rows with a missing value). Windowed Keras models hold out
    the latest windows of each group: the rows before each group's cut stand for the training
    rows (the windows cover them up to a window's length).
    """
    from datalake.models import VersionStatus
    from models_repo.engine.errors import TrainingError
    from models_repo.engine.spec import parse_spec
    from models_repo.models import VersionSource

    if version.source != VersionSource.RUN or version.run is None:
        raise _Unavailable(UPLOADED)
    run = version.run
    schema = [c for c in version.input_schema if isinstance(c, dict) and c.get("name")]
    if any(c.get("type") == "image" for c in schema) or (version.task or run.task) == "image_classification":
        raise _Unavailable(IMAGES)
    if version.flavor not in ("sklearn", "keras"):
        raise _Unavailable(NOT_TABULAR)
    if not schema:
        raise _Unavailable(NO_FEATURES)
    data = run.dataset_version
    if data is None or data.status != VersionStatus.PUBLISHED or not data.parquet_sha256:
        raise _Unavailable(DATA_GONE)
    if data.format == "images":
        raise _Unavailable(IMAGES)
    types = {c["name"]: c["type"] for c in data.schema}
    try:
        spec = parse_spec(run.spec, types)
    except TrainingError as exc:
        raise _Unavailable(DATA_CHANGED, translated(exc.message)) from None
    names = [c["name"] for c in schema]
    windowed = isinstance(version.holdout, dict) and version.holdout.get("indices") is None and "windows" in version.holdout
    order = [c for c in (spec.group_column, spec.time_column) if c] if windowed else []
    wanted = list(dict.fromkeys([*names, spec.target, *order]))
    missing = [n for n in wanted if n not in types]
    if missing:
        raise _Unavailable(DATA_CHANGED, ", ".join(missing))
    stored = {c["name"]: c.get("identifier", c["name"]) for c in data.schema}
    import tempfile

    import pyarrow.parquet as pq

    from datalake.services.sensitive import readable_parquet

    # Through the data lake's one read path, as the person whose run fitted the model: the
    # reference shows what the model was trained on, masked if that person could not unmask.
    with tempfile.TemporaryDirectory(prefix="lepton-drift-") as folder:
        try:
            with readable_parquet(data, run.created_by, purpose="drift reference", check_access=False, folder=folder) as readable:
                wanted_stored = [stored[n] for n in wanted]
                missing_stored = [n for n, i in zip(wanted, wanted_stored, strict=True) if i not in readable.names]
                if missing_stored:
                    raise _Unavailable(DATA_CHANGED, ", ".join(missing_stored))
                table = pq.read_table(readable.path, columns=wanted_stored)
        except ServiceError as exc:
            raise _Unavailable(DATA_GONE, exc.message) from None
    frame = table.rename_columns(wanted).to_pandas(date_as_object=False)
    frame = frame.reset_index(drop=True)
    indices = version.holdout.get("indices") if isinstance(version.holdout, dict) else None
    if isinstance(indices, list):
        keep = np.ones(len(frame), dtype=bool)
        held = np.asarray([i for i in indices if isinstance(i, int) and 0 <= i < len(frame)], dtype=np.int64)
        keep[held] = False
        if version.flavor == "keras":
            keep = keep & _complete(frame, list(dict.fromkeys([*names, spec.target])))
        train, rows_from = frame.loc[keep], "holdout_excluded"
    elif windowed:
        train, rows_from = _before_time_cut(frame, names, spec), "time_cut"
    else:
        train, rows_from = frame, "all_rows"
    if train.empty:
        raise _Unavailable(NO_TRAINING_ROWS)
    if len(train) > settings.LEPTON_DRIFT_REFERENCE_MAX_ROWS:
        train = train.sample(n=settings.LEPTON_DRIFT_REFERENCE_MAX_ROWS, random_state=0)
    columns: dict[str, object] = {}
    for column in schema:
        values = train[column["name"]]
        if engine.kind_of(column.get("type", "string")) == "numeric":
            columns[column["name"]] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        else:
            columns[column["name"]] = values.astype(object).where(values.notna(), None).tolist()
    return columns, len(train), rows_from, data


def _complete(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Rows with a finite value in every column (what the Keras trainer keeps: models_repo.engine.deep.data)."""
    ok = frame[columns].notna().all(axis=1).to_numpy()
    numeric = [c for c in columns if pd.api.types.is_float_dtype(frame[c])]
    if numeric:
        ok = ok & np.isfinite(frame[numeric].to_numpy(dtype="float64")).all(axis=1)
    return ok


def _before_time_cut(frame: pd.DataFrame, names: list[str], spec) -> pd.DataFrame:
    """Each group's rows in time order less its last `holdout` share (a windowed model's holdout)."""
    order = [c for c in (spec.group_column, spec.time_column) if c]
    frame = frame.loc[_complete(frame, list(dict.fromkeys([*names, spec.target, *order])))]
    if order:
        frame = frame.sort_values(order, kind="mergesort")
    groups = frame[spec.group_column] if spec.group_column else pd.Series(0, index=frame.index)
    position = groups.groupby(groups, sort=False).cumcount()
    size = groups.map(groups.value_counts())
    cut = size - np.floor(spec.holdout * size + 0.5)
    return frame.loc[position < cut]


def traffic_expire(now=None) -> int:
    """Delete traffic counts and active-people days older than LEPTON_TRAFFIC_RETENTION_DAYS; how many rows went."""
    before = (now or timezone.now()) - timedelta(days=settings.LEPTON_TRAFFIC_RETENTION_DAYS)
    minutes, _deleted = TrafficMinute.objects.filter(minute__lt=before).delete()
    days, _deleted = ActiveUser.objects.filter(day__lt=before.date()).delete()
    return minutes + days


# --- ground truth (the feedback API) -------------------------------------------------------


def _feedback_problem(problem: feedback_engine.FeedbackProblem) -> Invalid:
    params = problem.params
    if problem.code == feedback_engine.WRONG_LENGTH:
        message = _("Give one actual value per predicted row: the prediction had %(rows)s, this gives %(given)s.") % params
    elif problem.code == feedback_engine.NOT_FINITE:
        message = _("An actual value must be a finite number.")
    else:
        message = _("The actual value must be of the predictions' type (%(expected)s), not %(given)s.") % params
    return Invalid(message, fields={problem.field: [message]})


def feedback_record(*, actor, model, prediction_id, actual) -> PredictionFeedback:
    """Record the ground truth of one logged prediction request of `model`, scored against its outputs.

    The actor needs `use` on the model (the right to predict with it). An id this model never
    answered (or whose log has expired) is NotFound; a refused request, a value of the wrong
    type or count is Invalid naming the field; a second feedback for the same id is a Conflict
    (409: the first one stands, and the scores are never counted twice). Audited.
    """
    from models_repo.models import PredictionLog

    policy.require(actor, "use", model)
    log = PredictionLog.objects.filter(prediction_id=prediction_id, model=model).select_related("version").first()
    if log is None:
        raise NotFound(_("This model answered no prediction with this id (or its log has expired)."))
    if log.status_code >= 400:
        message = _("This request was refused (status %(status)s): it has no predictions to compare with.") % {
            "status": log.status_code
        }
        raise Invalid(message, fields={"prediction_id": [message]})
    if PredictionFeedback.objects.filter(prediction_id=prediction_id).exists():
        raise _feedback_given()
    task = log.version.task or log.version.output.get("task", "")
    try:
        values = feedback_engine.as_rows(actual, log.rows)
        found = feedback_engine.score(task, list(log.outputs or []), values)
    except feedback_engine.FeedbackProblem as problem:
        raise _feedback_problem(problem) from None
    try:
        with transaction.atomic():
            feedback = PredictionFeedback.objects.create(
                prediction_id=log.prediction_id, log=log, model=model, version=log.version, predicted_at=log.created_at,
                actual=values, rows=found.rows, correct=found.correct, abs_error_sum=found.abs_error_sum,
                squared_error_sum=found.squared_error_sum, created_by=actor,
            )  # fmt: skip
            audit.record(
                actor=actor, action="prediction.feedback", obj=model, department=model.department,
                object_repr=f"{model} {log.prediction_id}",
                changes={"prediction_id": str(log.prediction_id), "version": log.version.number, "rows": found.rows,
                         "correct": found.correct, "abs_error_sum": found.abs_error_sum},
            )  # fmt: skip
    except IntegrityError:  # the same id posted twice at once: the other request's row stands
        raise _feedback_given() from None
    return feedback


def _feedback_given() -> Conflict:
    return Conflict(_("Feedback for this prediction was already given; it cannot be changed."), code="feedback_exists")
