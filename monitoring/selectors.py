"""The dashboards' numbers, read from the parts' tables (and monitoring's own traffic counts).

Every function takes a period (`start` ≤ `end`, aware datetimes) and answers plain data:
time buckets are hours for periods up to two days, days beyond. The callers (views) check
who may see what; the department functions only count what belongs to that department.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Count, OuterRef, Subquery, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lepton.errors import NotFound
from lepton.jobs.models import Job, JobStatus, WorkerHeartbeat
from lepton.models import Department
from models_repo import selectors as models_selectors
from monitoring.engine import drift as engine
from monitoring.figures import percentile
from monitoring.models import (
    BUCKET_FIELDS,
    LATENCY_BOUNDS_MS,
    ActiveUser,
    DriftReference,
    DriftStatus,
    FeatureDrift,
    ReferenceStatus,
    TrafficMinute,
)

HOURLY_UP_TO = timedelta(days=2)
STALE_AFTER = timedelta(days=30)  # a dataset with no new version for this long is called stale
JOB_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.RUNNING, JobStatus.QUEUED)


def _truncate(start: datetime, end: datetime):
    """(database truncation, step, every bucket start in the period)."""
    hourly = end - start <= HOURLY_UP_TO
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    first = start.replace(minute=0, second=0, microsecond=0)
    if not hourly:
        first = timezone.localtime(first).replace(hour=0)
    keys = []
    at = first
    while at <= end:
        keys.append(at)
        at += step
    return (TruncHour if hourly else TruncDay), step, keys


def _iso(keys: list[datetime]) -> list[str]:
    return [k.isoformat() for k in keys]


def _key(value: datetime, step: timedelta) -> datetime:
    value = timezone.localtime(value)
    value = value.replace(minute=0, second=0, microsecond=0)
    return value if step == timedelta(hours=1) else value.replace(hour=0)


def _jobs(queryset, start, end) -> dict:
    trunc, step, keys = _truncate(start, end)
    rows = (
        queryset.filter(queued_at__gte=start, queued_at__lte=end)
        .annotate(bucket=trunc("queued_at"))
        .values("bucket", "status", "queue")
        .annotate(n=Count("pk"))
        .order_by()
    )
    by_status: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    by_queue: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    total = 0
    for row in rows:
        key = _key(row["bucket"], step)
        by_status[row["status"]][key] += row["n"]
        by_queue[row["queue"] or "waiting"][key] += row["n"]
        total += row["n"]
    waits: dict[datetime, list[float]] = defaultdict(list)
    started = queryset.filter(started_at__gte=start, started_at__lte=end, wait_seconds__isnull=False)
    for at, wait in started.values_list("started_at", "wait_seconds"):
        waits[_key(at, step)].append(wait)

    def quantile(values, q):
        if not values:
            return None
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        "x": _iso(keys),
        "total": total,
        "by_status": {s: [by_status[s].get(k, 0) for k in keys] for s in JOB_STATUSES if s in by_status},
        "by_queue": {q: [counts.get(k, 0) for k in keys] for q, counts in sorted(by_queue.items())},
        "wait_p50": [quantile(waits.get(k), 0.5) for k in keys],
        "wait_p95": [quantile(waits.get(k), 0.95) for k in keys],
        "failed": sum(by_status[JobStatus.FAILED].values()) if JobStatus.FAILED in by_status else 0,
    }


def traffic(start: datetime, end: datetime, kind: str = "api") -> dict:
    """Requests per minute, error rates and latency percentiles per bucket, from monitoring.traffic's counts."""
    trunc, step, keys = _truncate(start, end)
    sums = {field: Sum(field) for field in ("requests", "errors_4xx", "errors_5xx", *BUCKET_FIELDS)}
    rows = (
        TrafficMinute.objects.filter(kind=kind, minute__gte=start, minute__lte=end)
        .annotate(bucket=trunc("minute"))
        .values("bucket")
        .annotate(**sums)
        .order_by()
    )
    per = {_key(row["bucket"], step): row for row in rows}
    minutes = step.total_seconds() / 60
    out = {"x": _iso(keys), "rate": [], "errors_4xx": [], "errors_5xx": [], "p50": [], "p95": [], "p99": []}
    total = defaultdict(int)
    for key in keys:
        row = per.get(key)
        n = row["requests"] if row else 0
        out["rate"].append(round(n / minutes, 3))
        out["errors_4xx"].append(round(row["errors_4xx"] / n, 4) if n else None)
        out["errors_5xx"].append(round(row["errors_5xx"] / n, 4) if n else None)
        counts = [row[f] for f in BUCKET_FIELDS] if row else []
        for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            value = percentile(counts, LATENCY_BOUNDS_MS, q) if n else None
            out[name].append(round(value, 1) if value is not None else None)
        if row:
            for field in ("requests", "errors_4xx", "errors_5xx", *BUCKET_FIELDS):
                total[field] += row[field]
    out["requests"] = total["requests"]
    out["errors_5xx_total"] = total["errors_5xx"]
    counts = [total[f] for f in BUCKET_FIELDS]
    out["p99_total"] = percentile(counts, LATENCY_BOUNDS_MS, 0.99) if total["requests"] else None
    return out


