"""Quality checks on real Parquet files (no database)."""

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datalake.engine.checks import CheckSpecError, blocking_failures, run_checks, validate_check


@pytest.fixture
def batch_file(tmp_path):
    table = pa.table(
        {
            "batch": ["B000001", "B000002", "B000002", "X12", None],
            "温度": [70.5, 71.0, 250.0, -50.0, 69.0],
            "status": ["ok", "ok", "fail", "broken", "ok"],
            "at": pa.array([datetime(2026, 11, 20, h) for h in range(5)], pa.timestamp("us")),
        }
    )
    path = tmp_path / "batches.parquet"
    pq.write_table(table, path)
    return str(path)


NOW = datetime(2026, 11, 21, 4, tzinfo=UTC)


def _one(path, spec):
    return run_checks(path, [spec], now=NOW)[0]


def test_not_null(batch_file):
    r = _one(batch_file, {"type": "not_null", "column": "batch"})
    assert (r.passed, r.failing_rows) == (False, 1)
    assert r.message == "batch: 1 of 5 rows is missing a value."
    assert _one(batch_file, {"type": "not_null", "column": "status"}).passed


def test_unique_single_and_compound(batch_file):
    r = _one(batch_file, {"type": "unique", "columns": ["batch"]})
    assert not r.passed and r.failing_rows == 2 and r.sample == ["B000002"]
    assert _one(batch_file, {"type": "unique", "columns": ["batch", "status"]}).passed


def test_range_reports_values_outside(batch_file):
    r = _one(batch_file, {"type": "range", "column": "温度", "min": -40, "max": 200})
    assert not r.passed and r.failing_rows == 2 and sorted(r.sample) == [-50.0, 250.0]
    assert _one(batch_file, {"type": "range", "column": "温度", "min": -60}).passed


def test_allowed_values_and_regex(batch_file):
    r = _one(batch_file, {"type": "allowed_values", "column": "status", "values": ["ok", "fail"]})
    assert (r.passed, r.failing_rows, r.sample) == (False, 1, ["broken"])
    r = _one(batch_file, {"type": "regex", "column": "batch", "pattern": "^B[0-9]{6}$"})
    assert (r.passed, r.sample) == (False, ["X12"])


def test_row_count_schema_and_freshness(batch_file):
    assert _one(batch_file, {"type": "row_count", "min": 5, "max": 5}).passed
    assert not _one(batch_file, {"type": "row_count", "min": 10}).passed
    assert _one(batch_file, {"type": "schema", "columns": {"温度": "numeric", "status": "text"}}).passed
    broken = _one(batch_file, {"type": "schema", "columns": {"温度": "text", "gone": "numeric"}})
    assert not broken.passed and "gone: missing" in broken.message and "温度: numeric, expected text" in broken.message
    assert _one(batch_file, {"type": "freshness", "column": "at", "max_age_hours": 24}).passed
    stale = _one(batch_file, {"type": "freshness", "column": "at", "max_age_hours": 1})
    assert not stale.passed and "more than 1 h" in stale.message


def test_blocking_failures_stop_publication(batch_file):
    results = run_checks(
        batch_file,
        [
            {"type": "not_null", "column": "batch", "blocking": True},
            {"type": "row_count", "min": 1, "blocking": True},
            {"type": "allowed_values", "column": "status", "values": ["ok"]},
        ],
        now=NOW,
    )
    assert [r.check["type"] for r in blocking_failures(results)] == ["not_null"]
    assert all(isinstance(r.as_dict()["message"], str) for r in results)


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"type": "nope"}, "type"),
        ({"type": "not_null", "column": "missing"}, "column"),
        ({"type": "unique", "columns": []}, "columns"),
        ({"type": "range", "column": "温度"}, "min"),
        ({"type": "range", "column": "温度", "min": 5, "max": 1}, "max"),
        ({"type": "regex", "column": "batch", "pattern": "(["}, "pattern"),
        ({"type": "row_count", "min": -1}, "min"),
        ({"type": "schema", "columns": {"温度": "float"}}, "columns"),
        ({"type": "freshness", "column": "status", "max_age_hours": 1}, "column"),
        ({"type": "freshness", "column": "at", "max_age_hours": 0}, "max_age_hours"),
    ],
)
def test_invalid_checks_are_refused_naming_the_field(spec, field):
    columns = {"batch": "VARCHAR", "温度": "DOUBLE", "status": "VARCHAR", "at": "TIMESTAMP"}
    with pytest.raises(CheckSpecError) as err:
        validate_check(spec, columns)
    assert field in err.value.fields


def test_sql_injection_through_values_is_inert(batch_file):
    r = _one(batch_file, {"type": "allowed_values", "column": "status", "values": ["ok'); DROP TABLE x; --"]})
    assert not r.passed and r.failing_rows == 5  # every status is "not allowed"; nothing was executed


def test_without_columns_only_the_shape_is_checked():
    assert validate_check({"type": "not_null", "column": "later"}, None)["column"] == "later"
    with pytest.raises(CheckSpecError) as err:
        validate_check({"type": "not_null"}, None)
    assert "column" in err.value.fields
