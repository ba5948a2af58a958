"""monitoring.selectors.model_traffic: the read plan over rollup grains, and the totals it reads (rollups plus the raw tail)."""

from datetime import UTC, datetime, timedelta

import pytest

from models_repo.models import PredictionLog
from monitoring.models import PredictionRollup, RollupState
from monitoring.selectors import model_traffic, traffic_plan
from tests.monitoring.alerts import production_model

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _covers_exactly(since, until, rolled, raw):
    pieces = sorted([(lo, hi) for _g, lo, hi in rolled] + list(raw))
    assert pieces[0][0] == since and pieces[-1][1] == until
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))  # no gap, no overlap


def test_a_long_period_reads_days_inside_hours_and_minutes_at_the_edges_and_raw_logs_for_the_tail():
    since = T0 + timedelta(hours=5, minutes=17, seconds=20)
    until = T0 + timedelta(days=30, hours=3, minutes=41, seconds=5)
    done = {"day": T0 + timedelta(days=30), "hour": T0 + timedelta(days=30, hours=3), "minute": until - timedelta(seconds=65)}
    rolled, raw = traffic_plan(since, until, done)
    _covers_exactly(since, until, rolled, raw)
    grains = [g for g, _lo, _hi in rolled]
    assert grains == ["minute", "hour", "day", "hour", "minute"]
    assert rolled[2] == ("day", T0 + timedelta(days=1), T0 + timedelta(days=30))
    assert rolled[1] == ("hour", T0 + timedelta(hours=6), T0 + timedelta(days=1))
    assert rolled[0] == ("minute", T0 + timedelta(hours=5, minutes=18), T0 + timedelta(hours=6))
    # the first partial minute and everything after the last closed minute come from the raw logs
    assert raw == [(since, T0 + timedelta(hours=5, minutes=18)), (T0 + timedelta(days=30, hours=3, minutes=40), until)]
    assert rolled[3] == ("hour", T0 + timedelta(days=30), T0 + timedelta(days=30, hours=3))
    assert rolled[4] == ("minute", T0 + timedelta(days=30, hours=3), T0 + timedelta(days=30, hours=3, minutes=40))


def test_without_any_rollup_state_everything_is_raw_and_an_empty_period_reads_nothing():
    since, until = T0, T0 + timedelta(days=3)
    assert traffic_plan(since, until, {}) == ([], [(since, until)])
    assert traffic_plan(until, since, {"minute": until}) == ([], [])


@pytest.mark.parametrize("minutes_done", [0, 7, 60 * 24 * 3])
def test_any_state_gives_pieces_that_cover_the_period_once(minutes_done):
    since, until = T0 + timedelta(minutes=3, seconds=1), T0 + timedelta(days=2, hours=4, seconds=9)
    minute = T0 + timedelta(minutes=minutes_done)
    done = {"minute": minute, "hour": T0 + timedelta(hours=minutes_done // 60), "day": T0 + timedelta(days=minutes_done // 1440)}
    rolled, raw = traffic_plan(since, until, done)
    _covers_exactly(since, until, rolled, raw)
    assert all(hi <= done[g] for g, _lo, hi in rolled)


def _log(model, version, at, *, latency=20.0, status=200, source="api"):
    return PredictionLog(
        model=model, version=version, created_at=at, latency_ms=latency, status_code=status, source=source,
        rows=1 if status < 400 else 0,
    )  # fmt: skip


def test_totals_add_closed_rollups_and_raw_logs_after_them_and_leave_batch_jobs_out(owner, production):
    model, version = production_model(owner, production)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    done = now - timedelta(minutes=5)
    for grain, until in (("minute", done), ("hour", done.replace(minute=0)), ("day", done.replace(hour=0, minute=0))):
        RollupState.objects.create(grain=grain, done_until=until)
    PredictionRollup.objects.create(
        grain="minute", bucket=done - timedelta(minutes=1), model=model, version=version, requests=10, rows=10, errors=1,
        errors_5xx=1, latency_ms_sum=200.0, le_25=10,
    )  # fmt: skip
    PredictionLog.objects.bulk_create(
        [
            _log(model, version, done - timedelta(seconds=30)),  # rolled up already: the rollup row counts it
            _log(model, version, done + timedelta(seconds=5), latency=3000.0),
            _log(model, version, done + timedelta(seconds=6), status=400),
            _log(model, version, done + timedelta(seconds=7), source="batch"),
        ]
    )
    found = model_traffic(model.pk, done - timedelta(minutes=10), now)
    assert (found["requests"], found["errors"], found["errors_5xx"], found["rows"]) == (12, 2, 1, 11)
    assert found["error_rate"] == pytest.approx(2 / 12)
    assert found["p99_ms"] == 2500.0  # the open last bucket answers its lower bound


def test_no_requests_give_no_rate_and_no_latency(owner, production):
    model, _version = production_model(owner, production)
    found = model_traffic(model.pk, T0, T0 + timedelta(days=1))
    assert (found["requests"], found["error_rate"], found["p99_ms"]) == (0, None, None)
