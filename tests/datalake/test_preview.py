"""The preview engine on real Parquet files (no database)."""

import time
from datetime import date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from datalake.engine.preview import PreviewError, preview

# Stored as the ingest engine stores them: safe identifiers, original names beside.
NAMES = {"col_1": "温度", "col_2": "机器", "col_3": "日期", "col_4": "ok", "col_5": 'odd "name"'}


@pytest.fixture
def small_file(tmp_path):
    table = pa.table(
        {
            "col_1": pa.array([70.5, None, 80.25, 65.0, float("nan"), 90.0, None, 75.0]),
            "col_2": ["M1", "M2", "M'1", "机床A", None, "m1 x", "=1+2", "M2"],
            "col_3": pa.array([date(2024, 1, d) for d in range(1, 9)]),
            "col_4": [True, False, True, None, True, False, True, False],
            "col_5": pa.array([b"\x00\xff", None, b"a", b"b", b"c", b"d", b"e", b"f"]),
        }
    )
    path = tmp_path / "small.parquet"
    pq.write_table(table, path)
    return str(path)


def column(page, name):
    index = page.columns.index(name)
    return [row[index] for row in page.rows]


def test_columns_are_original_names_and_values_json_ready(small_file):
    page = preview(small_file, names=NAMES)
    assert page.columns == ["温度", "机器", "日期", "ok", 'odd "name"']
    assert page.types[0] == "DOUBLE"
    assert (page.total, page.page, page.page_size, page.pages) == (8, 1, 50, 1)
    assert page.rows[0] == [70.5, "M1", "2024-01-01", True, "00ff"]
    assert page.rows[4][0] is None  # NaN
    assert page.as_dict()["rows"] == page.rows


def test_without_names_columns_are_stored_names(small_file):
    assert preview(small_file).columns == list(NAMES)


def test_timestamps_are_iso_and_infinities_none(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(
        pa.table({"at": pa.array([datetime(2024, 1, 2, 8, 30)], pa.timestamp("us")), "x": [float("inf")]}),
        path,
    )
    assert preview(str(path)).rows == [["2024-01-02T08:30:00", None]]


def test_paging_in_file_order(small_file):
    pages = [preview(small_file, names=NAMES, page=n, page_size=3) for n in (1, 2, 3, 4)]
    assert [p.pages for p in pages] == [3, 3, 3, 3]
    assert [column(p, "日期") for p in pages] == [
        ["2024-01-01", "2024-01-02", "2024-01-03"],
        ["2024-01-04", "2024-01-05", "2024-01-06"],
        ["2024-01-07", "2024-01-08"],
        [],  # past the last page: no rows, same total
    ]
    assert pages[3].total == 8


def test_sort_ascending_and_descending_put_nulls_last(small_file):
    up = preview(small_file, names=NAMES, sort="温度")
    down = preview(small_file, names=NAMES, sort="温度", descending=True)
    # NaN sorts above every number in duckdb and is shown as None; nulls come last both ways.
    assert column(up, "温度") == [65.0, 70.5, 75.0, 80.25, 90.0, None, None, None]
    assert column(down, "温度") == [None, 90.0, 80.25, 75.0, 70.5, 65.0, None, None]
    assert column(up, "日期")[-2:] == ["2024-01-02", "2024-01-07"]  # the nulls, in file order
    assert column(down, "日期")[-2:] == ["2024-01-02", "2024-01-07"]


def test_sorted_pages_with_ties_neither_repeat_nor_skip_rows(tmp_path):
    n = 10_000
    path = tmp_path / "ties.parquet"
    pq.write_table(pa.table({"id": np.arange(n), "group": np.arange(n) % 3}), path)
    seen = []
    for number in range(1, 21):
        seen += column(preview(str(path), sort="group", page=number, page_size=500), "id")
    assert sorted(seen) == list(range(n))
    assert seen[:3] == [0, 3, 6]  # ties keep file order


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "M2", ["M2", "M2"]),
        ("ne", "M2", ["M1", "M'1", "机床A", "m1 x", "=1+2"]),
        ("lt", "M2", ["M1", "M'1", "=1+2"]),
        ("le", "M2", ["M1", "M2", "M'1", "=1+2", "M2"]),
        ("gt", "M2", ["机床A", "m1 x"]),
        ("ge", "M2", ["M2", "机床A", "m1 x", "M2"]),
        ("contains", "1", ["M1", "M'1", "m1 x", "=1+2"]),
        ("contains", "m1", ["M1", "m1 x"]),  # case-insensitive
        ("starts_with", "机床", ["机床A"]),
        ("is_null", None, [None]),
        ("not_null", None, ["M1", "M2", "M'1", "机床A", "m1 x", "=1+2", "M2"]),
        ("in", ["M1", "机床A", "nope"], ["M1", "机床A"]),
        ("in", [], []),
    ],
)
def test_each_filter_op_on_text(small_file, op, value, expected):
    page = preview(small_file, names=NAMES, filters=[{"column": "机器", "op": op, "value": value}])
    assert column(page, "机器") == expected
    assert page.total == len(expected)


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", 75, [75.0]),
        ("ne", "75", [70.5, 80.25, 65.0, 90.0]),  # and NaN, shown as None
        ("lt", 70.5, [65.0]),
        ("le", "70.5", [70.5, 65.0]),
        ("gt", 80, [80.25, 90.0]),
        ("ge", 80.25, [80.25, 90.0]),
        ("in", [65, "90"], [65.0, 90.0]),
        ("contains", ".25", [80.25]),
    ],
)
def test_each_comparison_on_numbers(small_file, op, value, expected):
    page = preview(small_file, names=NAMES, filters=[{"column": "温度", "op": op, "value": value}])
    assert [v for v in column(page, "温度") if v is not None] == expected


