"""Convert one uploaded file to one zstd Parquet file, in bounded memory.

    result = ingest("upload.csv.gz", "out.parquet", IngestOptions(encoding=None))

The file is read as a stream of Arrow record batches (pyarrow's CSV reader, duckdb's JSON
reader, Parquet row groups, Excel rows in chunks); text columns get types inferred on the
first `sample_rows` rows and each batch is converted with them. A later value that does
not fit widens its column (int → float, date → timestamp, otherwise string) and the file
is written again from the start, once, with the final types (`_run`), so no value is lost
and no batch crashes; the result lists a warning for each widened column.

Decisions (the tests in tests/datalake/test_ingest.py pin them):
- A header with no data rows is refused (`no_rows`): a dataset version has rows.
- Duplicate column names are refused naming them; empty names become `column_<n>` with a
  warning.
- Parquet columns are named by their safe identifier (SQL needs no quoting); the original
  name is kept in the field metadata (`lepton.name`) and in `IngestResult.columns`.
- JSON and Parquet keep the types their reader gives; only CSV/TSV and Excel cells, which
  are text, get types inferred.
- The Parquet is written to a temporary name beside the destination and renamed into place,
  so a crash leaves either nothing or the whole file there.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import queue
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from . import sniff
from .errors import IngestError, gettext_noop, ngettext, phrase
from .infer import STRING_TYPE, ColumnType, convert, infer, join
from .types import MB, ColumnInfo, IngestOptions, IngestResult

NULL_VALUES = ["", "NA", "N/A", "n/a", "null", "NULL", "None", "NaN", "nan", "#N/A", "-"]
ZIP_IGNORED = ("__MACOSX/", ".DS_Store", "Thumbs.db")
BAD_LINES_REPORTED = 10
EXCEL_BATCH_ROWS = 50_000
COPY_CHUNK = MB
SMALL_BLOCK = 2 * MB


class _Restart(Exception):
    """The source changed how it reads (a larger CSV block); write again from the start."""


@dataclass
class _Source:
    """One readable table: original column names, and a fresh batch iterator per pass."""

    names: list[str]
    infer_text: bool  # whether string columns get types inferred (CSV, Excel)
    detected: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    skipped_lines: int = 0

    def batches(self) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def position(self) -> int:
        return 0


def ingest(source_path: str | os.PathLike, dest_path: str | os.PathLike, options: IngestOptions | None = None) -> IngestResult:
    """Convert `source_path` to zstd Parquet at `dest_path`; raise IngestError for bad input.

    On any error nothing exists at `dest_path` that was not there before.
    """
    options = options or IngestOptions()
    source_path, dest_path = os.fspath(source_path), os.fspath(dest_path)
    dest_dir = os.path.dirname(os.path.abspath(dest_path))
    os.makedirs(dest_dir, exist_ok=True)
    source_bytes = os.path.getsize(source_path)
    with tempfile.TemporaryDirectory(dir=options.temp_dir or dest_dir, prefix=".ingest-") as work:
        data_path, name, compression = _unwrap(source_path, os.path.basename(source_path), work, options)
        fmt = (options.format or sniff.detect_format(data_path, name)).lower()
        if fmt in ("gzip", "zip"):
            raise IngestError(
                IngestError.ARCHIVE, gettext_noop("An archive inside an archive is not supported; upload the data file.")
            )
        source = _open(fmt, data_path, options)
        tmp_parquet = os.path.join(dest_dir, f".{os.path.basename(dest_path)}.{uuid.uuid4().hex}.tmp")
        try:
            columns, rows, warnings = _run(source, tmp_parquet, options, os.path.getsize(data_path))
            digest, size = _sha256(tmp_parquet)
            os.replace(tmp_parquet, dest_path)
        finally:
            if os.path.exists(tmp_parquet):
                os.unlink(tmp_parquet)
    detected = source.detected
    return IngestResult(
        columns=columns,
        rows=rows,
        bytes=size,
        sha256=digest,
        source_bytes=source_bytes,
        format=fmt,
        encoding=detected.get("encoding"),
        delimiter=detected.get("delimiter"),
        quote_char=detected.get("quote_char"),
        header=detected.get("header"),
        sheet=detected.get("sheet"),
        compression=compression,
        skipped_lines=source.skipped_lines,
        warnings=warnings,
    )


# --- wrappers ---------------------------------------------------------------------------


def _too_large(limit: int) -> IngestError:
    return IngestError(
        IngestError.TOO_LARGE,
        phrase(
            gettext_noop(
                "The archive expands to more than %(limit)s bytes, the limit for one upload; "
                "upload the data uncompressed or split it."
            ),
            limit=f"{limit:,}",
        ),
        {"limit": limit},
    )


def _copy_limited(src, dst_path: str, limit: int) -> None:
    total = 0
    with open(dst_path, "wb") as dst:
        while chunk := src.read(COPY_CHUNK):
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
            dst.write(chunk)


def _unwrap(path: str, name: str, work: str, options: IngestOptions) -> tuple[str, str, str | None]:
    """Decompress gzip or a single-file zip into `work` (bounded by max_decompressed_bytes)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if options.format in ("xlsx", "xls", "parquet"):
        return path, name, None
    limit = options.max_decompressed_bytes
    if head.startswith(b"\x1f\x8b"):
        inner = name[:-3] if name.lower().endswith(".gz") else name
        out = os.path.join(work, "data")
        try:
            with gzip.open(path, "rb") as g:
                _copy_limited(g, out, limit)
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise IngestError(
                IngestError.ARCHIVE, phrase(gettext_noop("The gzip file is damaged or truncated (%(error)s)."), error=str(e))
            ) from None
        return out, inner, "gzip"
    if head.startswith(b"PK") and sniff.detect_format(path, name) == "zip":
        with zipfile.ZipFile(path) as z:
            members = [i for i in z.infolist() if not i.is_dir() and not any(part in i.filename for part in ZIP_IGNORED)]
            if len(members) != 1:
                listed = ", ".join(i.filename for i in members[:20]) or gettext_noop("none")
                raise IngestError(
                    IngestError.ARCHIVE,
                    phrase(
                        gettext_noop("A zip upload must hold exactly one data file; this one holds %(count)s (%(files)s)."),
                        count=len(members),
                        files=listed,
                    ),
                    {"members": [i.filename for i in members]},
                )
            member = members[0]
            if member.file_size > limit:
                raise _too_large(limit)
            out = os.path.join(work, "data")
            try:
                with z.open(member) as src:
                    _copy_limited(src, out, limit)  # the declared size may lie
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise IngestError(
                    IngestError.ARCHIVE, phrase(gettext_noop("The zip file is damaged (%(error)s)."), error=str(e))
                ) from None
            return out, os.path.basename(member.filename), "zip"
    return path, name, None


