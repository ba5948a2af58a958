"""The dashboards' figure builders and the percentile of bucketed latencies (pure, no database)."""

import numpy as np
import pytest

from monitoring import figures
from monitoring.models import LATENCY_BOUNDS_MS


def _buckets(values):
    counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    for v in values:
        k = next((i for i, bound in enumerate(LATENCY_BOUNDS_MS) if v <= bound), len(LATENCY_BOUNDS_MS))
        counts[k] += 1
    return counts


@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_percentile_of_buckets_lies_in_the_bucket_of_the_true_percentile(q):
    values = np.random.default_rng(3).lognormal(mean=3.0, sigma=1.0, size=5000)
    estimate = figures.percentile(_buckets(values), LATENCY_BOUNDS_MS, q)
    true = float(np.quantile(values, q))
    bounds = (0, *LATENCY_BOUNDS_MS)
    k = next(i for i, bound in enumerate(LATENCY_BOUNDS_MS) if true <= bound)
    assert bounds[k] <= estimate <= bounds[k + 1]


def test_percentile_is_exact_at_bucket_edges_and_none_without_values():
    assert figures.percentile([0] * 10, LATENCY_BOUNDS_MS, 0.5) is None
    counts = [10, 10] + [0] * 8  # ten values ≤ 5 ms, ten in (5, 10]
    assert figures.percentile(counts, LATENCY_BOUNDS_MS, 0.5) == pytest.approx(5.0)
    assert figures.percentile(counts, LATENCY_BOUNDS_MS, 1.0) == pytest.approx(10.0)
    slow = [0] * 9 + [4]  # all slower than the last bound: the open bucket answers its lower bound
    assert figures.percentile(slow, LATENCY_BOUNDS_MS, 0.99) == LATENCY_BOUNDS_MS[-1]


def test_usage_bars_colour_by_share_of_the_limit():
    fig = figures.usage_bars("q", "Quotas", ["A", "B", "C", "D"], [10, 85, 120, 0], [100, 100, 100, 0], "min")
    bar = fig["figure"]["data"][0]
    assert bar["x"] == [0.1, 0.85, 1.2, 0.0]
    assert bar["marker"]["color"] == [figures.GREEN, figures.AMBER, figures.RED, figures.GREEN]
    assert bar["text"][1] == "85 / 100 min"


def test_time_series_stacks_bars_and_keeps_gaps():
    fig = figures.time_series("t", "Jobs", ["2026-12-01", "2026-12-02"], [("ok", [1, None]), ("failed", [0, 2])],
                              bars=True, stacked=True)  # fmt: skip
    assert fig["id"] == "t" and fig["figure"]["layout"]["barmode"] == "stack"
    assert [trace["y"] for trace in fig["figure"]["data"]] == [[1, None], [0, 2]]
    line = figures.time_series("l", "Latency", ["x"], [("p99", [3.0])], y_format=".1%")
    assert line["figure"]["data"][0]["type"] == "scatter" and line["figure"]["layout"]["yaxis"]["tickformat"] == ".1%"


def test_histogram_puts_bars_between_edges():
    fig = figures.histogram("h", "temperature", [0, 10, 20], [3, 5])
    bar = fig["figure"]["data"][0]
    assert bar["x"] == [5, 15] and bar["width"] == [10, 10] and bar["y"] == [3, 5]


def test_distribution_orders_classes_by_count_and_numbers_by_value():
    classes = figures.distribution("d", "Predictions", {"kind": "classes", "counts": {"no": 3, "yes": 9, "maybe": 3}})
    assert classes["figure"]["data"][0]["x"] == ["yes", "maybe", "no"] and classes["figure"]["data"][0]["y"] == [9, 3, 3]
    assert classes["figure"]["layout"]["xaxis"]["type"] == "category"
    numbers = figures.distribution("n", "Predictions", {"kind": "numbers", "counts": {"1.2e+03": 2, "-5": 1, "3.4": 7}})
    assert numbers["figure"]["data"][0]["x"] == [-5.0, 3.4, 1200.0] and numbers["figure"]["data"][0]["y"] == [1, 7, 2]
    assert figures.distribution("e", "Predictions", {}) is None
    assert figures.distribution("e", "Predictions", {"kind": "classes", "counts": {}}) is None


NAMES = {"accuracy": "accuracy", "mae": "MAE", "rmse": "RMSE", "rows": "rows"}


def test_performance_draws_accuracy_or_errors_with_the_rows_scored_on_a_second_axis():
    x = ["2026-03-01T00:00:00+00:00", "2026-03-02T00:00:00+00:00"]
    accuracy = figures.performance(
        "p", "Real", x, {"kind": "classification", "accuracy": [0.5, None], "mae": [None, None], "rmse": [None, None],
                         "rows": [4, 0]}, NAMES,
    )  # fmt: skip
    data = accuracy["figure"]["data"]
    assert [d["name"] for d in data] == ["accuracy", "rows"] and data[0]["y"] == [0.5, None] and data[1]["yaxis"] == "y2"
    assert accuracy["figure"]["layout"]["yaxis"]["tickformat"] == ".0%"
    errors = figures.performance(
        "p", "Real", x, {"kind": "regression", "accuracy": [None, None], "mae": [2.0, 1.0], "rmse": [3.0, 1.5],
                         "rows": [4, 2]}, NAMES,
    )  # fmt: skip
    assert [d["name"] for d in errors["figure"]["data"]] == ["MAE", "RMSE", "rows"]
    empty = {"kind": None, "accuracy": [None], "mae": [None], "rmse": [None], "rows": [0]}
    assert figures.performance("p", "Real", x[:1], empty, NAMES) is None
