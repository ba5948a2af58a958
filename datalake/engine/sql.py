"""Read-only SQL over the Parquet files of dataset versions, in a throw-away worker process.

    tables = {"quality.inspections": TableSource("v3.parquet", {"col_1": "温度", "col_2": "结果"})}
    result = run_query('SELECT "结果", avg("温度") FROM quality.inspections GROUP BY 1', tables)
    export_query_csv("SELECT * FROM quality.inspections", tables, "/tmp/out.csv")

Promises (tests/datalake/test_sql.py pins them):
- Only the views in `tables` exist: `quality.inspections` is duckdb schema `quality`, view
  `inspections`, and it shows the ORIGINAL column names (Chinese included) over the safe
  identifiers the ingest engine stores.
- Only one read statement runs: SELECT, WITH … SELECT, VALUES, FROM …, DESCRIBE, SHOW,
  SUMMARIZE, or EXPLAIN of one of them. duckdb's own parser (`extract_statements`) decides,
  in the caller and again in the worker, before anything executes; anything else is refused
  with `not_read_only` or `multiple_statements`.
- Nothing outside the views can be read. The worker creates the views, then sets
  `allowed_paths` to exactly their Parquet files, `enable_external_access = false` (every
  other file, glob, URL or extension directory is refused by duckdb at bind time — views are
  bound when queried, which is why the allow-list is needed for them to keep reading), turns
  off extension auto-install/auto-load and Python replacement scans, and locks the
  configuration. duckdb resolves symlinks before it checks a path, so the allow-list names the
  real files: their paths show in `duckdb_views()` and `duckdb_settings()`, and reading them
  directly with `read_parquet` gives the same rows the views do, nothing more.
- Limits: each query runs in a fresh process (multiprocessing "spawn": a new interpreter that
  holds none of the caller's memory); past `timeout_s` it is terminated and the caller gets
  `timeout`; duckdb's `memory_limit` and `max_temp_directory_size` (spilling goes to that
  private folder, removed afterwards) bound it, and hitting them is `memory`.
- At most `row_cap + 1` rows are fetched (streamed, not materialised) to tell `truncated`.
  Values are JSON-ready: dates ISO 8601, NaN/infinity None, bytes hex, Decimal a float when
  exact and text otherwise, UUIDs and intervals text, lists and structs nested JSON.

Every failure is one `QueryError(code, message)`; the message is written for the analyst and
carries duckdb's own text (trimmed) for syntax and execution errors.
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal

import duckdb

from .errors import Phrase, gettext_noop, phrase
from .profile import _literal, quote

MAX_SQL_CHARS = 100_000
MAX_MESSAGE_CHARS = 1_000
STARTUP_S = 30.0  # a fresh interpreter importing duckdb and binding the views; not part of timeout_s
FETCH_BATCH = 10_000
SIZE_PATTERN = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
ALLOWED = gettext_noop("SELECT, WITH … SELECT, VALUES, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN SELECT")
STATEMENT_STARTS = ("(", "SELECT", "WITH", "VALUES", "FROM", "TABLE", "DESCRIBE", "SHOW", "SUMMARIZE")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class QueryError(Exception):
    """A query that was refused or failed; nothing outside the worker changed."""

    # Stable codes; services and the API match on these.
    EMPTY = "empty"
    SYNTAX = "syntax"
    NOT_READ_ONLY = "not_read_only"
    MULTIPLE_STATEMENTS = "multiple_statements"
    TOO_LONG = "too_long"
    FORBIDDEN = "forbidden"
    UNKNOWN_TABLE = "unknown_table"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    EXECUTION = "execution"
    WORKER_DIED = "worker_died"

    def __init__(self, code: str, message: Phrase | str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __reduce__(self):  # crosses the process boundary intact (a Phrase keeps its template)
        return (QueryError, (self.code, self.message))


@dataclass(frozen=True)
class TableSource:
    """One view's Parquet file and its columns {stored identifier: original name}.

    With no columns, the view shows the file's columns as stored.
    """

    path: str | os.PathLike
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[list]
    row_count_returned: int
    truncated: bool  # more rows than row_cap existed
    elapsed_ms: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ExportResult:
    path: str
    columns: list[str]
    row_count: int
    truncated: bool  # more rows than max_rows existed; the file holds the first max_rows
    elapsed_ms: float

    def as_dict(self) -> dict:
        return asdict(self)


def run_query(
    sql: str,
    tables: Mapping[str, TableSource],
    *,
    row_cap: int = 10_000,
    timeout_s: float = 30.0,
    memory_limit: str = "512MB",
    threads: int = 1,
    temp_limit: str = "1GB",
) -> QueryResult:
    """Run one read-only statement over `tables`; the first `row_cap` rows come back."""
    _check_count("row_cap", row_cap)
    job = _job(sql, tables, timeout_s=timeout_s, memory_limit=memory_limit, threads=threads, temp_limit=temp_limit)
    job |= {"mode": "query", "row_cap": row_cap}
    return QueryResult(**_run(job, timeout_s))


def export_query_csv(
    sql: str,
    tables: Mapping[str, TableSource],
    out_path: str | os.PathLike,
    *,
    max_rows: int = 1_000_000,
    timeout_s: float = 300.0,
    memory_limit: str = "512MB",
    threads: int = 1,
    temp_limit: str = "1GB",
    utf8_bom: bool = True,
) -> ExportResult:
    """Write the result of one read-only statement (its first `max_rows` rows) to `out_path` as CSV.

    UTF-8 (with a byte-order mark by default, so Excel on Chinese Windows reads it), CRLF lines,
    original column names in the header; a text cell starting with = + - @ tab or CR gets a
    leading `'` (formula injection), as datalake/engine/export.py does for version downloads.
    The file appears whole or not at all: it is written to `<out_path>.part` and renamed.
    """
    _check_count("max_rows", max_rows)
    out_path = os.path.abspath(os.fspath(out_path))
    job = _job(sql, tables, timeout_s=timeout_s, memory_limit=memory_limit, threads=threads, temp_limit=temp_limit)
    job |= {"mode": "csv", "max_rows": max_rows, "out_path": out_path, "utf8_bom": bool(utf8_bom)}
    try:
        return ExportResult(**_run(job, timeout_s))
    finally:
        # A killed worker cannot clean up after itself.
        if os.path.exists(out_path + ".part"):
            os.remove(out_path + ".part")


# --- Validation (caller and worker) -------------------------------------------------------


def check_read_only(sql: str) -> None:
    """Refuse anything but a single read statement, by duckdb's parser, without executing it."""
    if not isinstance(sql, str) or not sql.strip():
        raise QueryError(QueryError.EMPTY, phrase(gettext_noop("Write a query: %(allowed)s."), allowed=ALLOWED))
    if len(sql) > MAX_SQL_CHARS:
        raise QueryError(
            QueryError.TOO_LONG,
            phrase(gettext_noop("The query is longer than %(limit)s characters."), limit=f"{MAX_SQL_CHARS:,}"),
        )
    statements = _parse(sql)
    if not statements:
        raise QueryError(QueryError.EMPTY, phrase(gettext_noop("Write a query: %(allowed)s."), allowed=ALLOWED))
    if len(statements) > 1:
        raise QueryError(
            QueryError.MULTIPLE_STATEMENTS,
            phrase(
                gettext_noop("Only one statement can run at a time; this text holds %(count)s. Remove all but one."),
                count=len(statements),
            ),
        )
    statement = statements[0]
    if statement.type == duckdb.StatementType.EXPLAIN:
        inner = _parse(_explained(statement.query))
        if len(inner) == 1 and inner[0].type == duckdb.StatementType.SELECT:
            return
        raise QueryError(
            QueryError.NOT_READ_ONLY,
            phrase(gettext_noop("EXPLAIN works on a read statement only (%(allowed)s)."), allowed=ALLOWED),
        )
    if statement.type != duckdb.StatementType.SELECT:
        kind = statement.type.name.replace("_", " ")
        raise QueryError(
            QueryError.NOT_READ_ONLY,
            phrase(
                gettext_noop("This console only reads data: %(allowed)s. A %(kind)s statement cannot run here."),
                allowed=ALLOWED,
                kind=kind,
            ),
        )