def active_users(start: datetime, end: datetime) -> dict:
    """People active per day of the period, and how many distinct people in all."""
    first, last = timezone.localtime(start).date(), timezone.localtime(end).date()
    period = ActiveUser.objects.filter(day__gte=first, day__lte=last)
    rows = dict(period.values("day").annotate(n=Count("pk")).values_list("day", "n"))
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    return {
        "x": [d.isoformat() for d in days],
        "users": [rows.get(d, 0) for d in days],
        "distinct": period.values("user").distinct().count(),
    }


def platform(start: datetime, end: datetime) -> dict:
    """Jobs, queue wait, workers, quotas, API traffic and active people: the staff's dashboard."""
    from datalake.services import department_storage_used
    from lepton.jobs.dispatcher import gpu_minutes_used

    now = timezone.now()
    departments = list(Department.objects.order_by("name"))
    gpu = gpu_minutes_used([d.pk for d in departments], now)
    stale = now - timedelta(seconds=90)
    workers = [
        {"hostname": w.hostname, "queues": w.queues, "concurrency": w.concurrency, "age": (now - w.last_seen).total_seconds(),
         "live": w.last_seen >= stale}
        for w in WorkerHeartbeat.objects.order_by("hostname")
    ]  # fmt: skip
    users = active_users(start, end)
    return {
        "jobs": _jobs(Job.objects.all(), start, end),
        "workers": workers,
        "quotas": [
            {
                "department": d,
                "gpu_used": round(gpu.get(d.pk, 0.0), 1),
                "gpu_limit": d.gpu_minutes_per_month,
                "storage_used": department_storage_used(d),
                "storage_limit": d.storage_bytes_quota,
            }
            for d in departments
        ],  # fmt: skip
        "api": traffic(start, end, "api"),
        "web": traffic(start, end, "web"),
        "users": users,
    }


def department(dept: Department, start: datetime, end: datetime) -> dict:
    """One department's datasets, models in production, jobs and scheduling KPIs."""
    from datalake.models import Dataset, DatasetVersion, VersionStatus
    from datalake.services import department_storage_used
    from models_repo.models import ModelAlias
    from scheduling.models import RunStatus, ScheduleRun

    now = timezone.now()
    newest = DatasetVersion.objects.filter(dataset=OuterRef("pk"), status=VersionStatus.PUBLISHED).order_by("-number")
    listed = list(
        Dataset.objects.filter(department=dept, deleted_at__isnull=True)
        .annotate(latest_id=Subquery(newest.values("pk")[:1]))
        .order_by("name")
    )
    latest_of = DatasetVersion.objects.in_bulk([d.latest_id for d in listed if d.latest_id])  # one query, not one per dataset
    datasets = []
    for dataset in listed:
        latest = latest_of.get(dataset.latest_id)
        published = latest.published_at if latest else None
        datasets.append(
            {"dataset": dataset, "latest": latest, "published_at": published,
             "stale": published is None or now - published > STALE_AFTER}
        )  # fmt: skip
    versions = DatasetVersion.objects.filter(
        dataset__department=dept, status=VersionStatus.PUBLISHED, published_at__gte=start, published_at__lte=end
    ).values_list("check_results", flat=True)
    checked = [results for results in versions if results]
    passed = sum(1 for results in checked if all(r.get("passed") for r in results))
    production = list(
        ModelAlias.objects.filter(model__department=dept, name="production", model__archived_at__isnull=True)
        .select_related("model", "version")
        .order_by("model__name")
    )
    # Rows predicted by each production model's requests, read through the rollups (model_traffic).
    predictions = {alias.model_id: model_traffic(alias.model_id, start, end)["rows"] for alias in production}
    runs = list(
        ScheduleRun.objects.filter(
            problem__department=dept, status=RunStatus.SUCCEEDED, finished_at__gte=start, finished_at__lte=end,
            breakdowns_seed__isnull=True,
        ).select_related("problem").order_by("finished_at")
    )  # fmt: skip
    by_problem: dict[str, list] = defaultdict(list)
    for run in runs:
        by_problem[run.problem.name].append(
            {"at": run.finished_at.isoformat(), "makespan": run.makespan,
             "utilisation": statistics.mean(run.utilisation) if run.utilisation else None}
        )  # fmt: skip
    return {
        "datasets": datasets,
        "storage_used": department_storage_used(dept),
        "storage_limit": dept.storage_bytes_quota,
        "stale": sum(1 for d in datasets if d["stale"]),
        "checked_versions": len(checked),
        "quality_pass_rate": passed / len(checked) if checked else None,
        "models": [{"alias": a, "predictions": predictions.get(a.model_id, 0)} for a in production],
        "jobs": _jobs(Job.objects.filter(department=dept), start, end),
        "schedules": dict(by_problem),
        "runs": len(runs),
    }


