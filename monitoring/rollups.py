"""Per-minute, hour and day rollups of the prediction logs, and the raw logs' retention (periodic work).

`roll_up` (settings.LEPTON_PERIODIC_TASKS, every minute) closes what is complete:

- a minute once it ended more than GRACE ago (a web process writes its logs in batches, at most
  LEPTON_PREDICTION_LOG_FLUSH_SECONDS after each request), recomputed from the raw
  models_repo.PredictionLog rows of that minute;
- an hour once its sixty minutes are closed, summed from their minute rows;
- a day (UTC) once its hours are closed, summed from its hour rows.

Each grain's RollupState says up to where its buckets are final; a run recomputes the buckets
after it (deleting and writing their rows in one transaction), so running twice over the same
period gives the same rows. A run covers at most MAX_SPAN of minutes, so a backlog (a first run
over old logs, a dispatcher that was down) is caught up over several runs without holding the
dispatcher loop; the result says whether it is caught up. Batch-prediction logs (source
"batch": one entry per job) are jobs, not requests: they are not rolled up.

`expire_logs` deletes raw logs older than LEPTON_PREDICTION_LOG_RETENTION_DAYS that are rolled up;
the rollups (and the feedback scores) stay.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import TruncDay, TruncHour, TruncMinute
from django.utils import timezone

from monitoring.models import BUCKET_FIELDS, LATENCY_BOUNDS_MS, Grain, PredictionRollup, RollupState

MAX_SPAN = timedelta(days=1)
MAX_CLASSES = 50  # labels counted per bucket in a classifier's output distribution; the rest go to OTHER
OTHER = "…"
SUMMED = ("requests", "rows", "errors", "errors_5xx", "latency_ms_sum", *BUCKET_FIELDS)
EXPIRE_BATCH = 5000
LOCK_KEY = 0x4C65_7074  # "Lept": one roll-up at a time on PostgreSQL


def grace() -> timedelta:
    return timedelta(seconds=60 + 2 * float(settings.LEPTON_PREDICTION_LOG_FLUSH_SECONDS))


def _floor(at: datetime, grain: str) -> datetime:
    at = at.astimezone(UTC).replace(second=0, microsecond=0)
    if grain in (Grain.HOUR, Grain.DAY):
        at = at.replace(minute=0)
    if grain == Grain.DAY:
        at = at.replace(hour=0)
    return at


def _logs():
    from models_repo.models import PredictionLog

    return PredictionLog.objects.exclude(source="batch")


def _latency_counts() -> dict:
    """Count expressions of the latency buckets (each counts the values above the previous bound)."""
    counts, low = {}, None
    for bound, field in zip(LATENCY_BOUNDS_MS, BUCKET_FIELDS, strict=False):
        within = Q(latency_ms__lte=bound) if low is None else Q(latency_ms__gt=low, latency_ms__lte=bound)
        counts[field] = Count("id", filter=within)
        low = bound
    counts[BUCKET_FIELDS[-1]] = Count("id", filter=Q(latency_ms__gt=low))
    return counts


def output_key(value, classes: bool) -> str | None:
    """The distribution key of one prediction: its label for a classifier, two significant digits otherwise."""
    if isinstance(value, dict):  # image classifiers answer {"label": …, "probabilities": …}
        value = value.get("label", value.get("prediction"))
    if value is None:
        return None
    if classes or isinstance(value, str | bool):
        return str(value)
    try:
        return f"{float(value):.2g}"
    except (TypeError, ValueError):
        return str(value)


def count_outputs(counts: dict, outputs, classes: bool) -> None:
    for value in outputs if isinstance(outputs, list) else [outputs]:
        for item in value if isinstance(value, list) else [value]:  # a forecast is a list per row
            key = output_key(item, classes)
            if key is not None:
                counts[key] += 1


def distribution(counts: dict, classes: bool) -> dict:
    if not counts:
        return {}
    if classes and len(counts) > MAX_CLASSES:
        top = sorted(counts.items(), key=lambda kv: -kv[1])
        kept = dict(top[: MAX_CLASSES - 1])
        kept[OTHER] = sum(n for _, n in top[MAX_CLASSES - 1 :])
        counts = kept
    return {"kind": "classes" if classes else "numbers", "counts": dict(counts)}


def merge_outputs(distributions) -> dict:
    """One distribution from several buckets' `outputs` (used by the coarser grains and the dashboards)."""
    counts: dict = defaultdict(int)
    kind = ""
    for dist in distributions:
        if not dist:
            continue
        kind = kind or dist.get("kind", "")
        for key, n in dist.get("counts", {}).items():
            counts[key] += n
    return distribution(counts, kind == "classes") if kind else {}


def classifiers_of(version_ids) -> set:
    from models_repo.models import ModelVersion

    rows = ModelVersion.objects.filter(pk__in=set(version_ids)).values_list("pk", "task", "output")
    return {pk for pk, task, output in rows if "classification" in (task or (output or {}).get("task", ""))}