def _parse(sql: str) -> list:
    try:
        return duckdb.extract_statements(sql)
    except duckdb.ParserException as error:
        raise QueryError(QueryError.SYNTAX, _duck_says(error)) from None
    except (ValueError, duckdb.Error) as error:
        # A statement kind the Python client does not even name (e.g. UPDATE EXTENSIONS).
        raise QueryError(
            QueryError.NOT_READ_ONLY, phrase(gettext_noop("This console only reads data: %(allowed)s."), allowed=ALLOWED)
        ) from error


def _explained(query: str) -> str:
    """The statement after `EXPLAIN [ANALYZE] [(options)]`, found with duckdb's tokenizer."""
    # duckdb's tokenizer gives positions in UTF-8 bytes, not characters: slice the bytes.
    data = query.encode()
    tokens = [t for t in duckdb.tokenize(query) if t[1] != duckdb.token_type.comment]
    starts = [t[0] for t in tokens]
    ends = starts[1:] + [len(data)]
    words = [data[s:e].decode(errors="replace").strip() for s, e in zip(starts, ends, strict=True)]
    index, depth = 1, 0  # tokens[0] is EXPLAIN
    while index < len(words):
        word = words[index].upper()
        following = words[index + 1].upper() if index + 1 < len(words) else ""
        if word == "(" and depth == 0 and following in STATEMENT_STARTS:  # EXPLAIN (SELECT …)
            return data[starts[index] :].decode()
        if word == "(":  # options: EXPLAIN (FORMAT json) …
            depth += 1
        elif word == ")":
            depth -= 1
        elif depth == 0 and word not in ("ANALYZE", "ANALYSE", "VERBOSE"):
            return data[starts[index] :].decode()
        index += 1
    return ""