def dataset_history(dataset, limit: int = 100) -> dict:
    """Rows, null rates and quality checks over a dataset's published versions (oldest first), and the latest profile."""
    from datalake.models import VersionStatus

    versions = list(dataset.versions.filter(status=VersionStatus.PUBLISHED).order_by("-number")[:limit])[::-1]
    numbers = [f"v{v.number}" for v in versions]
    nulls: dict[str, list] = {}
    for k, version in enumerate(versions):
        for column in (version.profile or {}).get("columns", []):
            nulls.setdefault(column["name"], [None] * len(versions))[k] = column.get("null_fraction")
    checks = [
        {"version": v, "passed": sum(1 for r in v.check_results if r.get("passed")),
         "failed": sum(1 for r in v.check_results if not r.get("passed"))}
        for v in versions
    ]  # fmt: skip
    latest = versions[-1] if versions else None
    histograms = []
    if latest:
        for column in (latest.profile or {}).get("columns", []):
            hist = column.get("histogram")
            if hist and len(hist.get("edges", [])) == len(hist.get("counts", [])) + 1:
                histograms.append((column["name"], hist))
    return {
        "versions": versions, "numbers": numbers, "rows": [v.row_count or 0 for v in versions], "nulls": nulls,
        "checks": checks, "latest": latest, "histograms": histograms,
    }  # fmt: skip


# --- input drift (model_drift: the drift API, the drift panel and the model dashboard; latest_drift: alerts) ---

NO_PRODUCTION = "no_production"
NOT_COMPUTED = "not_computed"
HISTORY_WINDOWS = 48

# The reason codes of monitoring.services and monitoring.engine.drift, in words.
REASONS = {
    NO_PRODUCTION: _("No version of this model is in production; drift is measured on the production version."),
    NOT_COMPUTED: _("The training inputs of this version have not been profiled yet."),
    "uploaded": _(
        "This version was uploaded as a file: Lepton has no training data to compare its inputs with, so it gets no drift."
    ),
    "not_tabular": _("This kind of model takes no table of inputs; drift is not computed for it."),
    "images": _("Image inputs are not profiled for drift."),
    "no_features": _("This version names no input columns."),
    "data_gone": _("The dataset version this version was trained on was deleted; there is nothing to compare with."),
    "data_changed": _("The training data no longer reads as it did when this version was trained."),
    "no_training_rows": _("No training rows were left to profile."),
    engine.SKIP_DATETIME: _("Dates are not compared: prediction times move past the training period by nature."),
    engine.SKIP_TYPE: _("Inputs of this type are not compared."),
    engine.SKIP_NO_VALUES: _("The training rows hold no value of this input."),
    engine.TOO_FEW: _("Too few sampled values in this window."),
}


def reason_text(code: str) -> str:
    return str(REASONS.get(code, code))


def drift_model(user, model_id):
    """The registered model `model_id` if the user may see it (department or share); NotFound otherwise."""
    model = models_selectors.models_visible(user).filter(pk=model_id).first()
    if model is None:
        raise NotFound()
    return model