# --- sources ----------------------------------------------------------------------------


def _open(fmt: str, path: str, options: IngestOptions) -> _Source:
    if fmt in ("csv", "tsv", "txt"):
        return _CsvSource(path, options, tsv=fmt == "tsv")
    if fmt == "json":
        return _JsonSource(path, options)
    if fmt == "parquet":
        return _ParquetSource(path)
    if fmt in ("xlsx", "xls", "xlsm"):
        return _ExcelSource(path, options)
    raise IngestError(
        IngestError.UNSUPPORTED_FORMAT, phrase(gettext_noop("The format '%(format)s' is not supported."), format=fmt)
    )


def _clean_names(raw: list[str]) -> tuple[list[str], list[str]]:
    names, warnings = [], []
    for i, n in enumerate(raw, start=1):
        n = (n or "").strip()
        if not n:
            n = f"column_{i}"
            warnings.append(phrase(gettext_noop("Column %(position)s has no name; it is named '%(name)s'."), position=i, name=n))
        names.append(n)
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    duplicates = [n for n, c in counts.items() if c > 1]
    if duplicates:
        raise IngestError(
            IngestError.DUPLICATE_COLUMNS,
            phrase(
                gettext_noop("Column names must be unique; these appear more than once: %(columns)s"),
                columns=", ".join(f"'{d}'" for d in duplicates),
            ),
            {"columns": duplicates},
        )
    return names, warnings


