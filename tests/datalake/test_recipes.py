"""The recipe engine on small Parquet files (no database)."""

import json
import os
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datalake.engine.recipes import OPS, RecipeError, apply_recipe, validate_recipe

# Stored as the ingest engine stores them: safe identifiers, original names beside.
NAMES = {"col_1": "温度", "col_2": "机器", "col_3": "状态"}
COLUMNS = {"温度": "DOUBLE", "机器": "VARCHAR", "状态": "VARCHAR"}


def write(tmp_path, name: str, data: dict) -> str:
    path = tmp_path / f"{name}.parquet"
    pq.write_table(pa.table(data), path)
    return str(path)


@pytest.fixture
def small(tmp_path):
    path = write(
        tmp_path,
        "small",
        {
            "col_1": pa.array([70.0, None, 80.0, 65.0, 80.0, None], pa.float64()),
            "col_2": ["M1", "M2", "M1", "M3", "M1", "M2"],
            "col_3": ["ok", "ok", None, "bad", None, "ok"],
        },
    )
    return {"input": (path, NAMES)}


def run(tmp_path, steps, inputs, **kwargs):
    """(result, rows as dicts with original names)."""
    out = tmp_path / "out" / "result.parquet"
    out.parent.mkdir(exist_ok=True)
    result = apply_recipe(steps, inputs, out, **kwargs)
    table = pq.read_table(out)
    assert table.column_names == list(result.names)
    rows = [{result.names[k]: v for k, v in row.items()} for row in table.to_pylist()]
    return result, rows


def values(rows, column):
    return [row[column] for row in rows]


# --- Each step ------------------------------------------------------------------------------


def test_no_steps_copies_the_input_with_identifiers_and_original_names(tmp_path, small):
    result, rows = run(tmp_path, [], small)
    assert result.rows == 6
    assert [c["name"] for c in result.columns] == ["温度", "机器", "状态"]
    assert result.names == NAMES
    assert values(rows, "机器") == ["M1", "M2", "M1", "M3", "M1", "M2"]
    path = tmp_path / "out" / "result.parquet"
    metadata = json.loads(pq.read_schema(path).metadata[b"lepton.columns"])
    assert metadata == [{"name": n, "identifier": i} for i, n in result.names.items()]
    assert len(result.sha256) == 64 and result.bytes == os.path.getsize(path)


def test_select_and_rename(tmp_path, small):
    result, rows = run(
        tmp_path, [{"op": "select", "columns": ["机器", "温度"]}, {"op": "rename", "columns": {"温度": "temperature"}}], small
    )
    assert [c["name"] for c in result.columns] == ["机器", "temperature"]
    assert rows[0] == {"机器": "M1", "temperature": 70.0}


def test_cast_reports_values_that_became_null(tmp_path):
    path = write(tmp_path, "raw", {"a": ["1", "2", "x", None], "d": ["2024-01-02", "nope", "2024-03-04", None]})
    steps = [{"op": "cast", "columns": {"a": "int", "d": "date"}}]
    result, rows = run(tmp_path, steps, {"input": (path, None)})
    assert rows == [
        {"a": 1, "d": date(2024, 1, 2)},
        {"a": 2, "d": None},
        {"a": None, "d": date(2024, 3, 4)},
        {"a": None, "d": None},
    ]
    assert result.parameters == [{"failed": {"a": 1, "d": 1}}]
    assert [c["type"] for c in result.columns] == ["BIGINT", "DATE"]


def test_filter_all_and_any_with_bound_values(tmp_path, small):
    _, rows = run(
        tmp_path,
        [
            {
                "op": "filter",
                "filters": [{"column": "温度", "op": "ge", "value": 70}, {"column": "机器", "op": "eq", "value": "M1"}],
            }
        ],
        small,
    )
    assert values(rows, "温度") == [70.0, 80.0, 80.0]
    _, rows = run(
        tmp_path,
        [
            {
                "op": "filter",
                "combine": "any",
                "filters": [{"column": "状态", "op": "eq", "value": "bad"}, {"column": "温度", "op": "is_null"}],
            }
        ],
        small,
    )
    assert values(rows, "机器") == ["M2", "M3", "M2"]
    # A quote in a value is data, not SQL.
    _, rows = run(tmp_path, [{"op": "filter", "filters": [{"column": "机器", "op": "eq", "value": "M1' OR '1'='1"}]}], small)
    assert rows == []