def _check_count(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number at least 1, not {value!r}.")


def _job(sql: str, tables: Mapping[str, TableSource], *, timeout_s, memory_limit, threads, temp_limit) -> dict:
    check_read_only(sql)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not timeout_s > 0:
        raise ValueError(f"timeout_s must be a positive number of seconds, not {timeout_s!r}.")
    for name, size in (("memory_limit", memory_limit), ("temp_limit", temp_limit)):
        if not isinstance(size, str) or not SIZE_PATTERN.match(size.strip()):
            raise ValueError(f"{name} must be a size like '512MB', not {size!r}.")
    _check_count("threads", threads)
    views, seen = [], set()
    for name, source in tables.items():
        schema, _, view = name.rpartition(".")
        if not view or name.count(".") > 1 or (name.count(".") and not schema):
            raise ValueError(f"A view name is 'schema.view' or 'view', not {name!r}.")
        if name.lower() in seen:
            raise ValueError(f"Two views are named {name!r} (names ignore case).")
        seen.add(name.lower())
        views.append(
            {
                "name": name,
                "schema": schema or "main",
                "view": view,
                "path": os.path.abspath(os.fspath(source.path)),
                "columns": dict(source.columns),
            }
        )
    return {
        "sql": sql,
        "views": views,
        "memory_limit": memory_limit.strip(),
        "temp_limit": temp_limit.strip(),
        "threads": threads,
    }


# --- The caller's side of the worker -------------------------------------------------------


def _run(job: dict, timeout_s: float) -> dict:
    """Start a worker, wait for it within the limits, and return its payload or raise its error."""
    context = multiprocessing.get_context("spawn")
    workdir = tempfile.mkdtemp(prefix="lepton-sql-")
    job = job | {"workdir": workdir}
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_worker, args=(sender, job), name="lepton-sql", daemon=True)
    try:
        process.start()
        sender.close()  # so that the worker's exit shows as EOF here
        message = _receive(receiver, STARTUP_S)
        if message is None:
            raise QueryError(
                QueryError.TIMEOUT,
                phrase(gettext_noop("The query worker did not start within %(seconds)s s; try again."), seconds=f"{STARTUP_S:g}"),
            )
        if message[0] == "ready":
            message = _receive(receiver, timeout_s)
            if message is None:
                raise QueryError(
                    QueryError.TIMEOUT,
                    phrase(
                        gettext_noop(
                            "The query stopped: time limit of %(seconds)s s exceeded. "
                            "Filter or aggregate earlier, or add a LIMIT."
                        ),
                        seconds=f"{timeout_s:g}",
                    ),
                )
        if message[0] == "ok":
            return message[1]
        if message[0] == "error":
            raise QueryError(message[1], message[2])
        _stop(process)
        if process.exitcode == -9:
            message = gettext_noop(
                "The query worker stopped unexpectedly (exit code %(code)s). "
                "The machine probably ran out of memory; filter or aggregate earlier."
            )
        else:
            message = gettext_noop("The query worker stopped unexpectedly (exit code %(code)s).")
        raise QueryError(QueryError.WORKER_DIED, phrase(message, code=process.exitcode))
    finally:
        receiver.close()
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def _receive(receiver, seconds: float):
    """The worker's next message, ("died",) when it exited without one, None when none came in time."""
    if not receiver.poll(seconds):
        return None
    try:
        return receiver.recv()
    except EOFError:
        return ("died",)