def _minutes(start: datetime, end: datetime) -> list[PredictionRollup]:
    logs = _logs().filter(created_at__gte=start, created_at__lt=end)
    rows = (
        logs.annotate(bucket=TruncMinute("created_at", tzinfo=UTC))
        .values("bucket", "model_id", "version_id")
        .annotate(
            requests=Count("id"),
            rows_sum=Sum("rows"),
            errors=Count("id", filter=Q(status_code__gte=400)),
            errors_5xx=Count("id", filter=Q(status_code__gte=500)),
            latency_ms_sum=Sum("latency_ms"),
            **_latency_counts(),
        )
        .order_by()
    )
    rollups = {}
    for row in rows:
        key = (_floor(row["bucket"], Grain.MINUTE), row["version_id"])
        rollups[key] = PredictionRollup(
            grain=Grain.MINUTE, bucket=key[0], model_id=row["model_id"], version_id=row["version_id"],
            rows=row["rows_sum"] or 0, latency_ms_sum=row["latency_ms_sum"] or 0.0,
            **{f: row[f] for f in ("requests", "errors", "errors_5xx", *BUCKET_FIELDS)},
        )  # fmt: skip
    if rollups:
        classifiers = classifiers_of(version for _, version in rollups)
        counts: dict = defaultdict(lambda: defaultdict(int))
        served = logs.filter(status_code__lt=400).values_list("created_at", "version_id", "outputs")
        for created_at, version_id, outputs in served.iterator(chunk_size=5000):
            count_outputs(counts[(_floor(created_at, Grain.MINUTE), version_id)], outputs, version_id in classifiers)
        for key, found in counts.items():
            if key in rollups:
                rollups[key].outputs = distribution(found, key[1] in classifiers)
    return list(rollups.values())


def _coarser(grain: str, finer: str, start: datetime, end: datetime) -> list[PredictionRollup]:
    trunc = TruncHour if grain == Grain.HOUR else TruncDay
    source = PredictionRollup.objects.filter(grain=finer, bucket__gte=start, bucket__lt=end)
    sums = (
        source.annotate(coarse=trunc("bucket", tzinfo=UTC))
        .values("coarse", "model_id", "version_id")
        .annotate(**{f"{f}_sum": Sum(f) for f in SUMMED})
        .order_by()
    )
    rollups = {}
    for row in sums:
        key = (_floor(row["coarse"], grain), row["version_id"])
        rollups[key] = PredictionRollup(
            grain=grain, bucket=key[0], model_id=row["model_id"], version_id=row["version_id"],
            **{f: row[f"{f}_sum"] or 0 for f in SUMMED},
        )  # fmt: skip
    outputs = defaultdict(list)
    for bucket, version_id, dist in source.exclude(outputs={}).values_list("bucket", "version_id", "outputs"):
        outputs[(_floor(bucket, grain), version_id)].append(dist)
    for key, dists in outputs.items():
        if key in rollups:
            rollups[key].outputs = merge_outputs(dists)
    return list(rollups.values())


def _state(grain: str) -> RollupState | None:
    return RollupState.objects.filter(grain=grain).first()


def _advance(grain: str, start: datetime, end: datetime, rollups: list[PredictionRollup]) -> None:
    PredictionRollup.objects.filter(grain=grain, bucket__gte=start, bucket__lt=end).delete()
    PredictionRollup.objects.bulk_create(rollups, batch_size=2000)
    RollupState.objects.update_or_create(grain=grain, defaults={"done_until": end})


def roll_up(now: datetime | None = None, max_span: timedelta = MAX_SPAN) -> dict:
    """Close the complete minutes, hours and days; {"minutes", "hours", "days": rows written, "caught_up"}."""
    now = now or timezone.now()
    closed = _floor(now - grace(), Grain.MINUTE)
    with transaction.atomic():
        if connection.vendor == "postgresql":  # one roll-up at a time (a second dispatcher waits)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        outcome = {"minutes": 0, "hours": 0, "days": 0}

        state = _state(Grain.MINUTE)
        if state is None:
            first = _logs().aggregate(first=Min("created_at"))["first"]
            start = _floor(first, Grain.MINUTE) if first else closed
        else:
            start = state.done_until
        end = min(closed, start + max_span)
        if end > start or state is None:
            end = max(end, start)
            rollups = _minutes(start, end)
            _advance(Grain.MINUTE, start, end, rollups)
            outcome["minutes"] = len(rollups)
        minutes_done = end
        outcome["caught_up"] = end >= closed

        for grain, finer, done in ((Grain.HOUR, Grain.MINUTE, minutes_done), (Grain.DAY, Grain.HOUR, None)):
            if done is None:
                done = _state(Grain.HOUR).done_until
            state = _state(grain)
            if state is None:
                first = PredictionRollup.objects.filter(grain=finer).aggregate(first=Min("bucket"))["first"]
                start = _floor(first, grain) if first else _floor(done, grain)
            else:
                start = state.done_until
            end = _floor(done, grain)
            if end > start or state is None:
                end = max(end, start)
                rollups = _coarser(grain, finer, start, end)
                _advance(grain, start, end, rollups)
                outcome[{"hour": "hours", "day": "days"}[grain]] = len(rollups)
    return outcome


def expire_logs(now: datetime | None = None) -> dict:
    """Delete raw prediction logs past LEPTON_PREDICTION_LOG_RETENTION_DAYS that are rolled up; {"deleted": n}."""
    from models_repo.models import PredictionLog

    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.LEPTON_PREDICTION_LOG_RETENTION_DAYS)
    state = _state(Grain.MINUTE)
    rolled = state.done_until if state else None
    old = PredictionLog.objects.filter(created_at__lt=cutoff)
    # Batch logs are never rolled up; request logs only go once their minute is.
    old = old.filter(Q(source="batch") | Q(created_at__lt=rolled)) if rolled else old.filter(source="batch")
    deleted = 0
    while True:
        ids = list(old.order_by().values_list("pk", flat=True)[:EXPIRE_BATCH])
        if not ids:
            return {"deleted": deleted}
        with transaction.atomic():
            PredictionLog.objects.filter(pk__in=ids).delete()  # feedback keeps its scores (log set to null)
        deleted += len(ids)
