"""Version diff from real profiles."""

import pyarrow as pa
import pyarrow.parquet as pq

from datalake.engine.diff import version_diff
from datalake.engine.profile import profile_parquet


def _version(tmp_path, name, table):
    path = tmp_path / f"{name}.parquet"
    pq.write_table(table, path)
    profile = profile_parquet(str(path)).as_dict()
    return {"rows": profile["rows"], "profile": profile}


def test_diff_reports_schema_changes_rows_and_shifts(tmp_path):
    old = _version(tmp_path, "old", pa.table({"温度": [70.0, 71.0, 69.0, 70.5], "id": [1, 2, 3, 4], "gone": ["a"] * 4}))
    new = _version(
        tmp_path, "new", pa.table({"温度": [80.0, 81.0, None, 79.0, 80.0], "id": ["1", "2", "3", "4", "5"], "new": [True] * 5})
    )
    diff = version_diff(old, new)
    assert diff["rows"] == {"from": 4, "to": 5, "change": 1}
    assert diff["added"] == ["new"] and diff["removed"] == ["gone"]
    assert diff["retyped"] == [{"column": "id", "from": "BIGINT", "to": "VARCHAR"}]
    shift = next(s for s in diff["shifts"] if s["column"] == "温度")
    assert shift["mean"]["in_std"] > 10 and shift["missing_share"] == {"from": 0.0, "to": 0.2}
    assert diff["same_schema"] is False


def test_identical_versions_have_no_differences(tmp_path):
    table = pa.table({"a": [1.0, 2.0, 3.0]})
    one, two = _version(tmp_path, "one", table), _version(tmp_path, "two", table)
    assert version_diff(one, two) == {
        "rows": {"from": 3, "to": 3, "change": 0},
        "added": [],
        "removed": [],
        "retyped": [],
        "shifts": [],
        "same_schema": True,
    }