def latest_drift(version) -> list[FeatureDrift]:
    """The features' drift of the version's latest computed window (empty when none yet)."""
    last = FeatureDrift.objects.filter(version=version).order_by("-window_end").values_list("window_end", flat=True).first()
    if last is None:
        return []
    return list(FeatureDrift.objects.filter(version=version, window_end=last))


def model_drift(user, model_id, *, number: int | None = None, history: int = HISTORY_WINDOWS) -> dict:
    """The drift of a model's production version (or version `number`) for a user who may see the model.

    Returns {model, version, available, reason, message, reference_rows, window_start,
    window_end, features (largest PSI first), history ({feature: [{window_end, psi, status}]},
    oldest first), sampled (input rows sampled in the current window), settings}. `available`
    is False with a reason when the version can have no drift (none in production, an uploaded
    file, a model without table inputs…); True with no features until a first window is computed.
    """
    from models_repo.models import VersionSource
    from models_repo.services import PRODUCTION

    model = drift_model(user, model_id)
    if number is not None:
        version = model.versions.filter(number=number).first()
        if version is None:
            raise NotFound()
    else:
        alias = next((a for a in model.aliases.all() if a.name == PRODUCTION), None)
        version = alias.version if alias is not None else None
    out = {
        "model": model,
        "version": version,
        "available": False,
        "reason": "",
        "message": "",
        "reference_rows": 0,
        "window_start": None,
        "window_end": None,
        "features": [],
        "history": {},
        "sampled": 0,
        "settings": {
            "window_hours": settings.LEPTON_DRIFT_WINDOW_HOURS,
            "min_sample": settings.LEPTON_DRIFT_MIN_SAMPLE,
            "psi_moderate": settings.LEPTON_DRIFT_PSI_MODERATE,
            "psi_significant": settings.LEPTON_DRIFT_PSI_SIGNIFICANT,
        },
    }
    if version is None:
        return {**out, "reason": NO_PRODUCTION, "message": reason_text(NO_PRODUCTION)}
    reference = DriftReference.objects.filter(version=version).only("status", "reason", "rows").first()
    if version.source == VersionSource.UPLOAD or (reference is not None and reference.status == ReferenceStatus.UNAVAILABLE):
        code = "uploaded" if version.source == VersionSource.UPLOAD else reference.reason
        return {**out, "reason": code, "message": reason_text(code)}
    out["available"] = True
    out["reference_rows"] = reference.rows if reference is not None else 0
    out["sampled"] = _sampled_now(version)
    latest = latest_drift(version)
    if not latest:
        return out
    out["window_start"], out["window_end"] = latest[0].window_start, latest[0].window_end
    out["features"] = sorted(
        (_feature(row) for row in latest), key=lambda f: (f["psi"] is None, -(f["psi"] or 0.0), f["feature"])
    )
    ends = list(
        FeatureDrift.objects.filter(version=version)
        .values_list("window_end", flat=True)
        .distinct()
        .order_by("-window_end")[:history]
    )
    points = FeatureDrift.objects.filter(version=version, window_end__gte=ends[-1]).order_by("window_end", "feature")
    for row in points.values("feature", "window_end", "psi", "status"):
        out["history"].setdefault(row["feature"], []).append(
            {"window_end": row["window_end"], "psi": row["psi"], "status": row["status"]}
        )
    return out


def _feature(row: FeatureDrift) -> dict:
    return {
        "feature": row.feature,
        "kind": row.kind,
        "status": row.status,
        "status_label": str(DriftStatus(row.status).label) if row.status in DriftStatus.values else row.status,
        "psi": row.psi,
        "ks_statistic": row.ks_statistic,
        "ks_pvalue": row.ks_pvalue,
        "sample_size": row.sample_size,
        "reason": row.reason,
        "message": reason_text(row.reason) if row.reason else "",
        "bins": row.bins,
    }


def _sampled_now(version) -> int:
    """Input rows sampled for the version in the window that ends now (the empty state counts them)."""
    from django.utils import timezone

    from models_repo.models import PredictionLog
    from monitoring.services import JsonArrayLength, window_start_for

    now = timezone.now()
    logs = PredictionLog.objects.filter(version=version, created_at__gt=window_start_for(now), created_at__lte=now)
    return logs.exclude(inputs=[]).aggregate(n=Sum(JsonArrayLength("inputs")))["n"] or 0


# --- ground truth ---------------------------------------------------------------------------


