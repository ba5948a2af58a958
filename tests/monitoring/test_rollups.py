"""Prediction-log rollups (monitoring.rollups): they equal the raw aggregates, close only complete
periods, are idempotent, catch a backlog up in steps, and the raw logs expire only once rolled up."""

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.db.models import Count, Q, Sum

from models_repo.models import ModelVersion, PredictionLog, RegisteredModel
from monitoring import rollups
from monitoring.figures import percentile
from monitoring.models import BUCKET_FIELDS, LATENCY_BOUNDS_MS, PredictionFeedback, PredictionRollup, RollupState

START = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)  # the logs cross a UTC day and several hours


@pytest.fixture
def versions(production):
    classifier = RegisteredModel.objects.create(department=production, slug="defects", name="Defects", task="classification")
    regressor = RegisteredModel.objects.create(department=production, slug="demand", name="Demand", task="regression")
    return (
        ModelVersion.objects.create(model=classifier, number=1, flavor="sklearn", task="classification", artifact_sha256="a"),
        ModelVersion.objects.create(model=regressor, number=1, flavor="sklearn", task="regression", artifact_sha256="b"),
    )


def _logs(versions, n=3000, span=timedelta(hours=5), seed=7) -> list[PredictionLog]:
    """Random requests over `span` from START: latencies over every bucket, some refused, a few batch entries."""
    rng = random.Random(seed)
    classifier, regressor = versions
    entries = []
    for _ in range(n):
        version = rng.choice(versions)
        status = rng.choices([200, 400, 404, 503], weights=[90, 6, 2, 2])[0]
        rows = rng.randint(1, 4) if status == 200 else 0
        if version == classifier:
            outputs = [rng.choice(["ok", "scratch", "dent"]) for _ in range(rows)]
        else:
            outputs = [round(rng.uniform(0, 2000), 3) for _ in range(rows)]
        entries.append(
            PredictionLog(
                model=version.model, version=version, created_at=START + span * rng.random(), rows=rows,
                latency_ms=rng.choice([1, 5, 7.5, 10, 30, 80, 200, 700, 1500, 4000]) * rng.uniform(0.9, 1.0),
                status_code=status, error="" if status == 200 else "invalid", outputs=outputs if status == 200 else [],
                source=rng.choice(["api", "api", "browser"]),
            )
        )  # fmt: skip
    batch_at = START + timedelta(minutes=5)
    entries.append(PredictionLog(model=regressor.model, version=regressor, created_at=batch_at, rows=10_000, source="batch"))
    return PredictionLog.objects.bulk_create(entries)


def _bucket_of(latency: float) -> str:
    for bound, field in zip(LATENCY_BOUNDS_MS, BUCKET_FIELDS, strict=False):
        if latency <= bound:
            return field
    return BUCKET_FIELDS[-1]


def _expected(logs, floor) -> dict:
    """The aggregates computed in Python from the raw entries (batch entries left out)."""
    out = defaultdict(lambda: defaultdict(float))
    for log in logs:
        if log.source == "batch":
            continue
        row = out[(floor(log.created_at), log.version_id)]
        row["requests"] += 1
        row["rows"] += log.rows
        row["errors"] += log.status_code >= 400
        row["errors_5xx"] += log.status_code >= 500
        row["latency_ms_sum"] += log.latency_ms
        row[_bucket_of(log.latency_ms)] += 1
    return out


def _actual(grain) -> dict:
    return {(r.bucket, r.version_id): r for r in PredictionRollup.objects.filter(grain=grain)}