def test_integer_column_compared_with_a_fraction_is_not_rounded(tmp_path):
    path = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"rpm": [1, 2, 3]}), path)
    assert column(preview(str(path), filters=[{"column": "rpm", "op": "eq", "value": 1.5}]), "rpm") == []
    assert column(preview(str(path), filters=[{"column": "rpm", "op": "lt", "value": 2.5}]), "rpm") == [1, 2]
    assert column(preview(str(path), filters=[{"column": "rpm", "op": "lt", "value": "10"}]), "rpm") == [1, 2, 3]


def test_dates_and_booleans_compare_in_their_type(small_file):
    page = preview(small_file, names=NAMES, filters=[{"column": "日期", "op": "ge", "value": "2024-01-07"}])
    assert column(page, "日期") == ["2024-01-07", "2024-01-08"]
    page = preview(small_file, names=NAMES, filters=[{"column": "ok", "op": "eq", "value": False}])
    assert page.total == 3


def test_filters_combine_with_and_and_total_counts_matches(small_file):
    page = preview(
        small_file,
        names=NAMES,
        page_size=1,
        sort="温度",
        descending=True,
        filters=[{"column": "ok", "op": "eq", "value": True}, {"column": "温度", "op": "not_null"}],
    )
    assert (page.total, page.pages) == (3, 3)  # 70.5, 80.25 and NaN (not null in SQL)
    assert column(page, "温度") == [None]  # NaN first descending, shown as None


@pytest.mark.parametrize(
    "value",
    ["M1' OR '1'='1", "'; DROP TABLE x; --", '" OR 1=1 --', "%", "_", "\\", "?"],
)
def test_filter_values_with_quotes_and_sql_are_inert(small_file, value):
    for op in ("eq", "contains", "starts_with"):
        page = preview(small_file, names=NAMES, filters=[{"column": "机器", "op": op, "value": value}])
        assert page.total == 0
    page = preview(small_file, names=NAMES, filters=[{"column": "机器", "op": "in", "value": [value, "M'1"]}])
    assert column(page, "机器") == ["M'1"]


def test_value_with_a_quote_matches_exactly(small_file):
    page = preview(small_file, names=NAMES, filters=[{"column": "机器", "op": "eq", "value": "M'1"}])
    assert column(page, "机器") == ["M'1"]