def model_by_slug(user, department: str, slug: str):
    """The registered model `department`/`slug` if the user may see it; NotFound otherwise (as predict answers)."""
    model = models_selectors.models_visible(user).filter(department__slug=department, slug=slug).first()
    if model is None:
        raise NotFound(_("No model %(model)s that you may use.") % {"model": f"{department}/{slug}"})
    return model


def model_feedback(model):
    """The feedback given for a model's predictions, newest prediction first (a list: one query per page)."""
    from monitoring.models import PredictionFeedback

    return PredictionFeedback.objects.filter(model=model).select_related("version", "created_by").order_by("-predicted_at", "-pk")


# --- prediction traffic: rollups plus the raw tail (model_traffic: alerts; model_dashboard: the model dashboard) ---

GRAIN_STEPS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
TRAFFIC_SUMS = ("requests", "rows", "errors", "errors_5xx", "latency_ms_sum", *BUCKET_FIELDS)


def _floor(at: datetime, grain: str) -> datetime:
    at = at.astimezone(UTC).replace(second=0, microsecond=0)
    if grain in ("hour", "day"):
        at = at.replace(minute=0)
    return at.replace(hour=0) if grain == "day" else at


def _ceil(at: datetime, grain: str) -> datetime:
    low = _floor(at, grain)
    return low if low == at else low + GRAIN_STEPS[grain]


def traffic_plan(since: datetime, until: datetime, done_until: dict, grains=("day", "hour", "minute")):
    """How to read [since, until) with the fewest rows: ([(grain, start, end)] of closed rollups, [(start, end)] of raw logs).

    The coarsest grain covers the whole buckets that lie inside the period and before its
    RollupState (`done_until` {grain: datetime}; a grain without one is not used); each finer
    grain covers the edges left on either side; what no closed minute covers — a partial minute
    at an edge, the tail not rolled up yet — is read from the raw logs. The pieces never overlap.
    Buckets are UTC (monitoring.rollups writes them so).
    """
    if since >= until:
        return [], []
    if not grains:
        return [], [(since, until)]
    grain, finer = grains[0], grains[1:]
    done = done_until.get(grain)
    low, high = _ceil(since, grain), _floor(until, grain)
    if done is not None:
        high = min(high, done)
    if done is None or low >= high:
        return traffic_plan(since, until, done_until, finer)
    before_rolled, before_raw = traffic_plan(since, low, done_until, finer)
    after_rolled, after_raw = traffic_plan(high, until, done_until, finer)
    return [*before_rolled, (grain, low, high), *after_rolled], [*before_raw, *after_raw]


def _rollup_states() -> dict:
    from monitoring.models import RollupState

    return dict(RollupState.objects.values_list("grain", "done_until"))


def _ranges_q(ranges, field: str, with_grain: bool = False):
    from django.db.models import Q

    q = Q(pk__in=[])
    for piece in ranges:
        grain, low, high = piece if with_grain else (None, *piece)
        term = Q(**{f"{field}__gte": low, f"{field}__lt": high})
        q |= (Q(grain=grain) & term) if with_grain else term
    return q


def _raw_sums():
    """The rollup's sums over raw PredictionLog rows (the same latency buckets as monitoring.traffic.bucket_of)."""
    from django.db.models import Q

    sums = {
        "requests": Count("pk"),
        "rows": Sum("rows"),
        "errors": Count("pk", filter=Q(status_code__gte=400)),
        "errors_5xx": Count("pk", filter=Q(status_code__gte=500)),
        "latency_ms_sum": Sum("latency_ms"),
    }
    low = None
    for bound, field in zip(LATENCY_BOUNDS_MS, BUCKET_FIELDS, strict=False):
        window = Q(latency_ms__lte=bound) if low is None else Q(latency_ms__gt=low, latency_ms__lte=bound)
        sums[field] = Count("pk", filter=window)
        low = bound
    sums["le_inf"] = Count("pk", filter=Q(latency_ms__gt=LATENCY_BOUNDS_MS[-1]))
    return sums


def _raw_logs(model_id, ranges):
    from models_repo.models import PredictionLog

    # Batch jobs' logs are not traffic (monitoring.rollups leaves them out too).
    return PredictionLog.objects.filter(_ranges_q(ranges, "created_at"), model_id=model_id).exclude(source="batch")


