"""Stream a Parquet file out as CSV, one record batch at a time, safe to open in Excel.

    with open("v3.csv", "wb") as out:
        rows = export_csv("v3.parquet", out, names={"col_1": "温度"})
    StreamingHttpResponse(export_csv_iter("v3.parquet", names=names), content_type="text/csv")

Promises (tests/datalake/test_export.py pins them):
- Memory stays bounded: `ParquetFile.iter_batches` reads `batch_rows` rows at a time and each
  batch is written with pyarrow's CSV writer before the next is read. Every value is rendered
  on its own, so any `batch_rows` gives the same bytes.
- The header carries the original column names (`names`, as the ingest engine keeps them);
  with `names`, exactly those columns are written, in that order, as `profile.source_sql` does.
- Formula injection: a text cell (or header) beginning with `=`, `+`, `-`, `@`, tab or carriage
  return gets a leading `'`, so a spreadsheet shows it as text instead of running it.
  Numbers are not text cells: -5 in a numeric column stays -5.
- Values read as in the preview: NaN and infinities are empty cells, binary is hex, timestamps
  lose their fractional seconds only when these are zero (`2024-01-02 08:00:00`).
- Lines end with CRLF (RFC 4180).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from .profile import _jsonable

BOM = b"\xef\xbb\xbf"
EOL = "\r\n"
FORMULA_START = r"^[=+\-@\t\r]"


def export_csv(
    path: str | os.PathLike,
    out: BinaryIO,
    *,
    names: dict[str, str] | None = None,
    batch_rows: int = 65536,
    utf8_bom: bool = True,
) -> int:
    """Write the Parquet file at `path` to the binary stream `out` as UTF-8 CSV; return the rows written.

    `utf8_bom` (default on) starts the file with the UTF-8 byte-order mark: Excel opens a CSV
    without one in the system's ANSI code page (GBK on Chinese Windows), turning Chinese
    headers and cells into mojibake. Readers that know UTF-8 skip it (Python: `utf-8-sig`).
    """
    rows = 0
    for chunk, count in _chunks(path, names, batch_rows, utf8_bom):
        out.write(chunk)
        rows += count
    return rows


def export_csv_iter(
    path: str | os.PathLike,
    *,
    names: dict[str, str] | None = None,
    batch_rows: int = 65536,
    utf8_bom: bool = True,
) -> Iterator[bytes]:
    """The same bytes as `export_csv`, as chunks (the header, then one per batch) for StreamingHttpResponse."""
    for chunk, _ in _chunks(path, names, batch_rows, utf8_bom):
        yield chunk


def _chunks(path, names: dict[str, str] | None, batch_rows: int, utf8_bom: bool) -> Iterator[tuple[bytes, int]]:
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ValueError(f"batch_rows must be a whole number at least 1, not {batch_rows!r}.")
    with pq.ParquetFile(path) as parquet:
        stored = parquet.schema_arrow.names
        if names:
            missing = [c for c in names if c not in stored]
            if missing:
                raise ValueError(f"names refers to columns the file does not have: {', '.join(missing)}.")
            columns = list(names)
        else:
            columns = stored
        header = io.StringIO()
        csv.writer(header, lineterminator=EOL).writerow([_escape_text((names or {}).get(c, c)) for c in columns])
        yield (BOM if utf8_bom else b"") + header.getvalue().encode("utf-8"), 0

        options = pcsv.WriteOptions(include_header=False, eol=EOL)
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns, use_threads=False):
            cells = pa.RecordBatch.from_arrays([_cells(column) for column in batch.columns], names=columns)
            sink = pa.BufferOutputStream()
            pcsv.write_csv(cells, sink, options)
            yield sink.getvalue().to_pybytes(), batch.num_rows


def _cells(array: pa.Array) -> pa.Array:
    """`array` as the CSV writer should render it: text escaped, the rest in the preview's forms."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        return _cells(array.dictionary_decode())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _escape(array)
    if pa.types.is_string_view(kind):
        return _escape(array.cast(pa.string()))
    if pa.types.is_floating(kind):
        return pc.if_else(pc.is_finite(array), array, pa.scalar(None, kind))
    if pa.types.is_timestamp(kind):
        return _trim_seconds(array, pa.timestamp("s", kind.tz))
    if pa.types.is_time(kind):
        return _trim_seconds(array, pa.time32("s"))
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return pa.array([None if v is None else v.hex() for v in array.to_pylist()], pa.string())
    if (
        pa.types.is_null(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_date(kind)
    ):
        return array
    # Lists, structs, maps, durations, intervals: Python renders them (nested ones as JSON).
    return _escape(pa.array([_text(v) for v in array.to_pylist()], pa.string()))


def _escape(array: pa.Array) -> pa.Array:
    risky = pc.match_substring_regex(array, FORMULA_START)
    return pc.if_else(risky, pc.binary_join_element_wise("'", array, ""), array)


def _escape_text(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _trim_seconds(array: pa.Array, seconds_type: pa.DataType) -> pa.Array:
    """Text of each value, without a fractional part when it is zero (Excel reads `08:00:00`, not `08:00:00.000000`)."""
    whole = array.cast(seconds_type, safe=False)
    exact = pc.equal(whole.cast(array.type), array)
    return pc.if_else(exact, whole.cast(pa.string()), array.cast(pa.string()))


def _text(value) -> str | None:
    if value is None:
        return None
    value = _jsonable(value)
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