def test_column_with_a_quote_in_its_name_can_be_sorted_and_filtered(small_file):
    page = preview(small_file, names=NAMES, sort='odd "name"', filters=[{"column": 'odd "name"', "op": "not_null"}])
    assert column(page, 'odd "name"') == ["00ff", "61", "62", "63", "64", "65", "66"]


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"page": 0}, "page", ["page", "at least 1", "0"]),
        ({"page": "2"}, "page", ["page", "'2'"]),
        ({"page_size": 0}, "page_size", ["between 1 and 500", "0"]),
        ({"page_size": 501}, "page_size", ["between 1 and 500", "501"]),
        ({"sort": "压力"}, "sort", ["'压力'", "'温度'"]),
        ({"filters": [{"column": "压力", "op": "eq", "value": 1}]}, "filters", ["Filter 1", "unknown column '压力'"]),
        ({"filters": [{"column": "温度", "op": "like", "value": 1}]}, "filters", ["unknown op 'like'", "starts_with"]),
        ({"filters": [{"column": "温度", "op": "gt"}]}, "filters", ["op 'gt' needs a value"]),
        ({"filters": [{"column": "温度", "op": "gt", "value": "hot"}]}, "filters", ["'温度'", "'hot'", "DOUBLE"]),
        ({"filters": [{"column": "温度", "op": "eq", "value": None}]}, "filters", ["None", "is_null"]),
        ({"filters": [{"column": "温度", "op": "eq", "value": True}]}, "filters", ["True", "DOUBLE"]),
        ({"filters": [{"column": "日期", "op": "lt", "value": "2024-13-45"}]}, "filters", ["'日期'", "'2024-13-45'", "DATE"]),
        ({"filters": [{"column": "ok", "op": "eq", "value": "maybe"}]}, "filters", ["'ok'", "'maybe'", "BOOLEAN"]),
        (
            {"filters": [{"column": "机器", "op": "eq", "value": "M1"}, {"column": "日期", "op": "in", "value": ["x"]}]},
            "filters",
            ["Filter 2", "'日期'", "'x'"],
        ),
        ({"filters": [{"column": "机器", "op": "in", "value": "M1"}]}, "filters", ["needs a list"]),
        ({"filters": [{"column": "机器", "op": "in", "value": ["M"] * 1001}]}, "filters", ["at most 1000"]),
        ({"filters": {"column": "机器", "op": "eq", "value": "M1"}}, "filters", ["must be a list"]),
        ({"filters": ["机器 = 'M1'"]}, "filters", ["Filter 1 must be an object"]),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(small_file, kwargs, field, words):
    with pytest.raises(PreviewError) as caught:
        preview(small_file, names=NAMES, **kwargs)
    assert caught.value.field == field
    for word in words:
        assert word in caught.value.message


def test_nested_column_takes_only_null_and_text_filters(tmp_path):
    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"tags": [["a", "b"], None, ["c"]]}), path)
    assert preview(str(path), filters=[{"column": "tags", "op": "is_null"}]).total == 1
    assert preview(str(path), filters=[{"column": "tags", "op": "contains", "value": "c"}]).total == 1
    with pytest.raises(PreviewError, match="only is_null"):
        preview(str(path), filters=[{"column": "tags", "op": "eq", "value": "a"}])


def test_two_million_rows_sorted_filtered_page(tmp_path):
    n = 2_000_000
    rng = np.random.default_rng(3)
    machines = pa.array([f"机器{i}" for i in range(20)])
    table = pa.table(
        {
            "col_1": pa.array(np.arange(n, dtype=np.int64)),
            "col_2": pc.take(machines, pa.array(rng.integers(0, 20, n))),
            "col_3": pa.array(rng.normal(70, 5, n)),
            "col_4": pa.array(np.datetime64("2024-01-01T00:00:00", "us") + np.arange(n).astype("timedelta64[s]")),
        }
    )
    path = tmp_path / "big.parquet"
    pq.write_table(table, path, row_group_size=256_000)
    names = {"col_1": "编号", "col_2": "机器", "col_3": "温度", "col_4": "时间"}
    filters = [{"column": "机器", "op": "eq", "value": "机器7"}, {"column": "温度", "op": "gt", "value": 75}]

    started = time.perf_counter()
    page = preview(str(path), names=names, page=3, page_size=100, sort="温度", descending=True, filters=filters)
    print(f"\n2 M rows, sorted and filtered page: {time.perf_counter() - started:.3f} s")

    machine, temperature = table["col_2"].to_numpy(zero_copy_only=False), table["col_3"].to_numpy()
    mask = (machine == "机器7") & (temperature > 75)
    expected = np.sort(temperature[mask])[::-1][200:300]
    assert page.total == int(mask.sum())
    assert column(page, "温度") == expected.tolist()
    assert all(row[1] == "机器7" for row in page.rows)