def _summary(total: dict) -> dict:
    requests = total.get("requests") or 0
    counts = [total.get(f) or 0 for f in BUCKET_FIELDS]
    p99 = percentile(counts, LATENCY_BOUNDS_MS, 0.99) if requests else None
    return {
        "requests": requests,
        "rows": total.get("rows") or 0,
        "errors": total.get("errors") or 0,
        "errors_5xx": total.get("errors_5xx") or 0,
        "error_rate": (total.get("errors") or 0) / requests if requests else None,
        "p99_ms": round(p99, 1) if p99 is not None else None,
        "mean_ms": (total.get("latency_ms_sum") or 0.0) / requests if requests else None,
    }


def model_traffic(model_id, since: datetime, until: datetime) -> dict:
    """A model's prediction requests in [since, until): {requests, rows, errors, errors_5xx, error_rate, p99_ms, mean_ms}.

    Read from the closed rollups, coarsest grain first (traffic_plan), plus the raw logs of what
    is not rolled up yet: a 30-day period reads a few hundred rows. `error_rate`, `p99_ms` and
    `mean_ms` are None without requests. The caller checks who may see the model (alert rules
    are a department's own; the dashboard goes through model_dashboard).
    """
    from monitoring.models import PredictionRollup

    rolled, raw = traffic_plan(since, until, _rollup_states())
    total = defaultdict(int)
    if rolled:
        found = PredictionRollup.objects.filter(_ranges_q(rolled, "bucket", True), model_id=model_id).aggregate(
            **{f: Sum(f) for f in TRAFFIC_SUMS}
        )
        for field, value in found.items():
            total[field] += value or 0
    if raw:
        for field, value in _raw_logs(model_id, raw).aggregate(**_raw_sums()).items():
            total[field] += value or 0
    return _summary(total)


# --- the model dashboard ----------------------------------------------------------------------


def _raw_outputs(logs) -> dict:
    """The served predictions of raw logs as one distribution, counted as monitoring.rollups counts a minute's."""
    from monitoring import rollups

    served = list(logs.filter(status_code__lt=400).values_list("version_id", "outputs"))
    classifiers = rollups.classifiers_of(version for version, _outputs in served)
    counts: dict = {True: defaultdict(int), False: defaultdict(int)}
    for version, outputs in served:
        rollups.count_outputs(counts[version in classifiers], outputs, version in classifiers)
    return rollups.merge_outputs(rollups.distribution(found, classes) for classes, found in counts.items())


def _display_grains(step: timedelta, start: datetime) -> tuple[str, ...]:
    """The rollup grains that fit the chart's buckets: a day row only where local days are UTC days."""
    if step == timedelta(days=1) and timezone.localtime(start).utcoffset() == timedelta(0):
        return ("day", "hour", "minute")
    return ("hour", "minute")