def _check_width(n: int, options: IngestOptions) -> None:
    if n > options.max_columns:
        raise IngestError(
            IngestError.TOO_MANY_COLUMNS,
            phrase(
                gettext_noop("The file has %(columns)s columns; at most %(limit)s are allowed."),
                columns=f"{n:,}",
                limit=f"{options.max_columns:,}",
            ),
            {"columns": n, "limit": options.max_columns},
        )


def _cell_too_large(limit: int) -> IngestError:
    return IngestError(
        IngestError.CELL_TOO_LARGE,
        phrase(gettext_noop("A single cell is larger than %(limit)s bytes, the limit for one value."), limit=f"{limit:,}"),
        {"limit": limit},
    )


class _CsvSource(_Source):
    def __init__(self, path: str, options: IngestOptions, tsv: bool = False):
        sample = sniff.read_sample(path)
        if not sample.lstrip(b"\xef\xbb\xbf").strip():
            raise IngestError(IngestError.EMPTY_FILE, gettext_noop("The file is empty."))
        if b"\x00" in sample and not options.encoding:
            raise IngestError(
                IngestError.BINARY_FILE,
                gettext_noop("The file is not text (it contains binary bytes); upload a CSV, TSV, JSON, Excel or Parquet file."),
            )
        encoding = sniff.normalize_encoding(options.encoding) if options.encoding else None
        if encoding is None:
            try:
                encoding = sniff.detect_encoding(sample)
            except IngestError:
                raise IngestError(
                    IngestError.BINARY_FILE,
                    gettext_noop("The file is not readable text in any known encoding; if it is text, choose its encoding."),
                ) from None
        text = sniff.decode_sample(sample, encoding, path)
        quote_char = options.quote_char or sniff.sniff_quote_char(text)
        delimiter = options.delimiter or ("\t" if tsv else sniff.sniff_delimiter(text, quote_char))
        rows = sniff.sample_rows(text, delimiter, quote_char)
        header = options.header if options.header is not None else sniff.sniff_header(rows)
        width = len(rows[0]) if rows else 1
        _check_width(width, options)
        if header:
            names, warnings = _clean_names(rows[0] if rows else [])
        else:
            names, warnings = [f"column_{i}" for i in range(1, width + 1)], []
        super().__init__(names=names, infer_text=True, warnings=warnings)
        self.path = path
        self.options = options
        self.encoding = encoding
        self.detected = {"encoding": encoding, "delimiter": delimiter, "quote_char": quote_char, "header": header}
        # A row must fit in one block. Small blocks keep memory flat (with 16 MB blocks the
        # reader's RSS grows with the file); a row larger than the block restarts the pass
        # (`_Restart`) with a block larger than the cell limit, so that an oversized cell is
        # measured and named instead of failing as a parse error.
        self.block_size = SMALL_BLOCK
        self.large_block = int(min(max(options.max_cell_bytes * 1.5 + MB, SMALL_BLOCK), 512 * MB))
        self._file = None

    def position(self) -> int:
        try:
            return self._file.tell() if self._file else 0
        except (ValueError, OSError):
            return 0

    def batches(self) -> Iterator[pa.RecordBatch]:
        self.skipped_lines = 0
        bad_lines: list[int] = []
        width = len(self.names)

        def on_bad_row(row) -> str:
            self.skipped_lines += 1
            if len(bad_lines) < BAD_LINES_REPORTED:
                bad_lines.append(row.number if row.number is not None and row.number >= 0 else -1)
            if self.options.skip_bad_lines or len(bad_lines) < BAD_LINES_REPORTED:
                return "skip"
            return "error"

        fields = [f"f{i}" for i in range(width)]
        read = pcsv.ReadOptions(
            column_names=fields,
            skip_rows=1 if self.detected["header"] else 0,
            block_size=self.block_size,
            encoding="utf8" if self.encoding == "utf-8" else self.encoding,
            use_threads=False,  # the bad-row handler gets line numbers only without threads
        )
        parse = pcsv.ParseOptions(
            delimiter=self.detected["delimiter"],
            quote_char=self.detected["quote_char"],
            newlines_in_values=True,
            invalid_row_handler=on_bad_row,
        )
        conv = pcsv.ConvertOptions(
            column_types={f: pa.string() for f in fields},
            null_values=NULL_VALUES,
            strings_can_be_null=True,
        )
        limit = self.options.max_cell_bytes
        with open(self.path, "rb") as f:
            self._file = f
            try:
                reader = pcsv.open_csv(f, read_options=read, parse_options=parse, convert_options=conv)
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        break
                    for col in batch.columns:
                        longest = pc.max(pc.binary_length(col)).as_py()
                        if longest is not None and longest > limit:
                            raise _cell_too_large(limit)
                    yield batch
            except UnicodeDecodeError:
                raise self._undecodable() from None
            except pa.ArrowInvalid as e:
                raise self._arrow_error(e, bad_lines) from None
            finally:
                self._file = None
        if bad_lines and not self.options.skip_bad_lines:
            raise self._ragged(bad_lines)

    def _undecodable(self) -> IngestError:
        where = sniff.find_decode_error(self.path, self.encoding) or (0, 0)
        return sniff.undecodable(self.encoding, *where)

    def _ragged(self, bad_lines: list[int]) -> IngestError:
        lines = ", ".join(str(n) for n in bad_lines if n > 0) + ("…" if self.skipped_lines > len(bad_lines) else "")
        return IngestError(
            IngestError.RAGGED_ROWS,
            phrase(
                gettext_noop("Some rows do not have %(fields)s fields (lines %(lines)s). Fix them, or choose to skip bad lines."),
                fields=len(self.names),
                lines=lines,
            ),
            {"lines": bad_lines, "expected_fields": len(self.names)},
        )

    def _arrow_error(self, e: pa.ArrowInvalid, bad_lines: list[int]) -> Exception:
        text = str(e)
        if "invalid UTF8" in text:
            return self._undecodable()
        if "straddling" in text or "straddles" in text:
            if self.block_size < self.large_block:
                self.block_size = self.large_block
                return _Restart()
            return _cell_too_large(self.options.max_cell_bytes)
        if bad_lines:
            return self._ragged(bad_lines)
        return IngestError(
            IngestError.PARSE_ERROR, phrase(gettext_noop("The file could not be read as CSV: %(error)s"), error=text)
        )