@pytest.mark.parametrize(
    "grain, floor",
    [
        ("minute", lambda t: t.astimezone(UTC).replace(second=0, microsecond=0)),
        ("hour", lambda t: t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)),
        ("day", lambda t: t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)),
    ],
)
def test_each_grain_equals_the_raw_aggregates(versions, grain, floor):
    logs = _logs(versions)
    outcome = rollups.roll_up(now=START + timedelta(days=2), max_span=timedelta(days=3))
    assert outcome["caught_up"] and outcome["minutes"] > 0 and outcome["hours"] > 0 and outcome["days"] == 4
    expected, actual = _expected(logs, floor), _actual(grain)
    assert set(actual) == set(expected)
    for key, want in expected.items():
        got = actual[key]
        for field in ("requests", "rows", "errors", "errors_5xx", *BUCKET_FIELDS):
            assert getattr(got, field) == want[field], (grain, key, field)
        assert got.latency_ms_sum == pytest.approx(want["latency_ms_sum"])


def test_rollup_percentiles_and_totals_equal_a_direct_aggregate_over_the_raw_table(versions):
    _logs(versions)
    rollups.roll_up(now=START + timedelta(days=2), max_span=timedelta(days=3))
    classifier = versions[0]
    raw = PredictionLog.objects.filter(version=classifier).exclude(source="batch")
    direct = raw.aggregate(n=Count("id"), errors=Count("id", filter=Q(status_code__gte=400)), rows=Sum("rows"))
    days = PredictionRollup.objects.filter(grain="day", version=classifier)
    assert sum(d.requests for d in days) == direct["n"]
    assert sum(d.errors for d in days) == direct["errors"]
    assert sum(d.rows for d in days) == direct["rows"]
    counts = [sum(getattr(d, f) for d in days) for f in BUCKET_FIELDS]
    direct_counts = Counter(_bucket_of(v) for v in raw.values_list("latency_ms", flat=True))
    assert counts == [direct_counts[f] for f in BUCKET_FIELDS]
    assert percentile(counts, LATENCY_BOUNDS_MS, 0.99) is not None


def test_the_output_distributions_count_labels_and_rounded_numbers(versions):
    logs = _logs(versions)
    rollups.roll_up(now=START + timedelta(days=2), max_span=timedelta(days=3))
    classifier, regressor = versions
    served = [log for log in logs if log.status_code < 400 and log.source != "batch"]
    labels = Counter(label for log in served if log.version_id == classifier.pk for label in log.outputs)
    numbers = Counter(f"{value:.2g}" for log in served if log.version_id == regressor.pk for value in log.outputs)
    for version, want, kind in ((classifier, labels, "classes"), (regressor, numbers, "numbers")):
        days = PredictionRollup.objects.filter(grain="day", version=version).values_list("outputs", flat=True)
        merged = rollups.merge_outputs(days)
        assert merged["kind"] == kind and merged["counts"] == dict(want)


def test_an_open_minute_waits_for_the_grace_and_a_second_run_changes_nothing(versions, settings):
    settings.LEPTON_PREDICTION_LOG_FLUSH_SECONDS = 5.0
    classifier = versions[0]
    at = START + timedelta(minutes=10, seconds=30)
    PredictionLog.objects.create(model=classifier.model, version=classifier, created_at=at, outputs=["ok"])
    rollups.roll_up(now=START + timedelta(minutes=11, seconds=30))  # the minute ended 30 s ago: still open
    assert not PredictionRollup.objects.filter(grain="minute", bucket=START + timedelta(minutes=10)).exists()
    assert RollupState.objects.get(grain="minute").done_until <= START + timedelta(minutes=10)

    rollups.roll_up(now=START + timedelta(minutes=13))
    first = list(PredictionRollup.objects.filter(grain="minute").values_list("bucket", "version", "requests", "outputs"))
    assert first == [(START + timedelta(minutes=10), classifier.pk, 1, {"kind": "classes", "counts": {"ok": 1}})]
    rollups.roll_up(now=START + timedelta(minutes=13))
    again = list(PredictionRollup.objects.filter(grain="minute").values_list("bucket", "version", "requests", "outputs"))
    assert again == first


