"""The profile engine on real Parquet files (no database)."""

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datalake.engine.profile import HISTOGRAM_BINS, profile_parquet


@pytest.fixture
def sensor_file(tmp_path):
    rng = np.random.default_rng(7)
    n = 10_000
    temperature = rng.normal(70, 5, n)
    temperature[:100] = np.nan  # becomes null below
    table = pa.table(
        {
            "温度": pa.array([None if math.isnan(t) else float(t) for t in temperature]),
            "machine id": pa.array([f"M{i % 4}" for i in range(n)]),
            "rpm": pa.array(rng.integers(1000, 3000, n)),
            "ok": pa.array([i % 10 != 0 for i in range(n)]),
            "at": pa.array(np.arange("2024-01-01", n, dtype="datetime64[m]").astype("datetime64[us]")),
            'odd "name"': pa.array([7] * n),
        }
    )
    path = tmp_path / "sensor.parquet"
    pq.write_table(table, path)
    return path, table


def test_profile_numeric_column_matches_numpy(sensor_file):
    path, table = sensor_file
    profile = profile_parquet(str(path))
    assert profile.rows == 10_000
    temp = next(c for c in profile.columns if c.name == "温度")
    values = np.array([v for v in table["温度"].to_pylist() if v is not None])
    assert (temp.kind, temp.nulls, temp.count) == ("numeric", 100, 10_000)
    assert temp.mean == pytest.approx(values.mean(), rel=1e-9)
    assert temp.std == pytest.approx(values.std(ddof=1), rel=1e-9)
    assert temp.min == pytest.approx(values.min()) and temp.max == pytest.approx(values.max())
    assert temp.quantiles["p50"] == pytest.approx(np.median(values), abs=0.5)
    assert sum(temp.histogram["counts"]) == len(values)
    assert len(temp.histogram["counts"]) == HISTOGRAM_BINS and len(temp.histogram["edges"]) == HISTOGRAM_BINS + 1
    assert temp.null_fraction == pytest.approx(0.01)


def test_profile_text_boolean_and_time_columns(sensor_file):
    path, _ = sensor_file
    columns = {c.name: c for c in profile_parquet(str(path)).columns}
    machine = columns["machine id"]
    assert machine.kind == "text" and machine.distinct == 4
    assert [t["count"] for t in machine.top_values] == [2500] * 4
    ok = columns["ok"]
    assert ok.kind == "boolean"
    assert {t["value"]: t["count"] for t in ok.top_values} == {"true": 9000, "false": 1000}
    at = columns["at"]
    assert at.kind == "temporal" and str(at.min).startswith("2024-01-01")


def test_constant_column_and_awkward_names(sensor_file):
    path, _ = sensor_file
    odd = next(c for c in profile_parquet(str(path)).columns if c.name == 'odd "name"')
    assert odd.distinct == 1 and odd.std == 0.0
    assert odd.histogram == {"edges": [7.0, 7.0], "counts": [10_000]}


def test_profile_is_json_ready(sensor_file):
    import json

    path, _ = sensor_file
    data = profile_parquet(str(path)).as_dict()
    text = json.dumps(data, ensure_ascii=False)
    assert "温度" in text and data["columns"][0]["null_fraction"] == pytest.approx(0.01)


def test_empty_file_profiles_to_zero_rows(tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"a": pa.array([], pa.int64()), "b": pa.array([], pa.string())}), path)
    profile = profile_parquet(str(path))
    assert profile.rows == 0
    assert [c.nulls for c in profile.columns] == [0, 0]
    assert profile.columns[0].histogram is None and profile.columns[1].top_values == []