def model_dashboard(user, model_id, start: datetime, end: datetime) -> dict:
    """A model's prediction traffic, latency, errors, outputs, input drift and real performance over [start, end].

    For a user who may see the model (NotFound otherwise). Time buckets are hours up to two
    days, days beyond (as the other dashboards). Traffic is read as model_traffic reads it
    (closed rollups, coarsest grain that fits a bucket, plus the raw tail); performance comes
    from the feedback posted, by when the prediction was served. A fixed number of queries.

    Returns {model, step, x, totals (model_traffic's keys), requests, errors, error_rate, p50,
    p95, p99 (per bucket; None without requests), versions ({"v1": requests per bucket}, one
    per version served), outputs ({kind, counts}), performance ({kind, rows, accuracy, mae, rmse
    per bucket, and *_total}), drift (the production version's latest window)}.
    """
    from models_repo.models import ModelVersion
    from monitoring import rollups
    from monitoring.models import PredictionFeedback, PredictionRollup

    model = drift_model(user, model_id)
    trunc, step, keys = _truncate(start, end)
    until = end + timedelta(microseconds=1)  # the period includes its end
    rolled, raw = traffic_plan(start, until, _rollup_states(), _display_grains(step, start))
    per: dict = defaultdict(lambda: defaultdict(int))  # key -> field -> sum
    per_version: dict = defaultdict(lambda: defaultdict(int))  # version id -> key -> requests
    outputs: list[dict] = []
    if rolled:
        rows = PredictionRollup.objects.filter(_ranges_q(rolled, "bucket", True), model_id=model.pk).values(
            "bucket", "version_id", "outputs", *TRAFFIC_SUMS
        )
        for row in rows:
            key = _key(row["bucket"], step)
            for field in TRAFFIC_SUMS:
                per[key][field] += row[field]
            per_version[row["version_id"]][key] += row["requests"]
            outputs.append(row["outputs"])
    if raw:
        logs = _raw_logs(model.pk, raw)
        for row in logs.annotate(at=trunc("created_at")).values("at", "version_id").annotate(**_raw_sums()).order_by():
            key = _key(row["at"], step)
            for field in TRAFFIC_SUMS:
                per[key][field] += row[field] or 0
            per_version[row["version_id"]][key] += row["requests"]
        outputs.append(_raw_outputs(logs))
    out = {"model": model, "step": "hour" if step == timedelta(hours=1) else "day", "x": _iso(keys)}
    total: dict = defaultdict(int)
    for name in ("requests", "errors", "error_rate", "p50", "p95", "p99"):
        out[name] = []
    for key in keys:
        sums = per.get(key, {})
        n = sums.get("requests", 0)
        out["requests"].append(n)
        out["errors"].append(sums.get("errors", 0))
        out["error_rate"].append(round(sums.get("errors", 0) / n, 4) if n else None)
        counts = [sums.get(f, 0) for f in BUCKET_FIELDS]
        for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            value = percentile(counts, LATENCY_BOUNDS_MS, q) if n else None
            out[name].append(round(value, 1) if value is not None else None)
        for field, value in sums.items():
            total[field] += value
    out["totals"] = _summary(total)
    numbers = dict(ModelVersion.objects.filter(pk__in=list(per_version)).values_list("pk", "number"))
    out["versions"] = {
        f"v{numbers[pk]}": [counts.get(key, 0) for key in keys]
        for pk, counts in sorted(per_version.items(), key=lambda item: numbers.get(item[0], 0))
        if pk in numbers and sum(counts.values())
    }
    out["outputs"] = rollups.merge_outputs(outputs)
    out["performance"] = _performance(
        PredictionFeedback.objects.filter(model=model, predicted_at__gte=start, predicted_at__lte=end), trunc, step, keys
    )
    production = next((a.version for a in model.aliases.all() if a.name == "production"), None)
    latest = latest_drift(production) if production is not None else []
    out["drift"] = {
        "version": production.number if production is not None else None,
        "window_end": latest[0].window_end if latest else None,
        "features": sorted((_feature(r) for r in latest), key=lambda f: (f["psi"] is None, -(f["psi"] or 0.0), f["feature"])),
    }
    return out


def _performance(feedback, trunc, step, keys) -> dict:
    """Accuracy (classification) or MAE and RMSE (regression) per bucket of prediction time, from the feedback's sums."""
    from math import sqrt

    rows = (
        feedback.annotate(at=trunc("predicted_at"))
        .values("at")
        .annotate(n=Sum("rows"), correct=Sum("correct"), abs_sum=Sum("abs_error_sum"), sq_sum=Sum("squared_error_sum"))
        .order_by()
    )
    per: dict = defaultdict(lambda: defaultdict(float))
    kind = None
    for row in rows:
        key = _key(row["at"], step)
        for field in ("n", "correct", "abs_sum", "sq_sum"):
            per[key][field] += row[field] or 0
        if row["correct"] is not None:
            kind = "classification"
        elif row["abs_sum"] is not None:
            kind = kind or "regression"
    out = {"kind": kind, "rows": [], "accuracy": [], "mae": [], "rmse": []}
    total: dict = defaultdict(float)
    for key in keys:
        sums = per.get(key, {})
        n = sums.get("n", 0)
        out["rows"].append(int(n))
        classification = kind == "classification" and n
        regression = kind == "regression" and n
        out["accuracy"].append(round(sums["correct"] / n, 4) if classification else None)
        out["mae"].append(sums["abs_sum"] / n if regression else None)
        out["rmse"].append(sqrt(sums["sq_sum"] / n) if regression else None)
        for field, value in sums.items():
            total[field] += value
    n = total.get("n", 0)
    out["rows_total"] = int(n)
    out["accuracy_total"] = total["correct"] / n if kind == "classification" and n else None
    out["mae_total"] = total["abs_sum"] / n if kind == "regression" and n else None
    out["rmse_total"] = sqrt(total["sq_sum"] / n) if kind == "regression" and n else None
    return out