def test_a_backlog_is_caught_up_in_steps(versions):
    logs = _logs(versions, n=600, span=timedelta(hours=30))
    now = START + timedelta(hours=31)
    runs = 0
    while True:
        runs += 1
        outcome = rollups.roll_up(now=now, max_span=timedelta(hours=6))
        if outcome["caught_up"]:
            break
        assert runs < 10
    assert runs == 6  # 30 hours and a bit, six hours at a time
    hours = _actual("hour")
    expected = _expected(logs, lambda t: t.astimezone(UTC).replace(minute=0, second=0, microsecond=0))
    closed = now.replace(minute=0)
    assert {k: r.requests for k, r in hours.items()} == {k: v["requests"] for k, v in expected.items() if k[0] < closed}


def test_no_logs_at_all_sets_the_state_and_rolls_nothing(db):
    outcome = rollups.roll_up(now=START)
    assert outcome == {"minutes": 0, "hours": 0, "days": 0, "caught_up": True}
    assert RollupState.objects.get(grain="minute").done_until == START - timedelta(minutes=2)


def test_raw_logs_expire_after_the_retention_only_once_rolled_up_and_feedback_keeps_its_scores(versions, settings):
    settings.LEPTON_PREDICTION_LOG_RETENTION_DAYS = 30
    classifier = versions[0]
    old = START - timedelta(days=40)
    kept_log = PredictionLog.objects.create(model=classifier.model, version=classifier, created_at=START, outputs=["ok"])
    old_log = PredictionLog.objects.create(model=classifier.model, version=classifier, created_at=old, outputs=["ok"])
    feedback = PredictionFeedback.objects.create(
        prediction_id=old_log.prediction_id, log=old_log, model=classifier.model, version=classifier,
        predicted_at=old, actual=["ok"], rows=1, correct=1,
    )  # fmt: skip
    # Not rolled up yet: nothing goes, however old.
    assert rollups.expire_logs(now=START + timedelta(days=1)) == {"deleted": 0}
    rollups.roll_up(now=START - timedelta(days=35))
    assert rollups.expire_logs(now=START + timedelta(days=1)) == {"deleted": 1}
    assert list(PredictionLog.objects.all()) == [kept_log]
    feedback.refresh_from_db()
    assert feedback.log is None and feedback.correct == 1
    day = old.replace(hour=0, minute=0, second=0, microsecond=0)
    assert PredictionRollup.objects.get(grain="day", bucket=day).requests == 1


def test_roll_up_and_expiry_are_in_the_periodic_schedule():
    paths = dict(django_settings.LEPTON_PERIODIC_TASKS)
    assert paths["monitoring.rollups.roll_up"] <= 60 and "monitoring.rollups.expire_logs" in paths


def test_the_department_dashboard_counts_each_production_models_rows_from_rollups_and_the_open_tail(versions, production, owner):
    from models_repo.models import ModelAlias
    from monitoring import selectors

    classifier, regressor = versions
    for version in versions:
        ModelAlias.objects.create(model=version.model, name="production", version=version)
    now = START + timedelta(hours=3)
    PredictionLog.objects.bulk_create(
        [
            PredictionLog(model=classifier.model, version=classifier, created_at=START + timedelta(minutes=m), rows=2)
            for m in range(0, 150, 10)
        ]  # 15 requests of 2 rows: rolled up below
        + [PredictionLog(model=classifier.model, version=classifier, created_at=now - timedelta(seconds=20), rows=5)]
        + [PredictionLog(model=regressor.model, version=regressor, created_at=START, rows=7, source="batch")]
    )
    rollups.roll_up(now=now, max_span=timedelta(days=1))
    assert PredictionRollup.objects.filter(grain="hour", version=classifier).exists()
    answer = selectors.department(production, START - timedelta(days=1), now)
    counts = {row["alias"].model_id: row["predictions"] for row in answer["models"]}
    assert counts == {classifier.model_id: 15 * 2 + 5, regressor.model_id: 0}  # batch jobs are not requests