def test_drop_duplicates_keeps_first_occurrence_in_file_order(tmp_path, small):
    _, rows = run(tmp_path, [{"op": "drop_duplicates"}], small)
    assert values(rows, "温度") == [70.0, None, 80.0, 65.0]  # row 5 repeats row 3, row 6 repeats row 2
    _, rows = run(tmp_path, [{"op": "drop_duplicates", "subset": ["机器"]}], small)
    assert [(r["机器"], r["温度"]) for r in rows] == [("M1", 70.0), ("M2", None), ("M3", 65.0)]


def test_drop_missing(tmp_path, small):
    _, rows = run(tmp_path, [{"op": "drop_missing", "subset": ["温度"]}], small)
    assert values(rows, "温度") == [70.0, 80.0, 65.0, 80.0]
    _, rows = run(tmp_path, [{"op": "drop_missing"}], small)
    assert values(rows, "温度") == [70.0, 65.0]


def test_fill_missing_methods_report_the_values_used(tmp_path, small):
    steps = [
        {
            "op": "fill_missing",
            "columns": {"温度": "mean", "状态": {"method": "constant", "value": "unknown"}, "机器": "mode"},
        }
    ]
    result, rows = run(tmp_path, steps, small)
    assert values(rows, "温度") == [70.0, 73.75, 80.0, 65.0, 80.0, 73.75]
    assert values(rows, "状态") == ["ok", "ok", "unknown", "bad", "unknown", "ok"]
    assert result.parameters == [{"values": {"温度": 73.75, "状态": "unknown", "机器": "M1"}}]
    result, rows = run(tmp_path, [{"op": "fill_missing", "columns": {"温度": "median"}}], small)
    assert values(rows, "温度") == [70.0, 75.0, 80.0, 65.0, 80.0, 75.0]
    # Mode ties go to the smallest value; an integer column keeps its type.
    path = write(tmp_path, "ints", {"n": pa.array([3, None, 1, 3, 1, 2], pa.int64())})
    result, rows = run(tmp_path, [{"op": "fill_missing", "columns": {"n": "mode"}}], {"input": (path, None)})
    assert values(rows, "n") == [3, 1, 1, 3, 1, 2]
    result, rows = run(tmp_path, [{"op": "fill_missing", "columns": {"n": "mean"}}], {"input": (path, None)})
    assert values(rows, "n") == [3, 2, 1, 3, 1, 2] and result.columns[0]["type"] == "BIGINT"


def test_forward_fill_follows_order_by_within_partitions(tmp_path):
    path = write(
        tmp_path,
        "series",
        {
            "t": [4, 1, 2, 3, 1, 2],
            "m": ["A", "A", "A", "A", "B", "B"],
            "v": pa.array([None, 1.0, None, 3.0, None, 5.0]),
        },
    )
    steps = [{"op": "fill_missing", "columns": {"v": "forward_fill"}, "order_by": "t", "partition_by": ["m"]}]
    _, rows = run(tmp_path, steps, {"input": (path, None)})
    # File order is kept; A at t=4 takes t=3's value, B at t=1 has nothing before it.
    assert values(rows, "v") == [3.0, 1.0, 1.0, 3.0, None, 5.0]


def test_clip_outliers_iqr_and_percentile(tmp_path):
    path = write(tmp_path, "x", {"x": pa.array([1.0, 2.0, 3.0, 4.0, 100.0, None]), "n": [1, 2, 3, 4, 100, -50]})
    result, rows = run(tmp_path, [{"op": "clip_outliers", "columns": ["x", "n"]}], {"input": (path, None)})
    # x: q1 2, q3 4, IQR 2 → [-1, 7]; n: q1 1.25, q3 3.75 → [-2.5, 7.5], integers → [-2, 7].
    assert values(rows, "x") == [1.0, 2.0, 3.0, 4.0, 7.0, None]
    assert values(rows, "n") == [1, 2, 3, 4, 7, -2]
    assert result.parameters[0]["bounds"] == {"x": {"lower": -1.0, "upper": 7.0}, "n": {"lower": -2, "upper": 7}}
    result, rows = run(
        tmp_path,
        [{"op": "clip_outliers", "columns": ["x"], "method": "percentile", "low": 0.25, "high": 0.75}],
        {"input": (path, None)},
    )
    assert values(rows, "x") == [2.0, 2.0, 3.0, 4.0, 4.0, None]
    assert result.steps == [{"op": "clip_outliers", "columns": ["x"], "method": "percentile", "low": 0.25, "high": 0.75}]


