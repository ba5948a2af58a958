"""Plain data in and out of the ingest engine (no Django, no Arrow objects in the result)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True)
class IngestOptions:
    """What the uploader chose; `None` means "detect it".

    format: "csv", "tsv", "json", "parquet", "xlsx", "xls" (the wrapper, gzip or zip, is
    always detected from the bytes).
    """

    format: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    quote_char: str | None = None
    header: bool | None = None
    sheet: str | None = None
    skip_bad_lines: bool = False
    max_columns: int = 2000
    max_cell_bytes: int = 10 * MB
    max_decompressed_bytes: int = 20 * GB
    row_group_rows: int = 128 * 1024
    row_group_bytes: int = 128 * MB
    sample_rows: int = 50_000
    temp_dir: str | None = None
    # Called now and then with (source bytes read, source bytes total); the ingest job
    # reports it as progress.
    progress: Callable[[int, int], None] | None = None


@dataclass(frozen=True)
class ColumnInfo:
    name: str  # as in the file (Chinese kept); empty headers become column_<n>
    identifier: str  # the Parquet column name: lowercase ASCII, unique, never a SQL keyword
    type: str  # Arrow type as text, e.g. "int64", "timestamp[us, tz=UTC]", "date32[day]"
    logical: str  # "string", "int", "float", "bool", "date", "timestamp", "timestamp_tz", or "other"


@dataclass(frozen=True)
class IngestResult:
    columns: list[ColumnInfo]
    rows: int
    bytes: int  # size of the written Parquet file
    sha256: str  # of the written Parquet file
    source_bytes: int
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    quote_char: str | None = None
    header: bool | None = None
    sheet: str | None = None
    compression: str | None = None  # "gzip" or "zip" when the upload was wrapped
    skipped_lines: int = 0
    warnings: list[str] = field(default_factory=list)
