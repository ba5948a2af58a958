"""The ingest engine without Django: formats, encodings, types, bad input, bounded memory."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datalake.engine.errors import IngestError
from datalake.engine.ingest import ingest
from datalake.engine.sniff import safe_identifiers
from datalake.engine.types import IngestOptions

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def run(tmp_path: Path, name: str, data: bytes | str, **options):
    src = write(tmp_path, name, data)
    dest = tmp_path / "out" / "data.parquet"
    result = ingest(src, dest, IngestOptions(**options))
    return result, pq.read_table(dest)


def refused(tmp_path: Path, name: str, data: bytes | str, code: str, **options) -> IngestError:
    src = write(tmp_path, name, data)
    dest = tmp_path / "out" / "data.parquet"
    with pytest.raises(IngestError) as info:
        ingest(src, dest, IngestOptions(**options))
    assert info.value.code == code, info.value
    assert not dest.exists()
    assert not [p for p in (tmp_path / "out").iterdir()] if (tmp_path / "out").exists() else True
    return info.value


def types_of(result) -> dict[str, str]:
    return {c.name: c.logical for c in result.columns}


# --- formats and encodings ---------------------------------------------------------------


def test_utf8_csv_types_and_identifiers(tmp_path):
    result, table = run(
        tmp_path,
        "m.csv",
        "Machine ID,temperature,ok,when,Select,\nM1,1.5,true,2024-01-02,3,x\nM2,2,false,2024-01-03,4,y\n",
    )
    assert result.rows == 2 and result.format == "csv" and result.encoding == "utf-8"
    assert result.delimiter == "," and result.header is True
    assert [c.identifier for c in result.columns] == ["machine_id", "temperature", "ok", "when_", "select_", "column_6"]
    assert types_of(result)["temperature"] == "float"
    assert types_of(result)["ok"] == "bool"
    assert types_of(result)["when"] == "date"
    assert types_of(result)["Select"] == "int"
    assert "Column 6 has no name; it is named 'column_6'." in result.warnings
    assert table.column_names == [c.identifier for c in result.columns]
    assert table.schema.field("machine_id").metadata[b"lepton.name"] == b"Machine ID"
    assert pq.ParquetFile(tmp_path / "out" / "data.parquet").metadata.row_group(0).column(0).compression == "ZSTD"
    assert len(result.sha256) == 64 and result.bytes == (tmp_path / "out" / "data.parquet").stat().st_size


def test_utf8_bom_csv(tmp_path):
    result, table = run(tmp_path, "b.csv", b"\xef\xbb\xbf" + "名称,值\n甲,1\n".encode())
    assert [c.name for c in result.columns] == ["名称", "值"]
    assert table.column("col_1").to_pylist() == ["甲"]


@pytest.mark.parametrize("codec", ["gb18030", "gbk"])
def test_gbk_csv_with_chinese_headers_is_detected(tmp_path, codec):
    text = "设备编号,温度,状态,日期\n" + "".join(f"M{i:02d},{20 + i / 10},正常,2024年1月{i + 1}日\n" for i in range(20))
    result, table = run(tmp_path, "g.csv", text.encode(codec))
    assert result.encoding == "gb18030"
    assert [c.name for c in result.columns] == ["设备编号", "温度", "状态", "日期"]
    assert [c.identifier for c in result.columns] == ["col_1", "col_2", "col_3", "col_4"]
    assert table.column("col_3").to_pylist()[0] == "正常"
    assert types_of(result) == {"设备编号": "string", "温度": "float", "状态": "string", "日期": "date"}


def test_encoding_override(tmp_path):
    result, table = run(tmp_path, "g.csv", "名称\n甲\n".encode("gbk"), encoding="gbk")
    assert result.encoding == "gb18030"
    assert table.column(0).to_pylist() == ["甲"]


def test_tsv_semicolon_and_quotes_are_sniffed(tmp_path):
    result, table = run(tmp_path, "t.tsv", "a\tb\n1\thello, world\n")
    assert result.delimiter == "\t" and table.column("b").to_pylist() == ["hello, world"]
    result, table = run(tmp_path, "s.csv", 'a;b\n1;"x;y"\n2;"multi\nline"\n')
    assert result.delimiter == ";"
    assert table.column("b").to_pylist() == ["x;y", "multi\nline"]


def test_delimiter_and_header_overrides(tmp_path):
    result, table = run(tmp_path, "p.csv", "1|2\n3|4\n", delimiter="|", header=False)
    assert [c.name for c in result.columns] == ["column_1", "column_2"]
    assert table.column("column_1").to_pylist() == [1, 3]


def test_headerless_numeric_csv_is_sniffed(tmp_path):
    result, _ = run(tmp_path, "n.csv", "1,2.5\n3,4.5\n")
    assert result.header is False and result.rows == 2


def test_json_lines_and_array(tmp_path):
    lines = "\n".join(json.dumps({"名称": f"甲{i}", "v": i, "ok": i % 2 == 0}, ensure_ascii=False) for i in range(5))
    result, table = run(tmp_path, "a.jsonl", lines)
    assert result.format == "json" and result.rows == 5
    assert types_of(result) == {"名称": "string", "v": "int", "ok": "bool"}
    result, table = run(tmp_path, "b.json", json.dumps([{"a": 1, "b": "x"}, {"a": 2, "b": None}]))
    assert result.rows == 2 and table.column("a").to_pylist() == [1, 2]


def test_parquet_is_rewritten(tmp_path):
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"温度": [1.0, 2.0], "Name": ["a", "b"]}), src, compression="snappy")
    dest = tmp_path / "out.parquet"
    result = ingest(src, dest, IngestOptions())
    assert result.format == "parquet" and result.rows == 2
    assert pq.read_table(dest).column_names == ["col_1", "name"]
    assert pq.ParquetFile(dest).metadata.row_group(0).column(0).compression == "ZSTD"


def _xlsx(path: Path, sheets: dict[str, list[list]]) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def test_excel_single_sheet(tmp_path):
    import datetime as dt

    src = _xlsx(
        tmp_path / "q.xlsx",
        {"检验": [["批次", "数量", "日期", "合格"], ["B1", 3, dt.date(2024, 1, 2), "是"], ["B2", 4, dt.date(2024, 1, 3), "否"]]},
    )
    result = ingest(src, tmp_path / "o.parquet")
    assert result.format == "xlsx" and result.sheet == "检验" and result.rows == 2
    assert types_of(result) == {"批次": "string", "数量": "int", "日期": "date", "合格": "bool"}


def test_excel_several_sheets_need_a_choice(tmp_path):
    src = _xlsx(tmp_path / "w.xlsx", {"一月": [["a"], [1]], "二月": [["a"], [2]]})
    with pytest.raises(IngestError) as info:
        ingest(src, tmp_path / "o.parquet")
    assert info.value.code == "sheet_required"
    assert "一月" in info.value.message and "二月" in info.value.message
    assert not (tmp_path / "o.parquet").exists()
    result = ingest(src, tmp_path / "o.parquet", IngestOptions(sheet="二月"))
    assert pq.read_table(tmp_path / "o.parquet").column("a").to_pylist() == [2]
    assert result.sheet == "二月"


def test_excel_one_sheet_with_data_among_empty_ones(tmp_path):
    src = _xlsx(tmp_path / "w.xlsx", {"Sheet1": [["a"], [1]], "Sheet2": [], "Sheet3": []})
    result = ingest(src, tmp_path / "o.parquet")
    assert result.sheet == "Sheet1" and result.warnings


def test_gzip_and_zip_wrappers(tmp_path):
    data = "名称,值\n甲,1\n乙,2\n".encode("gb18030")
    result, table = run(tmp_path, "d.csv.gz", gzip.compress(data))
    assert result.compression == "gzip" and result.encoding == "gb18030" and result.rows == 2
    zpath = tmp_path / "d.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("export/d.csv", data)
        z.writestr("__MACOSX/._d.csv", b"junk")
    result = ingest(zpath, tmp_path / "z.parquet")
    assert result.compression == "zip" and result.rows == 2


def test_zip_with_several_files_is_refused(tmp_path):
    zpath = tmp_path / "d.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("a.csv", "a\n1\n")
        z.writestr("b.csv", "a\n1\n")
    with pytest.raises(IngestError) as info:
        ingest(zpath, tmp_path / "o.parquet")
    assert info.value.code == "bad_archive" and "a.csv" in info.value.message
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize("wrapper", ["gzip", "zip"])
def test_zip_bomb_is_refused(tmp_path, wrapper):
    payload = b"a\n" + b"1\n" * 2_000_000  # 4 MB, compresses to a few KB
    if wrapper == "gzip":
        data, name = gzip.compress(payload), "bomb.csv.gz"
    else:
        zpath = tmp_path / "bomb.zip"
        with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("bomb.csv", payload)
        data, name = zpath.read_bytes(), "bomb2.zip"
    error = refused(tmp_path, name, data, "decompressed_too_large", max_decompressed_bytes=1_000_000)
    assert "1,000,000 bytes" in error.message


# --- type inference ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "logical", "first"),
    [
        (["2024-01-02", "2024-12-31"], "date", "2024-01-02"),
        (["2024/01/02", "2024/1/3"], "date", "2024-01-02"),
        (["2024年1月2日", "2024年12月31日"], "date", "2024-01-02"),
        (["2024-01-02 08:00:00", "2024-01-03 09:30:15"], "timestamp", "2024-01-02 08:00:00"),
        (["2024/1/2 8:00", "2024/12/31 23:59"], "timestamp", "2024-01-02 08:00:00"),
        (["2024-01-02T08:00:00", "2024-01-02T08:00:00.250"], "timestamp", "2024-01-02 08:00:00"),
        (["2024-01-02T08:00:00+08:00", "2024-01-02T00:00:00Z"], "timestamp_tz", "2024-01-02 00:00:00+00:00"),
        (["2024年1月2日 8:00", "2024年1月3日 9:30"], "timestamp", "2024-01-02 08:00:00"),
        (["2024-01-02", "2024/01/03", "2024年1月4日"], "date", "2024-01-02"),
        (["2024-01-02", "2024/1/3 8:00"], "timestamp", "2024-01-02 00:00:00"),
    ],
)
def test_date_formats(tmp_path, values, logical, first):
    result, table = run(tmp_path, "d.csv", "d\n" + "\n".join(values) + "\n")
    assert types_of(result) == {"d": logical}
    assert str(table.column("d")[0].as_py()) == first


def test_mixed_date_column_with_unknown_format_stays_text_with_warning(tmp_path):
    result, table = run(tmp_path, "d.csv", "到货日期\n2024-01-02\n2024-01-03\n02.01.24\n")
    assert types_of(result) == {"到货日期": "string"}
    assert any("到货日期" in w and "02.01.24" in w for w in result.warnings)
    assert table.column(0).to_pylist()[2] == "02.01.24"


def test_invalid_calendar_date_stays_text(tmp_path):
    result, _ = run(tmp_path, "d.csv", "d\n2024-01-02\n2024-13-45\n")
    assert types_of(result) == {"d": "string"}
    assert any("'d'" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("values", "logical"),
    [
        (["是", "否", "是"], "bool"),
        (["是", "", "否", "NA"], "bool"),  # missing values do not make a yes/no column text
        (["yes", "No"], "bool"),
        (["TRUE", "false", "1", "0"], "bool"),
        (["1", "0", "1"], "int"),
        (["007", "012"], "string"),
        (["-3", "+4", " 5 "], "int"),
        (["1.5", "2e3", "-.5"], "float"),
        (["", "", ""], "string"),
    ],
)
def test_scalar_inference(tmp_path, values, logical):
    result, _ = run(tmp_path, "v.csv", "id,v\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    assert types_of(result)["v"] == logical


def test_nulls_in_typed_columns(tmp_path):
    result, table = run(tmp_path, "v.csv", "a,b\n1,2024-01-02\n,\nNA,N/A\n4,2024-01-05\n")
    assert types_of(result) == {"a": "int", "b": "date"}
    assert table.column("a").to_pylist() == [1, None, None, 4]


def test_later_value_widens_int_to_float_and_rewrites(tmp_path):
    rows = "".join(f"{i}\n" for i in range(200)) + "3.5\n"
    result, table = run(tmp_path, "w.csv", "n\n" + rows, sample_rows=100)
    assert types_of(result) == {"n": "float"}
    assert table.column("n").to_pylist()[-1] == 3.5 and table.num_rows == 201
    warning = next(w for w in result.warnings if "'n'" in w and "float" in w)
    # It names the rows of the batch that held the value (data row 201), not "after row 0".
    first, last = (int(n.replace(",", "")) for n in re.search(r"among rows ([\d,]+) to ([\d,]+)", warning).groups())
    assert first <= 201 <= last, warning


def test_later_text_value_falls_back_to_string_without_losing_values(tmp_path):
    body = "".join(f"{i},2024-01-{i % 28 + 1:02d}\n" for i in range(300)) + "oops,not a date\n"
    # small blocks: the bad values arrive in a later batch than the sample
    result, table = run(tmp_path, "w.csv", "n,d\n" + body, sample_rows=50, max_cell_bytes=1000)
    assert types_of(result) == {"n": "string", "d": "string"}
    assert table.column("n").to_pylist()[0] == "0" and table.column("d").to_pylist()[-1] == "not a date"
    assert len([w for w in result.warnings if "is stored as string" in w]) == 2


def test_safe_identifiers():
    assert safe_identifiers(["Machine ID", "machine_id", "温度", "", "1st", "from", "CamelCase", "a-b c"]) == [
        "machine_id",
        "machine_id_2",
        "col_3",
        "col_4",
        "c_1st",
        "from_",
        "camel_case",
        "a_b_c",
    ]


# --- bad input --------------------------------------------------------------------------


def test_empty_file_is_refused(tmp_path):
    assert "empty" in refused(tmp_path, "e.csv", b"", "empty_file").message
    refused(tmp_path, "e2.csv", b"\xef\xbb\xbf\n\n", "empty_file")


def test_header_only_is_refused(tmp_path):
    error = refused(tmp_path, "h.csv", "a,b,c\n", "no_rows")
    assert "no data rows" in error.message


def test_ragged_rows_name_their_lines(tmp_path):
    error = refused(tmp_path, "r.csv", "a,b\n1,2\n3\n4,5\n6,7,8\n", "ragged_rows")
    assert "lines 3, 5" in error.message and error.details["lines"] == [3, 5]


def test_ragged_rows_skipped_on_request(tmp_path):
    result, table = run(tmp_path, "r.csv", "a,b\n1,2\n3\n4,5\n6,7,8\n", skip_bad_lines=True)
    assert result.rows == 2 and result.skipped_lines == 2
    assert "2 bad lines were skipped (wrong number of fields)." in result.warnings
    assert table.column("a").to_pylist() == [1, 4]


def test_undecodable_bytes_name_offset_and_line(tmp_path):
    data = "a,b\n1,x\n2,温度\n".encode("gb18030")
    error = refused(tmp_path, "u.csv", data, "undecodable", encoding="utf-8")
    assert error.details == {"encoding": "utf-8", "offset": 10, "line": 3}
    assert "offset 10 (line 3)" in error.message


def test_undecodable_bytes_after_the_sample(tmp_path):
    data = b"a,b\n" + b"1,x\n" * 400_000 + "2,温度\n".encode("gb18030")
    error = refused(tmp_path, "u.csv", data, "undecodable")
    assert error.details["line"] == 400_002 and error.details["encoding"] == "utf-8"


def test_binary_file_renamed_csv_is_refused(tmp_path):
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 100
    assert "not text" in refused(tmp_path, "photo.csv", data, "binary_file").message


def test_duplicate_columns_are_refused_by_name(tmp_path):
    error = refused(tmp_path, "d.csv", "温度,a,温度\n1,2,3\n", "duplicate_columns")
    assert "'温度'" in error.message and error.details["columns"] == ["温度"]


def test_too_many_columns_is_refused(tmp_path):
    header = ",".join(f"c{i}" for i in range(10_000))
    error = refused(tmp_path, "w.csv", header + "\n" + ",".join("1" * 10_000) + "\n", "too_many_columns")
    assert "10,000 columns" in error.message and "2,000" in error.message


def test_oversized_cell_is_refused(tmp_path):
    error = refused(tmp_path, "c.csv", "a,b\n1," + "x" * 5000 + "\n", "cell_too_large", max_cell_bytes=1000)
    assert "1,000 bytes" in error.message


def test_oversized_cell_beyond_a_block_is_refused(tmp_path):
    # larger than the reader's block: Arrow cannot even split the row
    refused(tmp_path, "c.csv", "a,b\n1," + "x" * 12 * 1024 * 1024 + "\n", "cell_too_large", max_cell_bytes=1000)


def test_default_cell_limit_is_ten_megabytes(tmp_path):
    error = refused(tmp_path, "c.csv", "a\n" + "y" * (11 * 1024 * 1024) + "\n", "cell_too_large")
    assert "10,485,760 bytes" in error.message


def test_existing_destination_is_untouched_on_error(tmp_path):
    dest = tmp_path / "keep.parquet"
    dest.write_bytes(b"old")
    with pytest.raises(IngestError):
        ingest(write(tmp_path, "x.csv", "a,b\n"), dest)
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == sorted(["keep.parquet", "x.csv"]) or set(os.listdir(tmp_path)) == {
        "keep.parquet",
        "x.csv",
    }


def test_row_groups_are_bounded(tmp_path):
    body = "".join(f"{i},{i * 0.5}\n" for i in range(10_000))
    result, _ = run(tmp_path, "g.csv", "a,b\n" + body, row_group_rows=3000)
    meta = pq.ParquetFile(tmp_path / "out" / "data.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3000, 3000, 3000, 1000]
    assert result.rows == 10_000


# --- bounded memory ---------------------------------------------------------------------

MEMORY_PROBE = textwrap.dedent(
    """
    import resource, sys
    import pyarrow, pyarrow.csv, pyarrow.parquet, charset_normalizer
    from datalake.engine.ingest import ingest
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = ingest(sys.argv[1], sys.argv[2])
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(result.rows, (after - before) * 1024)
    """
)


def _sensor_csv(path: Path, target_bytes: int) -> int:
    import numpy as np
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(7)
    n = 200_000
    rows = 0
    with open(path, "wb") as f:
        f.write("时间,设备,振动,温度,电流,转速,状态\n".encode())
        options = pcsv.WriteOptions(include_header=False)
        while f.tell() < target_bytes:
            start = np.datetime64("2024-01-01T00:00:00") + np.arange(rows, rows + n).astype("timedelta64[s]")
            table = pa.table(
                {
                    "t": pa.array(np.datetime_as_string(start, unit="s")),
                    "m": pa.array(np.char.add("M", (np.arange(n) % 40).astype(str))),
                    "v": rng.normal(0.5, 0.1, n),
                    "temp": rng.normal(60, 5, n),
                    "i": rng.normal(3, 0.2, n),
                    "rpm": rng.integers(1000, 3000, n),
                    "s": pa.array(np.where(rng.random(n) < 0.01, "故障", "正常")),
                }
            )
            pcsv.write_csv(table, f, options)
            rows += n
    return rows


def test_bounded_memory_on_a_200_mb_csv(tmp_path):
    src = tmp_path / "sensors.csv"
    rows = _sensor_csv(src, 200 * 1024 * 1024)
    dest = tmp_path / "sensors.parquet"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(src), str(dest)], capture_output=True, text=True, env=env, check=True
    )
    ingested, growth = (int(x) for x in out.stdout.split())
    assert ingested == rows
    assert growth < 320 * 1024 * 1024, f"peak RSS grew by {growth / 2**20:.0f} MiB on a 200 MB file"
    assert pq.ParquetFile(dest).metadata.num_rows == rows


def test_progress_is_reported(tmp_path):
    seen = []
    body = "".join(f"{i},x\n" for i in range(50_000))
    run(tmp_path, "p.csv", "a,b\n" + body, progress=lambda done, total: seen.append((done, total)))
    assert seen and all(total > 0 and 0 <= done <= total for done, total in seen)


def test_malformed_json_is_refused(tmp_path):
    error = refused(tmp_path, "bad.json", '[{"a": 1}, {"a": ', "parse_error")
    assert "JSON" in error.message


def test_no_django_in_the_engine():
    code = "import sys, datalake.engine.ingest; print('django' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"


def test_undecodable_gb18030_bytes_are_located(tmp_path):
    data = "名称,值\n甲,1\n".encode("gb18030") * 10 + b"\x81\x20,2\n"
    error = refused(tmp_path, "g.csv", data, "undecodable", encoding="gb18030")
    assert error.details["line"] == 21 and error.details["offset"] == len("名称,值\n甲,1\n".encode("gb18030")) * 10


def test_cell_larger_than_the_read_block_but_within_the_limit_is_kept(tmp_path):
    big = "z" * (3 * 1024 * 1024)
    result, table = run(tmp_path, "c.csv", f"a,b\n1,{big}\n2,small\n")
    assert result.rows == 2 and table.column("b").to_pylist() == [big, "small"]