def test_normalise_returns_parameters_and_reuses_given_ones(tmp_path):
    path = write(tmp_path, "x", {"a": [2.0, 4.0, 6.0, None], "b": [1, 1, 1, 1], "c": [0.0, 10.0, 20.0, 30.0]})
    result, rows = run(tmp_path, [{"op": "normalise", "columns": ["a", "b"], "method": "minmax"}], {"input": (path, None)})
    assert values(rows, "a") == [0.0, 0.5, 1.0, None]
    assert values(rows, "b") == [0.0, 0.0, 0.0, 0.0]  # a constant column becomes 0
    assert result.parameters == [{"method": "minmax", "columns": {"a": {"min": 2.0, "max": 6.0}, "b": {"min": 1.0, "max": 1.0}}}]
    result, rows = run(tmp_path, [{"op": "normalise", "columns": ["a"], "method": "zscore"}], {"input": (path, None)})
    std = (8 / 3) ** 0.5  # population standard deviation of 2, 4, 6
    assert values(rows, "a")[:3] == pytest.approx([-2 / std, 0.0, 2 / std]) and values(rows, "a")[3] is None
    assert result.parameters[0]["columns"]["a"] == {"mean": 4.0, "std": pytest.approx(std)}
    # Stored parameters, as a model would reuse them on new data.
    steps = [{"op": "normalise", "columns": ["c"], "method": "minmax", "parameters": {"c": {"min": 0, "max": 20}}}]
    result, rows = run(tmp_path, steps, {"input": (path, None)})
    assert values(rows, "c") == [0.0, 0.5, 1.0, 1.5]
    assert result.parameters[0]["columns"]["c"] == {"min": 0.0, "max": 20.0}


def test_multi_step_recipe(tmp_path):
    path = write(
        tmp_path,
        "raw",
        {
            "col_1": ["10", "20", "n/a", "30", "1000", "20", "20"],
            "col_2": ["M1", "M2", "M1", "M2", "M1", "M2", "M2"],
        },
    )
    steps = [
        {"op": "cast", "columns": {"读数": "float"}},
        {"op": "fill_missing", "columns": {"读数": "median"}},
        {"op": "clip_outliers", "columns": ["读数"], "method": "iqr", "k": 1.5},
        {"op": "normalise", "columns": ["读数"], "method": "minmax"},
        {"op": "drop_duplicates"},
    ]
    cleaned = validate_recipe(steps, {"读数": "VARCHAR", "机器": "VARCHAR"})
    assert cleaned[2] == {"op": "clip_outliers", "columns": ["读数"], "method": "iqr", "k": 1.5}
    result, rows = run(tmp_path, steps, {"input": (path, {"col_1": "读数", "col_2": "机器"})})
    # cast: "n/a" → null (1 failed); median of 10, 20, 30, 1000, 20, 20 = 20; after the fill the
    # sorted values are 10 20 20 20 20 30 1000: q1 20, q3 25, IQR 5 → [12.5, 32.5] clips 10 and
    # 1000; min-max over 12.5 … 32.5; the repeated (20, M2) rows are dropped.
    assert result.parameters[0] == {"failed": {"读数": 1}}
    assert result.parameters[1] == {"values": {"读数": 20.0}}
    assert result.parameters[2]["bounds"]["读数"] == {"lower": 12.5, "upper": 32.5}
    assert result.parameters[3]["columns"]["读数"] == {"min": 12.5, "max": 32.5}
    assert result.parameters[4] == {}
    assert [(r["读数"], r["机器"]) for r in rows] == [(0.0, "M1"), (0.375, "M2"), (0.375, "M1"), (0.875, "M2"), (1.0, "M1")]
    assert result.rows == 5


# --- Sensor series ---------------------------------------------------------------------------


