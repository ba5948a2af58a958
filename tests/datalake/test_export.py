"""The CSV export engine on real Parquet files (no database)."""

import csv
import io
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datalake.engine.export import BOM, export_csv, export_csv_iter

NAMES = {"col_1": "温度", "col_2": "备注", "col_3": "日期"}


@pytest.fixture
def small_file(tmp_path):
    table = pa.table(
        {
            "col_1": pa.array([-5.5, 70.25, None, float("nan")]),
            "col_2": ["正常", '=HYPERLINK("http://x")', None, 'a "quoted", line\nbreak'],
            "col_3": pa.array([date(2024, 1, 2), None, date(2024, 3, 4), date(2024, 5, 6)]),
        }
    )
    path = tmp_path / "small.parquet"
    pq.write_table(table, path)
    return str(path)


def exported(path, **kwargs) -> tuple[bytes, int]:
    out = io.BytesIO()
    rows = export_csv(path, out, **kwargs)
    return out.getvalue(), rows


def read_back(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_round_trip_with_chinese_headers(small_file):
    data, rows = exported(small_file, names=NAMES)
    assert rows == 4
    assert read_back(data) == [
        ["温度", "备注", "日期"],
        ["-5.5", "正常", "2024-01-02"],
        ["70.25", '\'=HYPERLINK("http://x")', ""],
        ["", "", "2024-03-04"],
        ["", 'a "quoted", line\nbreak', "2024-05-06"],  # NaN is an empty cell
    ]


def test_starts_with_the_bom_by_default_and_not_when_asked(small_file):
    with_bom, _ = exported(small_file, names=NAMES)
    without, _ = exported(small_file, names=NAMES, utf8_bom=False)
    assert with_bom.startswith(BOM + "温度".encode())
    assert without.startswith("温度".encode())
    assert with_bom == BOM + without


def test_without_names_headers_are_stored_names(small_file):
    data, _ = exported(small_file)
    assert read_back(data)[0] == ["col_1", "col_2", "col_3"]


def test_names_choose_and_order_the_columns(small_file):
    data, _ = exported(small_file, names={"col_3": "日期", "col_1": "温度"})
    assert [row for row in read_back(data)[:2]] == [["日期", "温度"], ["2024-01-02", "-5.5"]]
    with pytest.raises(ValueError, match="col_9"):
        exported(small_file, names={"col_9": "压力"})


def test_formula_cells_are_escaped_but_numbers_are_not(tmp_path):
    risky = ["=1+2", "+33", "-cmd", "@SUM(A1)", "\tx", "\ry", "-5", "ok", "a=b", "", "'quoted"]
    path = tmp_path / "risky.parquet"
    pq.write_table(
        pa.table({"text": risky, "number": list(range(-5, 6)), "amount": [-1.5] * 11, "=evil": ["x"] * 11}),
        path,
    )
    data, _ = exported(str(path))
    rows = read_back(data)
    assert rows[0] == ["text", "number", "amount", "'=evil"]  # headers are text too
    assert [row[0] for row in rows[1:]] == [
        "'=1+2",
        "'+33",
        "'-cmd",
        "'@SUM(A1)",
        "'\tx",
        "'\ry",
        "'-5",  # a text cell, though it reads as a number
        "ok",
        "a=b",
        "",
        "'quoted",
    ]
    assert [row[1] for row in rows[1:]] == [str(n) for n in range(-5, 6)]
    assert {row[2] for row in rows[1:]} == {"-1.5"}
    assert b",-5," in data and b",-1.5," in data  # unquoted numbers


def test_values_render_like_the_preview(tmp_path):
    path = tmp_path / "types.parquet"
    table = pa.table(
        {
            "at": pa.array([datetime(2024, 1, 2, 8, 0), datetime(2024, 1, 2, 8, 0, 0, 500), None], pa.timestamp("us")),
            "ok": [True, False, None],
            "blob": [b"\x00\xff", None, b"a"],
            "price": pa.array([Decimal("1.50"), None, Decimal("-2.00")], pa.decimal128(10, 2)),
            "tags": [["a", "机"], None, []],
            "big": [2**62, None, -(2**62)],
            "inf": [float("inf"), float("-inf"), 1.0],
            "dict": pa.array(["=x", "y", None]).dictionary_encode(),
        }
    )
    pq.write_table(table, path)
    rows = read_back(exported(str(path))[0])
    assert rows[1:] == [
        ["2024-01-02 08:00:00", "true", "00ff", "1.50", '["a", "机"]', str(2**62), "", "'=x"],
        ["2024-01-02 08:00:00.000500", "false", "", "", "", "", "", "y"],
        ["", "", "61", "-2.00", "[]", str(-(2**62)), "1", ""],
    ]


def test_many_batches_give_the_same_bytes_as_one(tmp_path):
    n = 10_000
    rng = np.random.default_rng(5)
    words = np.array(["正常", "=bad", "-x", "ok", "", "a,b", 'q"q'])
    path = tmp_path / "many.parquet"
    pq.write_table(
        pa.table(
            {
                "id": np.arange(n),
                "value": rng.normal(0, 1, n),
                "word": pa.array(words[rng.integers(0, len(words), n)].tolist()),
                "at": pa.array(np.datetime64("2024-01-01T00:00:00", "us") + np.arange(n).astype("timedelta64[ms]") * 1500),
            }
        ),
        path,
        row_group_size=3000,
    )
    one, rows_one = exported(str(path), batch_rows=n)
    many, rows_many = exported(str(path), batch_rows=1000)
    assert rows_one == rows_many == n
    assert one == many
    chunks = list(export_csv_iter(str(path), batch_rows=1000))
    assert len(chunks) >= 11  # the header, then at least one chunk per 1000 rows
    assert b"".join(chunks) == one
    assert len(read_back(one)) == n + 1


def test_empty_file_gives_the_header_only(tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"col_1": pa.array([], pa.int64())}), path)
    data, rows = exported(str(path), names={"col_1": "数量"})
    assert rows == 0
    assert data == BOM + "数量\r\n".encode()


def test_bad_batch_rows_is_refused(small_file):
    with pytest.raises(ValueError, match="batch_rows"):
        exported(small_file, batch_rows=0)