class _JsonSource(_Source):
    def __init__(self, path: str, options: IngestOptions):
        import duckdb

        if not sniff.read_sample(path, 65536).strip():
            raise IngestError(IngestError.EMPTY_FILE, gettext_noop("The file is empty."))
        self.path = path
        self.options = options
        self.con = duckdb.connect(config={"memory_limit": "1GB", "threads": 2})
        try:
            rel = self.con.sql(
                "select * from read_json(?, format='auto', records='auto', sample_size=-1, "
                f"maximum_object_size={max(options.max_cell_bytes * 2, 16 * MB)})",
                params=[path],
            )
            names = [c for c in rel.columns]
        except duckdb.Error as e:
            raise IngestError(IngestError.PARSE_ERROR, _not_json(e)) from None
        _check_width(len(names), options)
        names, warnings = _clean_names(names)
        super().__init__(names=names, infer_text=False, warnings=warnings, detected={"encoding": "utf-8"})

    def batches(self) -> Iterator[pa.RecordBatch]:
        import duckdb

        try:
            reader = self.con.sql(
                "select * from read_json(?, format='auto', records='auto', sample_size=-1, "
                f"maximum_object_size={max(self.options.max_cell_bytes * 2, 16 * MB)})",
                params=[self.path],
            ).to_arrow_reader(65_536)
            yield from reader
        except duckdb.Error as e:
            raise IngestError(IngestError.PARSE_ERROR, _not_json(e)) from None