@pytest.fixture
def sensors(tmp_path):
    start = datetime(2024, 5, 1, 8, 0)
    times, machines, vibration = [], [], []
    for i in range(6):  # every 20 minutes, two machines interleaved
        for machine, base in (("M2", 10.0), ("M1", 0.0)):
            times.append(start + timedelta(minutes=20 * i))
            machines.append(machine)
            vibration.append(base + i)
    path = write(
        tmp_path,
        "sensors",
        {"col_1": pa.array(times, pa.timestamp("us")), "col_2": machines, "col_3": vibration},
    )
    return {"input": (path, {"col_1": "时间", "col_2": "machine_id", "col_3": "振动"})}


def test_resample_per_machine_per_hour(tmp_path, sensors):
    steps = [
        {
            "op": "resample",
            "time": "时间",
            "interval": "1 hour",
            "by": ["machine_id"],
            "aggregations": {"振动": ["mean", "max", "count", "first", "last"]},
        }
    ]
    result, rows = run(tmp_path, steps, sensors)
    assert [c["name"] for c in result.columns] == [
        "machine_id",
        "时间",
        "振动_mean",
        "振动_max",
        "振动_count",
        "振动_first",
        "振动_last",
    ]
    h8, h9 = datetime(2024, 5, 1, 8), datetime(2024, 5, 1, 9)
    assert [tuple(r.values()) for r in rows] == [
        ("M1", h8, 1.0, 2.0, 3, 0.0, 2.0),
        ("M1", h9, 4.0, 5.0, 3, 3.0, 5.0),
        ("M2", h8, 11.0, 12.0, 3, 10.0, 12.0),
        ("M2", h9, 14.0, 15.0, 3, 13.0, 15.0),
    ]
    # One aggregation keeps the column's name.
    _, rows = run(tmp_path, [{"op": "resample", "time": "时间", "interval": "2 hours", "aggregations": {"振动": "sum"}}], sensors)
    assert rows == [{"时间": h8, "振动": sum(range(6)) + sum(range(10, 16))}]


def test_resample_first_and_last_follow_time_not_file_order(tmp_path):
    times = [datetime(2024, 1, 1, 8, 40), datetime(2024, 1, 1, 8, 0), datetime(2024, 1, 1, 8, 20)]
    path = write(tmp_path, "shuffled", {"t": pa.array(times, pa.timestamp("us")), "v": [3.0, 1.0, 2.0]})
    steps = [{"op": "resample", "time": "t", "interval": "1 hour", "aggregations": {"v": ["first", "last"]}}]
    _, rows = run(tmp_path, steps, {"input": (path, None)})
    assert rows == [{"t": datetime(2024, 1, 1, 8), "v_first": 1.0, "v_last": 3.0}]


def test_window_per_machine(tmp_path, sensors):
    steps = [
        {
            "op": "window",
            "order_by": "时间",
            "partition_by": ["machine_id"],
            "size": 3,
            "aggregations": {"振动": ["mean", "max"]},
        }
    ]
    result, rows = run(tmp_path, steps, sensors)
    assert result.parameters == [{"columns": ["振动_mean_3", "振动_max_3"]}]
    m1 = [r for r in rows if r["machine_id"] == "M1"]
    assert values(m1, "振动_mean_3") == [0.0, 0.5, 1.0, 2.0, 3.0, 4.0]
    assert values(m1, "振动_max_3") == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert values(rows, "machine_id")[:4] == ["M2", "M1", "M2", "M1"]  # file order kept
    assert values(rows, "振动_mean_3")[:4] == [10.0, 0.0, 10.5, 0.5]


# --- Join and SQL ----------------------------------------------------------------------------