def _stop(process) -> None:
    if process.pid is None:  # never started
        return
    if process.is_alive():
        process.terminate()
        process.join(2)
    if process.is_alive():
        process.kill()
    process.join()


# --- The worker ------------------------------------------------------------------------------


def _worker(sender, job: dict) -> None:
    """Entry point of the worker process: open the sandbox, run the statement, send one result."""
    try:
        check_read_only(job["sql"])
        con = _sandbox(job)
        sender.send(("ready",))
        started = time.perf_counter()
        cursor = con.execute(job["sql"])
        columns = [d[0] for d in cursor.description]
        if job["mode"] == "query":
            payload = _fetch(cursor, columns, job["row_cap"])
        else:
            payload = _write_csv(cursor, columns, job)
        payload["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 3)
        sender.send(("ok", payload))
    except QueryError as error:
        sender.send(("error", error.code, error.message))
    except duckdb.Error as error:
        sender.send(("error", *_classify(error, [v["name"] for v in job["views"]], job)))
    except MemoryError:
        sender.send(
            (
                "error",
                QueryError.MEMORY,
                gettext_noop("The result did not fit in the worker's memory; select fewer rows or columns."),
            )
        )
    except Exception as error:  # noqa: BLE001 — the caller must get an answer, not a dead pipe
        text = _trim(f"{type(error).__name__}: {error}")
        sender.send(("error", QueryError.EXECUTION, phrase(gettext_noop("The query failed: %(error)s"), error=text)))
    finally:
        sender.close()


def _sandbox(job: dict) -> duckdb.DuckDBPyConnection:
    """An in-memory duckdb with the views, then locked: no other file, URL or extension."""
    # duckdb adds its temp_directory to allowed_directories; it holds only this query's spill files.
    spill_dir = os.path.join(job["workdir"], "spill")
    os.makedirs(spill_dir)
    con = duckdb.connect(":memory:")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET allow_community_extensions = false")
    con.execute("SET python_enable_replacements = false")  # no scanning of the worker's Python variables
    con.execute(f"SET memory_limit = {_literal(job['memory_limit'])}")
    con.execute(f"SET threads = {int(job['threads'])}")
    con.execute(f"SET temp_directory = {_literal(spill_dir)}")
    con.execute(f"SET max_temp_directory_size = {_literal(job['temp_limit'])}")
    for view in job["views"]:
        if not os.path.isfile(view["path"]):
            raise QueryError(
                QueryError.UNAVAILABLE,
                phrase(gettext_noop("The data of %(view)s is not available right now."), view=view["name"]),
            )
        if view["columns"]:
            columns = ", ".join(f"{quote(stored)} AS {quote(shown)}" for stored, shown in view["columns"].items())
        else:
            columns = "*"
        try:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(view['schema'])}")
            con.execute(
                f"CREATE VIEW {quote(view['schema'])}.{quote(view['view'])} AS "
                f"SELECT {columns} FROM read_parquet({_literal(view['path'])})"
            )
        except duckdb.Error as error:
            raise QueryError(
                QueryError.UNAVAILABLE,
                phrase(
                    gettext_noop("The data of %(view)s could not be opened: %(error)s"),
                    view=view["name"],
                    error=_duck_message(error),
                ),
            ) from None
    # Views bind when queried, so their files must stay readable once external access is off.
    con.execute("SET allowed_paths = [" + ", ".join(_literal(v["path"]) for v in job["views"]) + "]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _fetch(cursor, columns: list[str], row_cap: int) -> dict:
    rows: list[list] = []
    while len(rows) <= row_cap:
        batch = cursor.fetchmany(min(FETCH_BATCH, row_cap + 1 - len(rows)))
        if not batch:
            break
        rows.extend([_json_value(v) for v in row] for row in batch)
    truncated = len(rows) > row_cap
    del rows[row_cap:]
    return {"columns": columns, "rows": rows, "row_count_returned": len(rows), "truncated": truncated}


def _write_csv(cursor, columns: list[str], job: dict) -> dict:
    part = job["out_path"] + ".part"
    written, truncated = 0, False
    with open(part, "w", encoding="utf-8-sig" if job["utf8_bom"] else "utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([_escape(c) for c in columns])
        while True:
            batch = cursor.fetchmany(min(FETCH_BATCH, job["max_rows"] + 1 - written))
            if not batch:
                break
            if written + len(batch) > job["max_rows"]:
                batch = batch[: job["max_rows"] - written]
                truncated = True
            writer.writerows([_csv_value(v) for v in row] for row in batch)
            written += len(batch)
            if truncated:
                break
    os.replace(part, job["out_path"])
    return {"path": job["out_path"], "columns": columns, "row_count": written, "truncated": truncated}


# --- Values and messages ---------------------------------------------------------------------


def _json_value(value):
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        number = float(value)
        return number if Decimal(repr(number)) == value else str(value)
    if isinstance(value, datetime | date | dt_time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, timedelta | uuid.UUID):
        return str(value)
    return str(value)


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, str):
        return _escape(value)
    value = _json_value(value)
    if isinstance(value, list | dict):
        return _escape(json.dumps(value, ensure_ascii=False))
    return "" if value is None else value


def _escape(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


def _classify(error: duckdb.Error, names: list[str], job: dict) -> tuple[str, Phrase]:
    text = _duck_message(error)
    if isinstance(error, duckdb.PermissionException):
        return QueryError.FORBIDDEN, phrase(
            gettext_noop("Only the tables listed here can be read; files, URLs and extensions cannot. (%(error)s)"), error=text
        )
    if isinstance(error, duckdb.OutOfMemoryException) or "max_temp_directory_size" in text:
        return QueryError.MEMORY, phrase(
            gettext_noop(
                "The query needed more than its memory limit (%(memory)s, spilling up to %(spill)s). "
                "Filter or aggregate earlier, or select fewer columns. (%(error)s)"
            ),
            memory=job["memory_limit"],
            spill=job["temp_limit"],
            error=text,
        )
    if isinstance(error, duckdb.CatalogException) and re.search(r"(Table|Schema|View) with name .* does not exist", text):
        listed = ", ".join(sorted(names)) or gettext_noop("none")
        return QueryError.UNKNOWN_TABLE, phrase(
            gettext_noop("%(error)s Tables you can query: %(tables)s."), error=text.splitlines()[0], tables=listed
        )
    if isinstance(error, duckdb.ParserException):
        return QueryError.SYNTAX, _duck_says(error)
    return QueryError.EXECUTION, phrase(gettext_noop("The query failed: %(error)s"), error=text)


def _duck_says(error: Exception) -> Phrase:
    """duckdb's own words (English, trimmed) about a statement it cannot parse, introduced in the reader's language."""
    return phrase(gettext_noop("The SQL could not be parsed: %(error)s"), error=_duck_message(error))


def _duck_message(error: Exception) -> str:
    return _trim(str(error).strip())


def _trim(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