def _not_json(error: Exception):
    return phrase(gettext_noop("The file could not be read as JSON: %(error)s"), error=str(error))


class _ParquetSource(_Source):
    def __init__(self, path: str):
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as e:
            raise IngestError(
                IngestError.PARSE_ERROR, phrase(gettext_noop("The file could not be read as Parquet: %(error)s"), error=str(e))
            ) from None
        names, warnings = _clean_names(self.file.schema_arrow.names)
        super().__init__(names=names, infer_text=False, warnings=warnings)

    def batches(self) -> Iterator[pa.RecordBatch]:
        yield from self.file.iter_batches(batch_size=65_536)


def _cell_text(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ") if hasattr(value, "hour") and hasattr(value, "day") else value.isoformat()
    return str(value)


class _ExcelSource(_Source):
    def __init__(self, path: str, options: IngestOptions):
        from python_calamine import CalamineWorkbook

        try:
            self.book = CalamineWorkbook.from_path(path)
        except Exception as e:  # calamine raises its own error types per format
            raise IngestError(
                IngestError.PARSE_ERROR, phrase(gettext_noop("The file could not be read as Excel: %(error)s"), error=str(e))
            ) from None
        sheets = list(self.book.sheet_names)
        warnings: list[str] = []
        if options.sheet is not None:
            if options.sheet not in sheets:
                raise IngestError(
                    IngestError.SHEET_NOT_FOUND,
                    phrase(
                        gettext_noop("The workbook has no sheet '%(sheet)s'; its sheets are: %(sheets)s."),
                        sheet=options.sheet,
                        sheets=", ".join(sheets),
                    ),
                    {"sheets": sheets},
                )
            sheet = options.sheet
        else:
            with_data = [s for s in sheets if self.book.get_sheet_by_name(s).height > 0]
            if len(with_data) == 1:
                sheet = with_data[0]
                if len(sheets) > 1:
                    warnings.append(
                        phrase(gettext_noop("Only sheet '%(sheet)s' has data; the other sheets are empty."), sheet=sheet)
                    )
            elif not with_data:
                raise IngestError(IngestError.EMPTY_FILE, gettext_noop("The workbook has no data in any sheet."))
            else:
                raise IngestError(
                    IngestError.SHEET_REQUIRED,
                    phrase(gettext_noop("The workbook has several sheets; choose one: %(sheets)s."), sheets=", ".join(with_data)),
                    {"sheets": with_data},
                )
        self.sheet = sheet
        rows = self.book.get_sheet_by_name(sheet).iter_rows()
        first = next(iter(rows), None)
        if first is None:
            raise IngestError(IngestError.EMPTY_FILE, gettext_noop("The sheet is empty."))
        _check_width(len(first), options)
        header = options.header if options.header is not None else True
        if header:
            names, name_warnings = _clean_names([_cell_text(v) or "" for v in first])
        else:
            names, name_warnings = [f"column_{i}" for i in range(1, len(first) + 1)], []
        self.header = header
        self.options = options
        super().__init__(
            names=names, infer_text=True, warnings=warnings + name_warnings, detected={"sheet": sheet, "header": header}
        )

    def batches(self) -> Iterator[pa.RecordBatch]:
        rows = iter(self.book.get_sheet_by_name(self.sheet).iter_rows())
        if self.header:
            next(rows, None)
        width = len(self.names)
        limit = self.options.max_cell_bytes
        chunk: list[list] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= EXCEL_BATCH_ROWS:
                yield self._batch(chunk, width, limit)
                chunk = []
        if chunk:
            yield self._batch(chunk, width, limit)

    def _batch(self, chunk: list[list], width: int, limit: int) -> pa.RecordBatch:
        columns = []
        for i in range(width):
            texts = [_cell_text(r[i]) if i < len(r) else None for r in chunk]
            if any(t is not None and len(t) > limit for t in texts):
                raise _cell_too_large(limit)
            columns.append(pa.array(texts, pa.string()))
        batch = pa.RecordBatch.from_arrays(columns, names=[f"f{i}" for i in range(width)])
        # Rows Excel reports but that hold nothing (formatting only) are not data.
        keep = None
        for col in columns:
            valid = pc.is_valid(col)
            keep = valid if keep is None else pc.or_(keep, valid)
        return batch.filter(keep) if keep is not None else batch


# --- the pass ---------------------------------------------------------------------------


def _logical(t: pa.DataType, ctype: ColumnType | None) -> str:
    if ctype is not None:
        return ctype.kind
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp_tz" if t.tz else "timestamp"
    return "other"


def _run(source: _Source, tmp_path: str, options: IngestOptions, total_bytes: int) -> tuple[list[ColumnInfo], int, list]:
    """Write the Parquet; when a later batch widens a column, write it once more with the final types."""
    types: list[ColumnType | None] | None = None
    warnings: list[str] = list(source.warnings)
    for _attempt in range(4):
        try:
            outcome = _write_pass(source, tmp_path, options, total_bytes, types)
        except _Restart:
            continue
        types, rows, schema, widened, pass_warnings = outcome
        warnings += pass_warnings
        if not widened:
            break
    else:  # pragma: no cover - widening is monotone, the second pass cannot widen again
        raise IngestError(IngestError.PARSE_ERROR, gettext_noop("The column types could not be settled."))
    if rows == 0:
        raise IngestError(IngestError.NO_ROWS, gettext_noop("The file has column names but no data rows."))
    if source.skipped_lines:
        warnings.append(
            ngettext(
                "%(n)s bad line was skipped (wrong number of fields).",
                "%(n)s bad lines were skipped (wrong number of fields).",
                source.skipped_lines,
            )
        )
    identifiers = sniff.safe_identifiers(source.names)
    columns = [
        ColumnInfo(name=n, identifier=i, type=str(f.type), logical=_logical(f.type, t))
        for n, i, f, t in zip(source.names, identifiers, schema, types, strict=True)
    ]
    return columns, rows, warnings


WRITE_QUEUE = 4  # row groups waiting for the writer thread


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Dictionary-encode only text columns: on floats and timestamps it costs time and rarely saves
    space (bench/ingest.py measured 11.4 s → 9.1 s and a smaller file on its 1 GB sensor CSV)."""
    return [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


def _write_pass(source: _Source, tmp_path: str, options: IngestOptions, total_bytes: int, types):
    identifiers = sniff.safe_identifiers(source.names)
    warnings: list[str] = []
    widened = False
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    buffered: list[pa.RecordBatch] = []
    buffered_rows = 0
    group_rows = options.row_group_rows
    rows = 0
    announced: set[int] = set()

    # Reading and converting (this thread) overlap with Parquet encoding (a writer thread): Arrow
    # releases the GIL in both, so two cores work at once (bench/ingest.py). The queue is short,
    # so memory grows by a few row groups at most.
    writes: queue.Queue = queue.Queue(maxsize=WRITE_QUEUE)
    write_errors: list[BaseException] = []
    write_thread: threading.Thread | None = None

    def write_loop() -> None:
        while (table := writes.get()) is not None:
            if write_errors:
                continue  # drain: the reader learns of the error at its next hand-over
            try:
                writer.write_table(table, row_group_size=group_rows)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the reading thread
                write_errors.append(exc)

    def flush(final: bool) -> None:
        nonlocal buffered, buffered_rows, write_thread
        if not buffered:
            return
        table = pa.Table.from_batches(buffered, schema=schema)
        full = table.num_rows if final else table.num_rows // group_rows * group_rows
        if full:
            if write_thread is None:
                write_thread = threading.Thread(target=write_loop, name="ingest-writer", daemon=True)
                write_thread.start()
            if write_errors:
                raise write_errors[0]
            writes.put(table.slice(0, full))
        rest = table.slice(full)
        buffered = rest.to_batches() if rest.num_rows else []
        buffered_rows = rest.num_rows

    try:
        for batch in source.batches():
            if types is None:
                types = _infer_types(source, batch, options, warnings)
            arrays = []
            for i, col in enumerate(batch.columns):
                ctype = types[i]
                if ctype is None:
                    arrays.append(col if not pa.types.is_null(col.type) else col.cast(pa.string()))
                    continue
                converted = convert(col, ctype)
                if converted.failures:
                    wider = join(ctype, infer(col, source.names[i]).type)
                    if wider == ctype:
                        wider = STRING_TYPE
                    if i not in announced:
                        announced.add(i)
                        warnings.append(
                            phrase(
                                gettext_noop(
                                    "Column '%(column)s' has values that are not %(kind)s among rows %(first)s to "
                                    "%(last)s (e.g. '%(example)s'); it is stored as %(wider)s."
                                ),
                                column=source.names[i],
                                kind=ctype.kind,
                                first=f"{rows + 1:,}",
                                last=f"{rows + batch.num_rows:,}",
                                example=converted.example,
                                wider=wider.kind,
                            )
                        )
                    types[i] = wider
                    widened = True
                    converted = convert(col, wider)
                arrays.append(converted.array)
            rows += batch.num_rows
            if widened:
                continue  # keep checking the rest of the file; the next pass writes it
            out = pa.RecordBatch.from_arrays(arrays, names=identifiers)
            if writer is None:
                schema = _with_names(out.schema, source.names)
                group_rows = _group_rows(out, options)
                writer = pq.ParquetWriter(
                    tmp_path, schema, compression="zstd", compression_level=3, use_dictionary=_dictionary_columns(schema)
                )
            out = pa.RecordBatch.from_arrays(arrays, schema=schema)
            buffered.append(out)
            buffered_rows += out.num_rows
            if buffered_rows >= group_rows:
                flush(final=False)
            if options.progress:
                options.progress(source.position() or 0, total_bytes)
        if not widened:
            if writer is None:
                schema = _empty_schema(source, types, identifiers)
                writer = pq.ParquetWriter(tmp_path, schema, compression="zstd")
            flush(final=True)
    finally:
        if write_thread is not None:
            writes.put(None)
            write_thread.join()
        if writer is not None:
            writer.close()
    if write_errors:
        raise write_errors[0]
    return types, rows, schema, widened, warnings


def _infer_types(source: _Source, batch: pa.RecordBatch, options: IngestOptions, warnings: list[str]):
    sample = batch.slice(0, options.sample_rows)
    types: list[ColumnType | None] = []
    for i, col in enumerate(sample.columns):
        if source.infer_text and pa.types.is_string(col.type):
            inferred = infer(col, source.names[i])
            if inferred.warning:
                warnings.append(inferred.warning)
            types.append(inferred.type)
        else:
            types.append(None)
    return types


def _empty_schema(source: _Source, types, identifiers) -> pa.Schema:
    fields = [
        pa.field(i, (t or STRING_TYPE).arrow()) for i, t in zip(identifiers, types or [None] * len(identifiers), strict=True)
    ]
    return _with_names(pa.schema(fields), source.names)


def _with_names(schema: pa.Schema, names: list[str]) -> pa.Schema:
    fields = [f.with_metadata({"lepton.name": n}) for f, n in zip(schema, names, strict=True)]
    meta = {
        "lepton.columns": json.dumps(
            [{"name": n, "identifier": f.name} for n, f in zip(names, schema, strict=True)], ensure_ascii=False
        )
    }
    return pa.schema(fields, metadata=meta)


def _group_rows(batch: pa.RecordBatch, options: IngestOptions) -> int:
    per_row = max(batch.nbytes / max(batch.num_rows, 1), 1)
    return int(max(1024, min(options.row_group_rows, options.row_group_bytes // per_row)))


def _sha256(path: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        while chunk := f.read(COPY_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


__all__ = ["ingest", "IngestOptions", "IngestResult", "ColumnInfo", "IngestError"]