def test_join_inner_and_left(tmp_path, small):
    lines = write(
        tmp_path, "machines", {"id": ["M1", "M2", "M9"], "line_name": ["产线A", "产线B", "X"], "状态": ["on", "off", "on"]}
    )
    inputs = small | {"machines": (lines, {"id": "编号", "line_name": "产线", "状态": "状态"})}
    steps = [{"op": "join", "input": "machines", "on": {"机器": "编号"}, "how": "left"}]
    result, rows = run(tmp_path, steps, inputs)
    assert [c["name"] for c in result.columns] == ["温度", "机器", "状态", "产线", "状态_machines"]
    assert [(r["机器"], r["产线"], r["状态_machines"]) for r in rows] == [
        ("M1", "产线A", "on"),
        ("M2", "产线B", "off"),
        ("M1", "产线A", "on"),
        ("M3", None, None),
        ("M1", "产线A", "on"),
        ("M2", "产线B", "off"),
    ]
    steps = [{"op": "join", "input": "machines", "on": {"机器": "编号"}, "suffix": "_m"}]
    _, rows = run(tmp_path, steps, inputs)
    assert values(rows, "机器") == ["M1", "M2", "M1", "M1", "M2"] and "状态_m" in rows[0]
    cleaned = validate_recipe(steps, COLUMNS, inputs={"machines": {"编号": "VARCHAR", "产线": "VARCHAR", "状态": "VARCHAR"}})
    assert cleaned == [{"op": "join", "input": "machines", "on": {"机器": "编号"}, "how": "inner", "suffix": "_m"}]


def test_sql_step_sees_the_previous_step_as_input(tmp_path, small):
    steps = [
        {"op": "rename", "columns": {"温度": "t"}},
        {"op": "sql", "sql": 'SELECT "机器", avg(t) AS avg_t FROM input GROUP BY ALL ORDER BY "机器"; -- per machine'},
        {"op": "filter", "filters": [{"column": "avg_t", "op": "is_null"}]},
    ]
    result, rows = run(tmp_path, steps, small)
    assert rows == [{"机器": "M2", "avg_t": None}]
    _, rows = run(tmp_path, steps[:2], small)
    assert rows == [{"机器": "M1", "avg_t": pytest.approx(230 / 3)}, {"机器": "M2", "avg_t": None}, {"机器": "M3", "avg_t": 65.0}]
    assert validate_recipe(steps, COLUMNS)[1]["op"] == "sql"


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('/tmp/*.parquet')",
        "ATTACH '/tmp/evil.db'",
        "SELECT 1; DROP TABLE input",
        "SET enable_external_access = true",
        "INSTALL httpfs",
        "SELECT * FROM input) UNION ALL (SELECT 1",
        "SELECT * FROM 'https://example.com/data.csv'",
        "SELECT getenv('HOME')",
    ],
)
def test_hostile_sql_step_is_refused_and_writes_nothing(tmp_path, small, sql):
    with pytest.raises(RecipeError) as caught:
        run(tmp_path, [{"op": "sql", "sql": sql}], small)
    assert (caught.value.step_index, caught.value.field) == (0, "sql")
    assert os.listdir(tmp_path / "out") == []
    with pytest.raises(RecipeError):
        validate_recipe([{"op": "sql", "sql": sql}], COLUMNS)


# --- Validation ------------------------------------------------------------------------------


def error_of(steps, columns=COLUMNS, **kwargs) -> RecipeError:
    with pytest.raises(RecipeError) as caught:
        validate_recipe(steps, columns, **kwargs)
    return caught.value


def test_missing_column_after_a_rename_names_step_and_field():
    error = error_of([{"op": "rename", "columns": {"温度": "temperature"}}, {"op": "normalise", "columns": ["温度"]}])
    assert (error.step_index, error.field) == (1, "columns")
    assert "'温度'" in error.message and "'temperature'" in error.message
    assert error.as_dict() == {"step": 1, "field": "columns", "message": error.message}
    assert str(error).startswith("step 2, columns:")
    error = error_of([{"op": "select", "columns": ["机器"]}, {"op": "filter", "filters": [{"column": "状态", "op": "is_null"}]}])
    assert (error.step_index, error.field) == (1, "filters")


@pytest.mark.parametrize(
    "step, field",
    [
        ({"op": "explode"}, "op"),
        ({"columns": ["温度"]}, "op"),
        ({"op": "normalise", "columns": ["温度"], "method": "log"}, "method"),
        ({"op": "normalise", "columns": ["机器"]}, "columns"),  # not a number
        ({"op": "fill_missing", "columns": {"温度": "guess"}}, "columns"),
        ({"op": "fill_missing", "columns": {"温度": "forward_fill"}}, "order_by"),
        ({"op": "fill_missing", "columns": {"温度": {"method": "constant", "value": "hot"}}}, "columns"),
        ({"op": "cast", "columns": {"温度": "complex"}}, "columns"),
        ({"op": "clip_outliers", "columns": ["温度"], "method": "percentile", "low": 0.9, "high": 0.1}, "high"),
        ({"op": "clip_outliers", "columns": ["温度"], "method": "zap"}, "method"),
        ({"op": "select", "columns": ["温度"], "where": "1=1"}, "where"),
        ({"op": "rename", "columns": {"温度": "机器"}}, "columns"),
        ({"op": "rename", "columns": {"温度": "__lepton_pos__"}}, "columns"),
        ({"op": "filter", "filters": [{"column": "温度", "op": "gt", "value": "hot"}]}, "filters"),
        ({"op": "filter", "filters": [{"column": "温度", "op": "eq", "value": 1}], "combine": "some"}, "combine"),
        ({"op": "resample", "time": "机器", "interval": "1 hour", "aggregations": {"温度": "mean"}}, "time"),
        ({"op": "window", "order_by": "温度", "size": 0, "aggregations": {"温度": "mean"}}, "size"),
        ({"op": "window", "order_by": "温度", "size": 3, "aggregations": {"机器": "mean"}}, "aggregations"),
        ({"op": "join", "input": "nowhere", "on": ["机器"]}, "input"),
        ({"op": "sql", "sql": "SELECT nope FROM input"}, "sql"),
    ],
)
def test_bad_steps_name_the_step_and_field(step, field):
    error = error_of([{"op": "select", "columns": list(COLUMNS)}, step])
    assert (error.step_index, error.field) == (1, field), error.message


def test_resample_checks_the_interval():
    columns = {"at": "TIMESTAMP", "v": "DOUBLE"}
    error = error_of([{"op": "resample", "time": "at", "interval": "1 hour'; DROP", "aggregations": {"v": "mean"}}], columns)
    assert (error.step_index, error.field) == (0, "interval")
    assert (
        validate_recipe([{"op": "resample", "time": "at", "interval": "15 Minutes", "aggregations": {"v": "mean"}}], columns)[0][
            "interval"
        ]
        == "15 minute"
    )


def test_unknown_column_type_and_ops_list():
    error = error_of([], {"x": "INTEGER); DROP TABLE y; --"})
    assert (error.step_index, error.field) == (None, "columns")
    assert set(OPS) == {
        "select",
        "rename",
        "cast",
        "filter",
        "drop_duplicates",
        "drop_missing",
        "fill_missing",
        "clip_outliers",
        "normalise",
        "resample",
        "window",
        "join",
        "sql",
    }


# --- Sampling, atomic output, limits ---------------------------------------------------------


def test_sample_rows_reads_only_the_first_rows(tmp_path, small):
    result, rows = run(tmp_path, [{"op": "fill_missing", "columns": {"温度": "mean"}}], small, sample_rows=3)
    assert values(rows, "温度") == [70.0, 75.0, 80.0]  # the mean of the sample, not of the file
    assert result.rows == 3 and result.parameters == [{"values": {"温度": 75.0}}]
    with pytest.raises(RecipeError) as caught:
        run(tmp_path, [], small, sample_rows=0)
    assert caught.value.field == "sample_rows"


def test_failing_step_leaves_nothing_at_the_destination(tmp_path, small):
    out = tmp_path / "out" / "result.parquet"
    out.parent.mkdir()
    steps = [{"op": "select", "columns": ["机器"]}, {"op": "sql", "sql": 'SELECT CAST("机器" AS INTEGER) AS n FROM input'}]
    with pytest.raises(RecipeError) as caught:
        apply_recipe(steps, small, out)
    assert "M1" in caught.value.message
    assert os.listdir(out.parent) == []
    # A validation failure in a later step, too.
    with pytest.raises(RecipeError) as caught:
        apply_recipe([{"op": "drop_duplicates"}, {"op": "select", "columns": ["nope"]}], small, out)
    assert (caught.value.step_index, caught.value.field) == (1, "columns")
    assert os.listdir(out.parent) == []


def test_timeout_interrupts_the_recipe(tmp_path, small):
    steps = [{"op": "sql", "sql": "SELECT count(*) AS n FROM input, range(100000000000)"}]
    with pytest.raises(RecipeError) as caught:
        run(tmp_path, steps, small, timeout_s=0.5)
    assert caught.value.field == "timeout"
    assert os.listdir(tmp_path / "out") == []
